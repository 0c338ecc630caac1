"""The account as billing hands it over: the start input of `AccountCollection`.

Field names are part of the external contract (snake_case JSON, money in integer minor
units, ISO 8601 dates). Fields may be added; none of the brief's may be renamed.
"""
from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from domain.money import is_supported_currency

Language = Literal["en", "zh"]
ContactRole = Literal["guarantor", "co_borrower", "unrelated_third_party"]


class Debtor(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    phone: str | None = None
    email: str | None = None
    # IANA zone; when missing it is inferred from the phone number (domain.contact_rules).
    timezone: str | None = None
    language: Language = "en"
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2, for holidays and rules")
    region: str | None = Field(default=None, description="subdivision code for regional holidays/rules")


class Contact(BaseModel):
    """Another person on the account. Guarantors and co-borrowers are obligors; unrelated
    third parties may never be contacted about the debt."""

    model_config = ConfigDict(extra="allow")

    name: str
    role: ContactRole
    # Stable id for consent and messages; `contact-<n>` (1-based position) when not given.
    contact_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    phone: str | None = None
    email: str | None = None
    language: Language = "en"


class Instalment(BaseModel):
    due_date: date
    amount: StrictInt = Field(gt=0, description="minor units")
    # Already paid when the account was handed over (migration from another system).
    paid: StrictInt = Field(default=0, ge=0)


class Asset(BaseModel):
    """The financed machine, when it carries a telematics unit that can be locked out."""

    asset_id: str
    description: str | None = None
    telematics_device_id: str | None = None
    agreed_region: str | None = None


class AccountStart(BaseModel):
    model_config = ConfigDict(extra="allow")

    account_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    currency: str
    debtor: Debtor
    instalments: list[Instalment] = Field(min_length=1)
    policy_id: str = "standard"
    policy_version: int | None = Field(default=None, description="pin a policy version; latest when None")
    segment: str | None = None
    contacts: list[Contact] = Field(default_factory=list)
    asset: Asset | None = None
    jurisdiction: str | None = Field(default=None, description="e.g. 'US', 'US-NY', 'CN'; defaults to debtor.country")
    debt_type: str = "equipment_finance"
    prior_delinquency: bool = Field(default=False, description="earlier delinquency: more pre-due reminders")
    statute_of_limitations_start: date | None = Field(
        default=None, description="date the limitation period starts (default: oldest unpaid due date)")
    # Compressed time for demos and staging: one collection day lasts this many real seconds.
    seconds_per_day: float | None = Field(default=None, gt=0)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if not is_supported_currency(v):
            raise ValueError(f"unsupported currency {v!r} (ISO 4217 code expected, e.g. 'CNY', 'USD')")
        return v

    @model_validator(mode="after")
    def _schedule(self) -> "AccountStart":
        dates = [i.due_date for i in self.instalments]
        if len(set(dates)) != len(dates):
            raise ValueError("instalment due dates must be unique")
        for i in self.instalments:
            if i.paid > i.amount:
                raise ValueError(f"instalment {i.due_date}: paid {i.paid} exceeds amount {i.amount}")
        self.instalments.sort(key=lambda i: i.due_date)
        return self

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.account_id)


def workflow_id_for(account_id: str) -> str:
    return f"account-{account_id}"
