"""In-process fake provider servers speaking just enough of each provider's HTTP API for the real
SDKs: Twilio (Messages, Calls), SendGrid (mail/send, Email Activity), a telematics command API and
a placement partner API. One aiohttp app on 127.0.0.1:<random port>, one base URL per provider.

Every request is recorded (`requests`), so tests can assert "sent exactly once", and each provider
can be told to fail its next N requests (`fail_next`).
"""
from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

from aiohttp import web

TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "fake-token"

# Provider-specific error bodies for "invalid recipient" and "unsubscribed" refusals.
_TWILIO_ERRORS = {
    "invalid_number": (400, {"code": 21211, "message": "The 'To' number is not a valid phone number.",
                             "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}),
    "unsubscribed": (400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient",
                           "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}),
}
_SENDGRID_ERRORS = {
    "invalid_number": (400, {"errors": [{"message": "Does not contain a valid address.",
                                         "field": "personalizations.0.to.0.email"}]}),
    "unsubscribed": (400, {"errors": [{"message": "The recipient is unsubscribed.", "field": None}]}),
}


@dataclass
class Recorded:
    provider: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Failure:
    mode: str        # "500" | "429" | "400" | "invalid_number" | "unsubscribed" | "timeout"
    remaining: int


@dataclass
class FakeProviders:
    timeout_seconds: float = 3.0
    requests: list[Recorded] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)
    messages: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    emails: list[dict] = field(default_factory=list)
    commands: dict[str, dict] = field(default_factory=dict)        # request_id -> command
    command_keys: dict[str, str] = field(default_factory=dict)     # Idempotency-Key -> request_id
    telematics_outcome: str = "confirmed"
    placements: dict[str, dict] = field(default_factory=dict)      # reference -> record
    placement_keys: dict[str, dict] = field(default_factory=dict)  # Idempotency-Key -> response
    email_activity_enabled: bool = True
    base_url: str = ""
    _runner: web.AppRunner | None = None

    # ---- test API -------------------------------------------------------------------------
    def fail_next(self, provider: str, mode: str, times: int = 1) -> None:
        self.failures[provider] = Failure(mode, times)

    def count(self, provider: str, method: str = "POST", path_suffix: str = "") -> int:
        return sum(1 for r in self.requests if r.provider == provider and r.method == method
                   and r.path.endswith(path_suffix))

    @property
    def twilio_url(self) -> str:
        return f"{self.base_url}/twilio"

    @property
    def sendgrid_url(self) -> str:
        return f"{self.base_url}/sendgrid"

    @property
    def telematics_url(self) -> str:
        return f"{self.base_url}/telematics"

    @property
    def placement_url(self) -> str:
        return f"{self.base_url}/placement"

    async def start(self) -> "FakeProviders":
        app = web.Application()
        app.router.add_route("*", "/{provider}/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    # ---- dispatch ---------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        provider = request.match_info["provider"]
        path = "/" + request.match_info["tail"]
        if request.content_type == "application/x-www-form-urlencoded":
            form = await request.post()
            body: Any = {k: form.getall(k) if len(form.getall(k)) > 1 else form[k] for k in form}
        elif request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        else:
            body = None
        self.requests.append(Recorded(provider, request.method, path, dict(request.headers), body))
        failure = self.failures.get(provider)
        if failure and failure.remaining > 0:
            failure.remaining -= 1
            return await self._fail(provider, failure.mode)
        handler = getattr(self, f"_{provider}", None)
        if handler is None:
            raise web.HTTPNotFound()
        return await handler(request, path, body)

    async def _fail(self, provider: str, mode: str) -> web.StreamResponse:
        if mode == "timeout":
            await asyncio.sleep(self.timeout_seconds)
            return web.json_response({"message": "too late"}, status=504)
        if mode in ("invalid_number", "unsubscribed"):
            table = _TWILIO_ERRORS if provider == "twilio" else _SENDGRID_ERRORS
            status, payload = table.get(mode, (400, {"message": mode}))
            return web.json_response(payload, status=status)
        status = int(mode)
        payload = ({"code": 20429 if status == 429 else 20500, "message": f"fake {status}", "status": status}
                   if provider == "twilio" else {"errors": [{"message": f"fake {status}"}]})
        return web.json_response(payload, status=status)

    # ---- Twilio -----------------------------------------------------------------------------
    async def _twilio(self, request: web.Request, path: str, body: Any) -> web.StreamResponse:
        parts = path.strip("/").split("/")  # 2010-04-01 Accounts {sid} Messages.json
        if len(parts) != 4 or parts[0] != "2010-04-01" or parts[1] != "Accounts":
            raise web.HTTPNotFound()
        sid, resource = parts[2], parts[3]
        if request.headers.get("Authorization", "") == "" or sid != TWILIO_SID:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        store, prefix, key = ((self.messages, "SM", "messages") if resource == "Messages.json"
                              else (self.calls, "CA", "calls") if resource == "Calls.json" else (None, "", ""))
        if store is None:
            raise web.HTTPNotFound()
        if request.method == "GET":
            to, sender = request.query.get("To"), request.query.get("From")
            found = [r for r in reversed(store) if (not to or r["to"] == to) and (not sender or r["from"] == sender)]
            page_size = int(request.query.get("PageSize", "50"))
            return web.json_response({key: found[:page_size], "end": len(found[:page_size]) - 1,
                                      "first_page_uri": path, "next_page_uri": None, "page": 0,
                                      "page_size": page_size, "previous_page_uri": None, "start": 0,
                                      "uri": path})
        now = format_datetime(datetime.now(timezone.utc), usegmt=True)
        record = {"sid": prefix + secrets.token_hex(16), "account_sid": sid, "to": body["To"],
                  "from": body["From"], "status": "queued", "date_created": now, "date_updated": now,
                  "api_version": "2010-04-01", "uri": f"/2010-04-01/Accounts/{sid}/{resource}"}
        if resource == "Messages.json":
            record.update(body=body["Body"], num_segments="1", direction="outbound-api",
                          status_callback=body.get("StatusCallback"))
        else:
            record.update(direction="outbound-api", twiml=body.get("Twiml"),
                          status_callback=body.get("StatusCallback"))
        store.append(record)
        return web.json_response(record, status=201)

    # ---- SendGrid ---------------------------------------------------------------------------
    async def _sendgrid(self, request: web.Request, path: str, body: Any) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response({"errors": [{"message": "unauthorized"}]}, status=401)
        if request.method == "POST" and path == "/v3/mail/send":
            message_id = secrets.token_urlsafe(16)
            self.emails.append({"message_id": message_id, "payload": body})
            return web.Response(status=202, headers={"X-Message-Id": message_id})
        if request.method == "GET" and path == "/v3/messages":
            if not self.email_activity_enabled:
                return web.json_response({"errors": [{"message": "access forbidden"}]}, status=403)
            query = request.query.get("query", "")
            found = [{"msg_id": e["message_id"] + ".filter0001", "status": "delivered",
                      "to_email": e["payload"]["personalizations"][0]["to"][0]["email"]}
                     for e in self.emails
                     if any(f'="{v}"' in query and f"['{k}']" in query
                            for k, v in (e["payload"].get("custom_args") or {}).items())]
            return web.json_response({"messages": found})
        raise web.HTTPNotFound()

    # ---- Telematics -------------------------------------------------------------------------
    async def _telematics(self, request: web.Request, path: str, body: Any) -> web.StreamResponse:
        parts = path.strip("/").split("/")
        if request.method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "assets"] and parts[3] == "commands":
            key = request.headers.get("Idempotency-Key")
            if not key:
                return web.json_response({"error": "Idempotency-Key required"}, status=400)
            if key in self.command_keys:
                rid = self.command_keys[key]
                return web.json_response({"request_id": rid, "status": self.commands[rid]["status"]}, status=200)
            rid = "cmd_" + secrets.token_hex(8)
            self.command_keys[key] = rid
            self.commands[rid] = {**body, "asset_id": parts[2], "status": "accepted", "polls": 0}
            return web.json_response({"request_id": rid, "status": "accepted"}, status=202)
        if request.method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "commands"]:
            command = self.commands.get(parts[2])
            if command is None:
                raise web.HTTPNotFound()
            # Each poll moves the device one step: accepted -> acknowledged -> confirmed/failed.
            command["polls"] += 1
            if command["status"] == "accepted":
                command["status"] = "acknowledged"
            elif command["status"] == "acknowledged":
                command["status"] = self.telematics_outcome
            detail = "device did not respond" if command["status"] == "failed" else None
            return web.json_response({"request_id": parts[2], "status": command["status"], "detail": detail})
        raise web.HTTPNotFound()

    # ---- Placement partner ------------------------------------------------------------------
    async def _placement(self, request: web.Request, path: str, body: Any) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return web.json_response({"error": "POST with Idempotency-Key required"}, status=400)
        if key in self.placement_keys:
            return web.json_response(self.placement_keys[key], status=200)
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "v1" and parts[1] in ("placements", "litigation-referrals"):
            reference = ("PLC-" if parts[1] == "placements" else "LIT-") + secrets.token_hex(6)
            self.placements[reference] = {**body, "status": "accepted"}
            response = {"reference": reference, "status": "accepted"}
            self.placement_keys[key] = response
            return web.json_response(response, status=201)
        if len(parts) == 4 and parts[3] == "recall" and parts[2] in self.placements:
            self.placements[parts[2]]["status"] = "recalled"
            response = {"reference": parts[2], "status": "recalled"}
            self.placement_keys[key] = response
            return web.json_response(response)
        raise web.HTTPNotFound()
