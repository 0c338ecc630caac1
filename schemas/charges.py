"""The `charges` section of a policy: late fees, penalty interest, legal caps, payment allocation,
waivers and restructuring, as data. Read by `domain.charges` and `domain.restructuring`.

Money is integer minor units of the account's currency. Rates are exact decimals written with
their unit, so nobody has to guess whether `10` means 10 %, 10 ‰ or 10 basis points:
`"18%"`, `"1‰"` (also `"1permille"`), `"1800bp"`. A bare number or a YAML float is refused.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

_UNITS = (("permille", Decimal("0.001")), ("‰", Decimal("0.001")), ("bp", Decimal("0.0001")),
          ("%", Decimal("0.01")))
MAX_RATE = Decimal(10)          # 1000 %: anything above is a typo, not a contract


def _parse_rate(value: object) -> Decimal:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        for suffix, scale in _UNITS:
            if text.endswith(suffix) and len(text) <= 32:
                try:
                    number = Decimal(text[:-len(suffix)]) * scale
                except InvalidOperation:
                    raise ValueError(f"rate {value!r}: not a number") from None
                break
        else:
            raise ValueError(f"rate {value!r}: write the unit, e.g. '18%', '1‰' or '1800bp'")
    else:
        # A YAML float (0.18) or a bare int (18) is ambiguous and inexact: refuse it.
        raise ValueError(f"rate {value!r}: write it as a quoted string with its unit, e.g. '18%', '1‰', '1800bp'")
    if not number.is_finite() or number < 0 or number > MAX_RATE:
        raise ValueError(f"rate {value!r}: must be between 0 and {MAX_RATE * 100}%")
    return number


def _show_rate(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}%"


# An exact fraction (0.18 for 18 %). Serialised as a percentage string that parses back exactly,
# so a policy carried in workflow state across continue-as-new round-trips unchanged.
Rate = Annotated[Decimal, BeforeValidator(_parse_rate), PlainSerializer(_show_rate, return_type=str)]
ChargeClass = Literal["fees", "interest", "principal"]
RoundingMode = Literal["half_up", "half_even", "down"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LateFeeRule(_Strict):
    """Charged at most once per instalment: if principal is still unpaid at the end of day
    `due_date + grace_days`, the fee is owed from the next day (DPD grace_days + 1)."""

    flat: int = Field(default=0, ge=0, le=10**10, description="minor units per late instalment")
    percent: Rate = Field(default=Decimal(0), description="of the instalment's principal unpaid at assessment")
    grace_days: int = Field(default=0, ge=0, le=365)
    max_per_instalment: int | None = Field(default=None, ge=0, le=10**12, description="the policy's own cap")
    de_minimis: int = Field(default=0, ge=0, le=10**8, description="no fee when at most this much is unpaid")


class PenaltyInterestRule(_Strict):
    """Simple interest accruing daily on each instalment's unpaid principal (never on charges).

    `grace: forgiven` — interest counts only the days after `due_date + grace_days`.
    `grace: retroactive` — an instalment still unpaid after the grace days is charged from its due
    date on the principal that was unpaid then; principal paid within the grace carries none.
    """

    rate: Rate = Decimal(0)
    per: Literal["year", "day"] = "year"
    day_count: Literal["ACT/365", "ACT/360"] = Field(default="ACT/365", description="for per: year")
    grace_days: int = Field(default=0, ge=0, le=365)
    grace: Literal["forgiven", "retroactive"] = "forgiven"


class Rounding(_Strict):
    """`instalment`: the exact interest accrued on an instalment is rounded once, when read.
    `daily`: each day's interest on an instalment is rounded, then summed (property-fee practice)."""

    mode: RoundingMode = "half_up"
    interest: Literal["instalment", "daily"] = "instalment"


class CapRule(_Strict):
    """A legal or regulatory limit. Every rule matching the account (jurisdiction prefix, debt
    type, `*` for any) applies; where several limit the same thing the strictest wins."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)
    jurisdiction: str = Field(default="*", max_length=16, description="'CN' also covers 'CN-44'; '*' any")
    debt_type: str = Field(default="*", max_length=64)
    max_annual_rate: Rate | None = Field(default=None, description="penalty interest, annualised as daily × 365")
    max_total_charges: Rate | None = Field(default=None, description="late fee + interest + one-off fees, of the "
                                                                      "instalment's principal")
    # The late-fee caps limit the late fee and the one-off fees (e.g. a broken-promise fee) of an
    # instalment together: charges for the same default (docs/fees.md, "One-off fees").
    max_late_fee: int | None = Field(default=None, ge=0, le=10**12,
                                     description="minor units per instalment: late fee + one-off fees")
    max_late_fee_rate: Rate | None = Field(default=None, description="late fee + one-off fees, of the "
                                                                      "instalment's principal")
    max_restructuring_fee_rate: Rate | None = Field(default=None, description="of the restructured balance")
    source: str = Field(default="", max_length=300, description="the law or rule, for the evidence")

    def applies(self, jurisdiction: str | None, debt_type: str | None) -> bool:
        j = (jurisdiction or "").upper()
        rule_j = self.jurisdiction.upper()
        j_ok = rule_j == "*" or j == rule_j or j.startswith(rule_j + "-")
        return j_ok and self.debt_type in ("*", debt_type)


def _default_order() -> tuple[ChargeClass, ...]:
    return ("fees", "interest", "principal")


class Allocation(_Strict):
    """Order in which a payment settles what is due; oldest instalment first within each class.
    After everything due: principal not yet due (oldest first) when `prepay_future`, then credit."""

    order: tuple[ChargeClass, ...] = Field(default_factory=_default_order)
    # e.g. {"US": ["principal", "interest", "fees"]}: most specific jurisdiction wins.
    jurisdictions: dict[str, tuple[ChargeClass, ...]] = Field(default_factory=dict, max_length=100)
    prepay_future: bool = True

    @model_validator(mode="after")
    def _permutations(self) -> "Allocation":
        for name, order in [("order", self.order), *self.jurisdictions.items()]:
            if sorted(order) != ["fees", "interest", "principal"]:
                raise ValueError(f"allocation {name}: list each of fees, interest, principal exactly once")
        return self

    def order_for(self, jurisdiction: str | None) -> tuple[ChargeClass, ...]:
        if jurisdiction:
            if jurisdiction in self.jurisdictions:
                return self.jurisdictions[jurisdiction]
            country = jurisdiction.split("-")[0]
            if country in self.jurisdictions:
                return self.jurisdictions[country]
        return self.order


class Waivers(_Strict):
    """When a fee waiver needs a second person's approval. Thresholds count the waiver together
    with what was already waived on the account, so splitting a waiver does not avoid approval."""

    requires_approval: bool = True
    approval_above: int = Field(default=0, ge=0, le=10**12, description="minor units waived in total; 0 = always")
    approval_above_share: Rate | None = Field(default=None, description="of the charges outstanding")


class Restructuring(_Strict):
    """A supplementary agreement / repayment plan (seeds 000, 003): the outstanding balance
    including charges, plus a fee, less a settlement discount, over new instalments."""

    fee_flat: int = Field(default=0, ge=0, le=10**10)
    fee_rate: Rate = Field(default=Decimal(0), description="of the restructured balance (principal + charges)")
    max_fee: int | None = Field(default=None, ge=0, le=10**12)
    max_discount_of_charges: Rate = Field(default=Decimal(0), description="share of outstanding charges")
    max_discount_of_principal: Rate = Field(default=Decimal(0), description="share of outstanding principal")
    max_instalments: int = Field(default=24, ge=1, le=360)
    max_term_days: int = Field(default=730, ge=1, le=3650)
    requires_approval: Literal["always", "with_fee_or_discount", "never"] = "with_fee_or_discount"
    # Whether the debtor's signed acknowledgement of the debt restarts the limitation period.
    acknowledgement_restarts_limitation: bool = True
    limitation_by_jurisdiction: dict[str, bool] = Field(default_factory=dict, max_length=100)
    limitation_source: dict[str, str] = Field(default_factory=dict, max_length=100)

    def restarts_limitation(self, jurisdiction: str | None) -> tuple[bool, str]:
        """(restarts, basis): most specific jurisdiction first, then the default."""
        if jurisdiction:
            for key in (jurisdiction, jurisdiction.split("-")[0]):
                if key in self.limitation_by_jurisdiction:
                    return self.limitation_by_jurisdiction[key], self.limitation_source.get(key, f"policy ({key})")
        return self.acknowledgement_restarts_limitation, self.limitation_source.get("*", "policy default")


class Charges(_Strict):
    late_fee: LateFeeRule = LateFeeRule()
    penalty_interest: PenaltyInterestRule = PenaltyInterestRule()
    rounding: Rounding = Rounding()
    caps: tuple[CapRule, ...] = Field(default=(), max_length=200)
    allocation: Allocation = Allocation()
    waivers: Waivers = Waivers()
    restructuring: Restructuring = Restructuring()

    @model_validator(mode="after")
    def _unique_caps(self) -> "Charges":
        ids = [c.id for c in self.caps]
        if len(set(ids)) != len(ids):
            raise ValueError("cap ids must be unique within a policy")
        return self

    def caps_for(self, jurisdiction: str | None, debt_type: str | None) -> tuple[CapRule, ...]:
        return tuple(c for c in self.caps if c.applies(jurisdiction, debt_type))
