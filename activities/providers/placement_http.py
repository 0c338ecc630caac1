"""Hand-off to a collection agency or litigation counsel over the partner's HTTP API.

    POST {base}/v1/placements            (agency)      Idempotency-Key: <key>   body: PlacementRecord
    POST {base}/v1/litigation-referrals  (litigation)  Idempotency-Key: <key>   body: PlacementRecord
         + "evidence": {"status": "attached", "sha256", "bytes", "name", "location", counts…}
                       or {"status": "unavailable", "note": <why>}
      -> 200/201 {"reference", "status": "accepted"}
    POST {base}/v1/placements/{reference}/recall (or litigation-referrals/...)  Idempotency-Key
         {"account_id", "reason"} -> 200 {"reference", "status": "recalled"}
    POST {base}/v1/placements/{reference}/events  Idempotency-Key   body: PlacementNotice
         (payments, disputes, cure, write-off, closure) -> 200 {"status": <the partner's answer>}

The partner deduplicates by Idempotency-Key, so a retry after any crash is safe.
"""
from __future__ import annotations

import json

import httpx

from activities.providers.base import PlacementResult
from schemas.actions import PlacementNotice, PlacementRecall, PlacementRecord

_PATH = {"agency": "/v1/placements", "litigation": "/v1/litigation-referrals"}


class HttpPlacement:
    name = "placement"

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 15.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers,
                                      timeout=httpx.Timeout(timeout))

    async def place(self, record: PlacementRecord, evidence: dict | None = None) -> PlacementResult:
        body = record.model_dump_json() if evidence is None else json.dumps(
            {**record.model_dump(mode="json"), "evidence": evidence})
        response = await self.http.post(
            _PATH[record.target], content=body,
            headers={"Idempotency-Key": record.idempotency_key, "Content-Type": "application/json"})
        response.raise_for_status()
        return PlacementResult(str(response.json()["reference"]), "accepted")

    async def recall(self, recall: PlacementRecall, reference: str) -> PlacementResult:
        response = await self.http.post(
            f"{_PATH[recall.target]}/{reference}/recall",
            json={"account_id": recall.account_id, "reason": recall.reason},
            headers={"Idempotency-Key": recall.idempotency_key})
        response.raise_for_status()
        return PlacementResult(str(response.json().get("reference", reference)), "recalled")

    async def notify(self, notice: PlacementNotice, reference: str | None) -> PlacementResult:
        response = await self.http.post(
            f"{_PATH[notice.target]}/{reference}/events", content=notice.model_dump_json(),
            headers={"Idempotency-Key": notice.idempotency_key, "Content-Type": "application/json"})
        response.raise_for_status()
        body = response.json() if response.content else {}
        return PlacementResult(str(body.get("reference", reference or "")), "acknowledged",
                               answer=str(body.get("status", "acknowledged"))[:500])

    async def aclose(self) -> None:
        await self.http.aclose()
