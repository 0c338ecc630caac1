"""Remote lockout / unlock through a telematics HTTP API (shape modelled on OEM / fleet APIs).

    POST {base}/v1/assets/{asset_id}/commands   Idempotency-Key: <key>
         {"command": "lock"|"unlock", "device_id", "reason", "emergency"}
      -> 202 {"request_id", "status": "accepted"}   (same key: same request_id, no new command)
    GET  {base}/v1/commands/{request_id}
      -> 200 {"request_id", "status": "accepted"|"acknowledged"|"confirmed"|"failed", "detail"}

The API deduplicates by Idempotency-Key, so a retry after any crash is safe.
"""
from __future__ import annotations

import httpx

from activities.providers.base import CommandStatus
from schemas.actions import LockoutCommand


class HttpTelematics:
    name = "telematics"
    confirms = True

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers,
                                      timeout=httpx.Timeout(timeout))

    async def submit(self, command: LockoutCommand) -> CommandStatus:
        response = await self.http.post(
            f"/v1/assets/{command.asset_id}/commands",
            json={"command": command.command, "device_id": command.device_id,
                  "reason": command.reason, "emergency": command.emergency},
            headers={"Idempotency-Key": command.idempotency_key})
        response.raise_for_status()
        return _status(response.json())

    async def status(self, request_id: str) -> CommandStatus:
        response = await self.http.get(f"/v1/commands/{request_id}")
        response.raise_for_status()
        return _status(response.json())

    async def aclose(self) -> None:
        await self.http.aclose()


def _status(body: dict) -> CommandStatus:
    state = body.get("status")
    if state not in ("accepted", "acknowledged", "confirmed", "failed"):
        state = "accepted"  # unknown intermediate states: still in progress
    return CommandStatus(str(body["request_id"]), state, body.get("detail"))
