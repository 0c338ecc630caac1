"""The account as billing hands it over: the start input of `AccountCollection`.

Field names are part of the external contract (snake_case JSON, money in integer minor
units, ISO 8601 dates). Fields may be added; none of the brief's may be renamed.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.currencies import is_supported_currency
from schemas import limits as L
from schemas.paydays import PaydaySchedule
from schemas.handoffs import PostalAddress

Language = Literal["en", "zh"]
# Obligors (guarantor, co-borrower), the debtor company's own staff (accounts payable, the
# decision-maker: they speak for the debtor, seed 002 #12), and people never to be contacted.
ContactRole = Literal["guarantor", "co_borrower", "accounts_payable", "decision_maker", "unrelated_third_party"]
# Roles that act for the debtor (a company): contacted about the debt as the debtor is.
REPRESENTATIVE_ROLES = ("accounts_payable", "decision_maker")
OBLIGOR_ROLES = ("guarantor", "co_borrower")


class _Open(BaseModel):
    """Billing may add fields of its own; they are kept, within limits.check_extras."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _bounded_extras(self):
        L.check_extras(self.model_extra, type(self).__name__)
        return self


class Debtor(_Open):
    name: L.Name
    phone: L.Phone | None = None
    email: L.Email | None = None
    # IANA zone; when missing it is inferred from the phone number (domain.contact_rules).
    # An unknown zone is refused, never silently replaced.
    timezone: L.TimeZoneName | None = None
    language: Language = "en"
    country: L.CountryCode | None = Field(default=None, description="ISO 3166-1 alpha-2, for holidays and rules")
    region: L.RegionCode | None = Field(default=None, description="ISO 3166-2 subdivision ('NY' or 'US-NY') "
                                                                  "for regional holidays/rules")
    # Where registered letters go (proof of delivery); a letter step with no address goes to a person.
    postal_address: PostalAddress | None = None
    # When the debtor is paid (days of the month and/or the last working day): steps marked
    # `after_payday_within` in the policy wait for the next payday.
    paydays: PaydaySchedule | None = None


class Contact(_Open):
    """Another person on the account. Guarantors and co-borrowers are obligors; accounts payable and
    the decision-maker are the debtor company's own staff, contacted for it (each with their own
    consent); unrelated third parties may never be contacted about the debt."""

    name: L.Name
    role: ContactRole
    # Stable id for consent and messages; `contact-<n>` (1-based position) when not given.
    contact_id: L.Identifier | None = None
    phone: L.Phone | None = None
    email: L.Email | None = None
    language: Language = "en"
    postal_address: PostalAddress | None = None
    # Job title shown in messages and tasks (e.g. "Finance Director"); optional.
    position: L.ShortText | None = None


class Instalment(BaseModel):
    due_date: L.BoundedDate
    amount: L.Amount
    # Already paid when the account was handed over (migration from another system).
    paid: L.NonNegativeAmount = 0
    # When the invoice was issued (B2B): steps anchored `days_after_invoice` count from it.
    invoiced_on: L.BoundedDate | None = None


class Asset(BaseModel):
    """The financed machine, when it carries a telematics unit that can be locked out."""

    asset_id: L.Identifier
    description: L.Note | None = None
    telematics_device_id: L.Identifier | None = None
    agreed_region: L.ShortText | None = None


class AccountStart(_Open):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "account_id": "A1", "currency": "CNY",
        "debtor": {"name": "Wang Wei", "phone": "+8613800138000", "email": "wang.wei@example.com",
                   "timezone": "Asia/Shanghai", "language": "zh", "country": "CN"},
        "instalments": [{"due_date": "2026-12-15", "amount": 1250000}, {"due_date": "2027-01-15", "amount": 1250000}],
        "policy_id": "standard"}]})

    account_id: L.AccountId
    currency: str = Field(max_length=3)
    debtor: Debtor
    instalments: list[Instalment] = Field(min_length=1, max_length=L.MAX_INSTALMENTS)
    policy_id: L.PolicyId = "standard"
    policy_version: L.PolicyVersion | None = Field(default=None, description="pin a policy version; latest when None")
    segment: L.Identifier | None = None
    contacts: list[Contact] = Field(default_factory=list, max_length=L.MAX_CONTACTS)
    asset: Asset | None = None
    jurisdiction: L.Jurisdiction | None = Field(default=None,
                                                description="e.g. 'US', 'US-NY', 'CN'; defaults to debtor.country")
    debt_type: L.Identifier = "equipment_finance"
    prior_delinquency: bool = Field(default=False, description="earlier delinquency: more pre-due reminders")
    statute_of_limitations_start: L.BoundedDate | None = Field(
        default=None, description="date the limitation period starts (default: oldest unpaid due date)")
    # Compressed time for demos and staging: one collection day lasts this many real seconds.
    seconds_per_day: L.SecondsPerDay | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if not is_supported_currency(v):
            raise ValueError(f"unsupported currency {L.clip(v, 8)!r} (ISO 4217 code expected, e.g. 'CNY', 'USD')")
        return v

    @model_validator(mode="after")
    def _schedule(self) -> "AccountStart":
        dates = [i.due_date for i in self.instalments]
        if len(set(dates)) != len(dates):
            raise ValueError("instalment due dates must be unique")
        for i in self.instalments:
            if i.paid > i.amount:
                raise ValueError(f"instalment {i.due_date}: paid {i.paid} exceeds amount {i.amount}")
            if i.invoiced_on is not None and i.invoiced_on > i.due_date:
                raise ValueError(f"instalment {i.due_date}: invoiced_on {i.invoiced_on} is after its due date")
        self.instalments.sort(key=lambda i: i.due_date)
        return self

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.account_id)


WORKFLOW_ID_PREFIX = "account-"


def workflow_id_for(account_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{account_id}"


def account_id_of(workflow_id: str) -> str | None:
    """The account of an account workflow's ID (`workflow_id_for` read back); None for another workflow."""
    return workflow_id.removeprefix(WORKFLOW_ID_PREFIX) if workflow_id.startswith(WORKFLOW_ID_PREFIX) else None
