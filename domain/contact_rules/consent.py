"""Consent and opt-out: SMS keywords and the per-person consent state.

Keywords follow carrier/CTIA practice: the whole message must be the keyword (a STOP
inside a sentence is for a person to read, not for a parser to guess), compared after
Unicode NFKC folding (full-width letters), case folding, and dropping whitespace and
punctuation anywhere ("Stop!", " opt-out ", "ＳＴＯＰ" all match).
"""
from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Channel = Literal["sms", "email", "voice", "letter"]
Keyword = Literal["opt_out", "opt_in", "help"]

_KEYWORDS: dict[str, Keyword] = {
    **{k.casefold(): "opt_out" for k in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                                         "OPTOUT", "退订", "TD")},
    **{k.casefold(): "opt_in" for k in ("START", "UNSTOP", "YES")},
    **{k.casefold(): "help" for k in ("HELP", "INFO")},
}


def _normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


def parse_keyword(text: str | None) -> Keyword | None:
    """'opt_out' | 'opt_in' | 'help' for a keyword message, else None."""
    if not text:
        return None
    return _KEYWORDS.get(_normalise(text))


class ConsentState(BaseModel):
    """One person's consent, carried in workflow state (JSON-serialisable, immutable:
    the `with_*` methods return a new state)."""

    model_config = ConfigDict(frozen=True)

    opted_out: tuple[Channel, ...] = ()  # sorted, no duplicates
    cease_communication: bool = False
    cease_requested_at: datetime | None = None

    def is_opted_out(self, channel: str) -> bool:
        return channel in self.opted_out

    def with_opt_out(self, channel: Channel) -> "ConsentState":
        return self.model_copy(update={"opted_out": tuple(sorted({*self.opted_out, channel}))})

    def with_opt_in(self, channel: Channel) -> "ConsentState":
        return self.model_copy(update={"opted_out": tuple(c for c in self.opted_out if c != channel)})

    def with_cease(self, at: datetime) -> "ConsentState":
        if self.cease_communication:
            return self
        return self.model_copy(update={"cease_communication": True, "cease_requested_at": at})

    def apply_keyword(self, channel: Channel, text: str | None) -> "ConsentState":
        """The state after an inbound message on `channel` (HELP and other text change nothing)."""
        keyword = parse_keyword(text)
        if keyword == "opt_out":
            return self.with_opt_out(channel)
        if keyword == "opt_in":
            return self.with_opt_in(channel)
        return self
