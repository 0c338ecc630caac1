"""Hand-over to a collection agency or to litigation counsel: placed → (notified of events) → recalled.

While an account is placed or in litigation the ladder sends nothing; what happens on the account
(payments, disputes, a cure, a write-off, closure) reaches the partner as a notice through the
placement provider, each once (keyed by the event's business id), and the partner's answer is
recorded. Whether a dispute recalls the account is policy data.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Target = Literal["agency", "litigation"]
NoticeKind = Literal["payment", "payment_reversed", "dispute_opened", "dispute_resolved", "cured", "written_off",
                     "closed", "promise", "plan"]


class PartnerNotice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str                     # placement key + event kind + event id
    kind: NoticeKind
    summary: str
    data: dict[str, str | int | None] = Field(default_factory=dict)
    attempts: int = 0
    not_before: datetime | None = None


class Placement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Target
    key: str                     # business key of the hand-over (account + episode + step)
    episode: int | None = None
    reference: str | None = None
    placed_at: datetime
    recall_reason: str | None = None   # set when a recall is due; cleared placement after it is done
    notices: list[PartnerNotice] = Field(default_factory=list)    # queued, not yet acknowledged
    notified: int = 0

    @property
    def recall_due(self) -> bool:
        return self.recall_reason is not None

    def notify(self, kind: NoticeKind, event_id: str, summary: str, **data: str | int | None) -> PartnerNotice | None:
        key = f"{self.key}:{kind}:{event_id}"
        if any(n.key == key for n in self.notices):
            return None
        notice = PartnerNotice(key=key, kind=kind, summary=summary, data=dict(data))
        self.notices.append(notice)
        return notice

    def acknowledged(self, key: str) -> None:
        self.notices = [n for n in self.notices if n.key != key]
        self.notified += 1

    def recall(self, reason: str) -> bool:
        if self.recall_reason is None:
            self.recall_reason = reason
            return True
        return False
