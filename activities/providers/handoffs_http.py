"""The playbooks' partners over HTTP: a registered-mail carrier, the lender's ERP, a credit bureau's
submission API, a recovery partner. Each is configured by its own base URL and API key
(infra/settings.py); each deduplicates by `Idempotency-Key`, so a retry after any crash is safe.

    Postal      POST {base}/v1/letters            body: {letter_id, service, recipient{name, address},
                                                         content{subject, body}, language, account_id}
                  -> 200/201 {"tracking_ref", "status"}
                Receipts come back signed to /webhooks/postal (ingress/webhooks/postal.py).
    ERP         POST {base}/v1/customers/{customer}/credit-hold   body: {action: "hold"|"release",
                  account_id, reason, amount_overdue, currency, days_past_due, hold_reference}
                  -> 200/201 {"reference", "status"}
    Bureau      POST {base}/v1/reports            body: CreditBureauReport (JSON)
                  -> 200/201 {"reference", "status"}
    Recovery    POST {base}/v1/recoveries         body: RecoveryRequest (JSON)
                  -> 200/201 {"reference", "status"}

HTTP errors are classified by activities/errors.py (429/5xx retryable, other 4xx refusals).
"""
from __future__ import annotations

import json
from typing import Any

import httpx

from activities.providers.base import HandOffAnswer, PostalResult, RenderedMessage
from schemas.handoffs import CreditBureauReport, CreditHoldRequest, RecoveryRequest, RegisteredLetter

MAX_ANSWER = 500


class _Partner:
    name = "partner"

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 15.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers,
                                      timeout=httpx.Timeout(timeout))

    async def _post(self, path: str, key: str, body: str) -> dict[str, Any]:
        response = await self.http.post(path, content=body, headers={
            "Idempotency-Key": key, "Content-Type": "application/json"})
        response.raise_for_status()
        answer = response.json() if response.content else {}
        if not isinstance(answer, dict):
            raise httpx.HTTPStatusError(f"{self.name}: unexpected answer {str(answer)[:100]!r}",
                                        request=response.request, response=response)
        return answer

    def _answer(self, body: dict[str, Any], field: str = "reference") -> HandOffAnswer:
        reference = body.get(field)
        if not isinstance(reference, str) or not reference or len(reference) > 128:
            # Accepted but without a usable reference: the same key will return it on a retry.
            raise RuntimeError(f"{self.name} answered without a {field}")
        return HandOffAnswer(reference, str(body.get("status", "accepted"))[:MAX_ANSWER])

    async def aclose(self) -> None:
        await self.http.aclose()


class HttpPostal(_Partner):
    name = "postal"

    async def send(self, letter: RegisteredLetter, content: RenderedMessage) -> PostalResult:
        body = json.dumps({
            "letter_id": letter.letter_id, "account_id": letter.account_id, "service": letter.service,
            "language": letter.language,
            "recipient": {"name": letter.to_name, "address": letter.address.model_dump(mode="json")},
            "content": {"subject": content.subject, "body": content.body}}, ensure_ascii=False)
        answer = self._answer(await self._post("/v1/letters", letter.letter_id, body), "tracking_ref")
        return PostalResult(answer.reference, answer.answer)


class HttpErp(_Partner):
    name = "erp"

    async def credit_hold(self, request: CreditHoldRequest, action: str) -> HandOffAnswer:
        customer = request.customer_ref or request.account_id
        body = json.dumps({"action": action, "account_id": request.account_id, "reason": request.reason,
                           "amount_overdue": request.amount_overdue, "currency": request.currency,
                           "days_past_due": request.days_past_due, "hold_reference": request.hold_reference},
                          ensure_ascii=False)
        return self._answer(await self._post(f"/v1/customers/{customer}/credit-hold",
                                             request.idempotency_key, body))


class HttpCreditBureau(_Partner):
    name = "credit_bureau"

    async def report(self, report: CreditBureauReport) -> HandOffAnswer:
        return self._answer(await self._post("/v1/reports", report.idempotency_key, report.model_dump_json()))


class HttpRecovery(_Partner):
    name = "recovery"

    async def request(self, request: RecoveryRequest) -> HandOffAnswer:
        return self._answer(await self._post("/v1/recoveries", request.idempotency_key, request.model_dump_json()))
