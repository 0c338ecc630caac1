"""Consent per person and channel: opt-out, cease-communication, a wrong or dead number.

A person is the debtor (`debtor`) or one of the account's contacts (`contact-<n>`, in the order of
the start input, or the contact's own `contact_id`). A STOP from a number opts out the person(s)
with that number only: the debtor's opt-out never silences a guarantor's notice, and a guarantor's
STOP never opts the debtor out.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["sms", "email", "voice", "letter"]
DEBTOR = "debtor"


class PersonConsent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opted_out: list[Channel] = Field(default_factory=list)
    cease_communication: bool = False
    cease_requested_at: datetime | None = None
    ceases_withdrawn: int = 0              # withdrawn by a supervisor: a later request is a new one
    phone_unusable: str | None = None      # "dead" | "wrong_party": no SMS or calls to this number

    def allows_phone(self) -> bool:
        return self.phone_unusable is None


class ConsentBook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    people: dict[str, PersonConsent] = Field(default_factory=dict)

    def of(self, person: str) -> PersonConsent:
        return self.people.get(person) or PersonConsent()

    def _edit(self, person: str) -> PersonConsent:
        return self.people.setdefault(person, PersonConsent())

    def opt_out(self, person: str, channel: Channel) -> bool:
        p = self._edit(person)
        if channel in p.opted_out:
            return False
        p.opted_out.append(channel)
        p.opted_out.sort()
        return True

    def opt_in(self, person: str, channel: Channel) -> bool:
        p = self._edit(person)
        if channel not in p.opted_out:
            return False
        p.opted_out.remove(channel)
        return True

    def cease(self, person: str, at: datetime) -> bool:
        p = self._edit(person)
        if p.cease_communication:
            return False
        p.cease_communication, p.cease_requested_at = True, at
        return True

    def withdraw_cease(self, person: str) -> bool:
        p = self._edit(person)
        if not p.cease_communication:
            return False
        p.cease_communication, p.cease_requested_at = False, None
        p.ceases_withdrawn += 1
        return True

    def reinstate_phone(self, person: str) -> str | None:
        """The number usable again; what it was marked as, or None when it was not."""
        p = self._edit(person)
        was, p.phone_unusable = p.phone_unusable, None
        return was

    def phone_unusable(self, person: str, why: str) -> bool:
        p = self._edit(person)
        if p.phone_unusable == why:
            return False
        p.phone_unusable = why
        return True

    def summary(self) -> dict[str, dict[str, object]]:
        return {person: c.model_dump(mode="json") for person, c in sorted(self.people.items())}


def normalise_address(address: str | None) -> str:
    """Phone numbers compared on their digits (with a leading +), e-mail addresses case-insensitively."""
    if not address:
        return ""
    text = address.strip()
    if "@" in text:
        return text.casefold()
    digits = "".join(ch for ch in text if ch.isdigit())
    return ("+" if text.startswith("+") else "") + digits
