"""Registered letters with proof of delivery: the `delivery_receipt` signal's payload.

The postal provider (or a person holding the signed receipt card, through the outbox) reports what
happened to a registered letter; the ingress's `/webhooks/postal` validates it and signals
`delivery_receipt` to `account-<account_id>`:

    {"letter_id", "tracking_ref", "status": "delivered" | "refused" | "returned",
     "received_at", "signed_by"?}

`letter_id` is the `send_registered_letter` activity's business key; `tracking_ref` is what the
activity returned. A receipt is final: a letter has at most one (the ingress forwards the first).
The workflow should validate the signal with `DeliveryReceiptSignal` and record a malformed one
under its rejected inputs rather than fail.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas import limits as L

SIGNAL = "delivery_receipt"
ReceiptStatus = Literal["delivered", "refused", "returned"]

# Business keys of outbound actions: the id characters, long enough for account + step + recipient.
MAX_KEY = 300
ActionKey = Annotated[str, Field(min_length=1, max_length=MAX_KEY, pattern=L.ID_PATTERN)]
TrackingRef = L.Text(L.MAX_ID, min_length=1)


class DeliveryReceiptSignal(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"letter_id": "A1:1:property_late_charge_letter:debtor", "tracking_ref": "RR123456785CN",
         "status": "delivered", "received_at": "2026-03-02T10:15:00+08:00", "signed_by": "Wang Wei"}]})

    letter_id: ActionKey
    tracking_ref: TrackingRef
    status: ReceiptStatus
    received_at: L.BoundedDateTime
    # Who signed for it (delivered only): the name on the receipt card, as the carrier recorded it.
    signed_by: L.Text(L.MAX_NAME) | None = None

    @model_validator(mode="after")
    def _signature_only_when_delivered(self) -> "DeliveryReceiptSignal":
        if self.signed_by is not None and self.status != "delivered":
            raise ValueError(f"signed_by is only given for a delivered letter (status {self.status})")
        if self.signed_by is not None and not self.signed_by.strip():
            self.signed_by = None
        return self
