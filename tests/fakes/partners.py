"""Fake partner APIs for the playbooks' hand-offs, beside the provider fakes (tests/fakes/server.py):
a registered-mail carrier, the lender's ERP, a credit bureau and a recovery partner, each speaking
the HTTP shape documented in activities/providers/handoffs_http.py and deduplicating by
Idempotency-Key as the real ones do. Same test API: `requests`, `count`, `fail_next`."""
from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.fakes.server import FakeProviders

API_KEY = "partner-test-key"


@dataclass
class FakePartners(FakeProviders):
    letters: dict[str, dict] = field(default_factory=dict)       # tracking_ref -> letter as posted
    holds: dict[str, dict] = field(default_factory=dict)         # reference -> ERP request
    reports: dict[str, dict] = field(default_factory=dict)       # reference -> bureau report
    recoveries: dict[str, dict] = field(default_factory=dict)    # reference -> recovery request
    answers: dict[tuple[str, str], dict] = field(default_factory=dict)   # (partner, key) -> first answer

    def url(self, partner: str) -> str:
        return f"{self.base_url}/{partner}"

    async def _answer_once(self, partner: str, request: web.Request, body: Any, store: dict[str, dict],
                           make: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return web.json_response({"error": "unauthorized"}, status=401)
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return web.json_response({"error": "POST with Idempotency-Key required"}, status=400)
        if (partner, key) in self.answers:
            return web.json_response(self.answers[(partner, key)], status=200)
        answer = make(body)
        store[answer.get("reference") or answer["tracking_ref"]] = body
        self.answers[(partner, key)] = answer
        return web.json_response(answer, status=201)

    async def _postal(self, request: web.Request, path: str, body: Any) -> web.StreamResponse:
        if path != "/v1/letters":
            raise web.HTTPNotFound()
        return await self._answer_once("postal", request, body, self.letters, lambda b: {
            "tracking_ref": f"RR{secrets.randbelow(10**9):09d}CN", "status": "accepted"})

    async def _erp(self, request: web.Request, path: str, body: Any) -> web.StreamResponse:
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v1", "customers"] or parts[3] != "credit-hold":
            raise web.HTTPNotFound()
        return await self._answer_once("erp", request, {**body, "customer": parts[2]}, self.holds, lambda b: {
            "reference": f"{'HOLD' if b['action'] == 'hold' else 'REL'}-{secrets.token_hex(4)}",
            "status": "on_hold" if b["action"] == "hold" else "released"})

    async def _bureau(self, request: web.Request, path: str, body: Any) -> web.StreamResponse:
        if path != "/v1/reports":
            raise web.HTTPNotFound()
        return await self._answer_once("bureau", request, body, self.reports, lambda b: {
            "reference": f"CBR-{secrets.token_hex(4)}", "status": "received"})

    async def _recovery(self, request: web.Request, path: str, body: Any) -> web.StreamResponse:
        if path != "/v1/recoveries":
            raise web.HTTPNotFound()
        return await self._answer_once("recovery", request, body, self.recoveries, lambda b: {
            "reference": f"RCV-{secrets.token_hex(4)}", "status": "scheduled"})


@pytest.fixture
async def partners() -> AsyncIterator[FakePartners]:
    server = await FakePartners(timeout_seconds=2.0).start()
    yield server
    await server.stop()
