"""schemas/limits.py: the one set of bounds. Each bound holds at its edge (the maximum passes,
one more is refused with the field named), and the largest valid input stays within the
documented sizes."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas import limits as L
from schemas.account import AccountStart
from schemas.events import Contact, Operator, Pause, Payment, PromiseToPay, RepaymentPlan, RiskSignal, WaiveFee, WriteOff

WIDE = "\U0001f600"  # 4 bytes in UTF-8, 12 as a JSON \u escape pair


def maximal_account() -> dict[str, Any]:
    """Every field at its maximum, in 4-byte characters where text is free."""
    def text(n: int) -> str:
        return WIDE * n

    def extras(prefix: str) -> dict[str, str]:
        return {f"{prefix}{i}": "x" * 80 for i in range(L.MAX_EXTRA_FIELDS)}

    contact = {"name": text(L.MAX_NAME), "role": "guarantor", "phone": "+" + "1" * (L.MAX_PHONE - 1),
               "email": "a" * (L.MAX_EMAIL - 12) + "@example.com", "language": "zh", **extras("c")}
    return {
        "account_id": "A" * L.MAX_ID, "currency": "IDR",
        "debtor": {"name": text(L.MAX_NAME), "phone": contact["phone"], "email": contact["email"],
                   "timezone": "America/Argentina/ComodRivadavia", "language": "zh", "country": "CN",
                   "region": "CN-GD", **extras("d")},
        "instalments": [{"due_date": date.fromordinal(L.MIN_DATE.toordinal() + 30 * i).isoformat(),
                         "amount": L.MAX_AMOUNT, "paid": L.MAX_AMOUNT} for i in range(L.MAX_INSTALMENTS)],
        "policy_id": "p" * L.MAX_POLICY_ID, "policy_version": L.MAX_POLICY_VERSION, "segment": "s" * L.MAX_ID,
        "contacts": [contact] * L.MAX_CONTACTS,
        "asset": {"asset_id": "E" * L.MAX_ID, "description": text(L.MAX_NOTE), "telematics_device_id": "D" * L.MAX_ID,
                  "agreed_region": text(L.MAX_SHORT_TEXT)},
        "jurisdiction": "US-NY", "debt_type": "t" * L.MAX_ID, "prior_delinquency": True,
        "statute_of_limitations_start": L.MAX_DATE.isoformat(), "seconds_per_day": L.MIN_SECONDS_PER_DAY,
        **extras("x"),
    }


def test_the_largest_valid_start_input_fits_the_documented_sizes() -> None:
    raw = maximal_account()
    start = AccountStart.model_validate(raw)
    as_sent = json.dumps(raw, ensure_ascii=False).encode()
    assert len(json.dumps(raw, ensure_ascii=False)) < 80_000       # characters, as documented
    assert len(as_sent) < 300_000 < L.MAX_REQUEST_BYTES            # UTF-8 bytes, as documented
    assert len(start.model_dump_json().encode()) < 300_000         # the Temporal payload


def refused(model: type, data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    assert field in str(info.value), str(info.value)


PAYMENT = {"payment_id": "P-1", "amount": 100, "currency": "CNY", "received_at": "2030-01-01T00:00:00Z"}


@pytest.mark.parametrize("change, field", [
    ({"amount": L.MAX_AMOUNT + 1}, "amount"), ({"amount": 2**63}, "amount"), ({"amount": 0}, "amount"),
    ({"amount": True}, "amount"), ({"amount": 1.0}, "amount"),
    ({"payment_id": "P" * (L.MAX_ID + 1)}, "payment_id"), ({"payment_id": "P 1"}, "payment_id"),
    ({"payment_id": "P\x00"}, "payment_id"), ({"payment_id": "P1\n"}, "payment_id"), ({"payment_id": ""}, "payment_id"),
    ({"reference": "r" * (L.MAX_REFERENCE + 1)}, "reference"), ({"reference": "a\nb"}, "reference"),
    ({"method": "m" * (L.MAX_SHORT_TEXT + 1)}, "method"), ({"method": "\ud800"}, "method"),
    ({"received_at": "0001-01-01T00:00:00+01:00"}, "received_at"), ({"received_at": "9999-12-31T23:59:59-12:00"},
                                                                    "received_at"),
    ({"received_at": "1969-12-31T23:59:59"}, "received_at"), ({"currency": "CNY\x00"}, "currency"),
])
def test_payment_bounds(change: dict, field: str) -> None:
    refused(Payment, {**PAYMENT, **change}, field)


def test_payment_at_the_edges_is_accepted() -> None:
    p = Payment.model_validate({**PAYMENT, "amount": L.MAX_AMOUNT, "payment_id": "P" * L.MAX_ID,
                                "reference": "r" * L.MAX_REFERENCE, "received_at": "2100-12-31T23:59:59+14:00"})
    assert p.amount == L.MAX_AMOUNT
    assert L.as_utc(p.received_at) == datetime(2100, 12, 31, 9, 59, 59, tzinfo=timezone.utc)
    naive = Payment.model_validate({**PAYMENT, "received_at": "1970-01-01T00:00:00"})
    assert L.as_utc(naive.received_at).tzinfo is timezone.utc


def account(**change: Any) -> dict[str, Any]:
    return {"account_id": "A-1", "currency": "CNY", "debtor": {"name": "Wang Wei"},
            "instalments": [{"due_date": "2030-01-15", "amount": 100}], **change}


@pytest.mark.parametrize("change, field", [
    ({"debtor": {"name": "X", "timezone": "Mars/Olympus"}}, "timezone"),
    ({"debtor": {"name": "X", "timezone": "Factory"}}, "timezone"),
    ({"debtor": {"name": "X", "country": "ZZ"}}, "country"),
    ({"debtor": {"name": "X", "country": "CHN"}}, "country"),
    ({"debtor": {"name": "X", "region": "US-NEW-YORK"}}, "region"),
    ({"debtor": {"name": ""}}, "name"), ({"debtor": {"name": "N" * (L.MAX_NAME + 1)}}, "name"),
    ({"debtor": {"name": "X", "email": "no-at-sign"}}, "email"),
    ({"debtor": {"name": "X", "phone": "call me"}}, "phone"),
    ({"debtor": {"name": "X", "extra": {"deep": [[[[[[[[[[1]]]]]]]]]]}}}, "nested too deeply"),
    ({"debtor": {"name": "X", "bad": "\x00"}}, "control characters"),
    ({"debtor": {"name": "X", "nan": float("nan")}}, "NaN"),
    ({"debtor": {"name": "X", **{f"f{i}": 1 for i in range(L.MAX_EXTRA_FIELDS + 1)}}}, "extra fields"),
    ({"jurisdiction": "ZZ"}, "jurisdiction"), ({"jurisdiction": "US-"}, "jurisdiction"),
    ({"instalments": []}, "instalments"),
    ({"instalments": [{"due_date": "1969-12-31", "amount": 1}]}, "due_date"),
    ({"instalments": [{"due_date": "2101-01-01", "amount": 1}]}, "due_date"),
    ({"instalments": [{"due_date": "2030-01-01", "amount": 1, "paid": L.MAX_AMOUNT + 1}]}, "paid"),
    ({"contacts": [{"name": "G", "role": "guarantor"}] * (L.MAX_CONTACTS + 1)}, "contacts"),
    ({"seconds_per_day": 1e-300}, "seconds_per_day"), ({"seconds_per_day": float("inf")}, "seconds_per_day"),
    ({"seconds_per_day": 86_401}, "seconds_per_day"),
    ({"policy_id": "Standard"}, "policy_id"), ({"policy_version": 0}, "policy_version"),
    ({"segment": "a b"}, "segment"), ({"asset": {"asset_id": "E", "description": "d" * (L.MAX_NOTE + 1)}}, "description"),
    ({"statute_of_limitations_start": "0001-01-01"}, "statute_of_limitations_start"),
    ({"account_id": "A/1"}, "account_id"),
])
def test_start_input_bounds(change: dict, field: str) -> None:
    refused(AccountStart, account(**change), field)


def test_country_and_jurisdiction_are_normalised() -> None:
    a = AccountStart.model_validate(account(debtor={"name": "X", "country": "cn", "region": "gd"}, jurisdiction="us-ny"))
    assert (a.debtor.country, a.debtor.region, a.jurisdiction) == ("CN", "GD", "US-NY")


@pytest.mark.parametrize("model, data, field", [
    (Pause, {"reason": "x", "until": "9999-12-31"}, "until"),
    (Pause, {"reason": ""}, "reason"),
    (Pause, {"reason": "r" * (L.MAX_REASON + 1)}, "reason"),
    (PromiseToPay, {"amount": 1, "promised_date": "0001-01-01"}, "promised_date"),
    (PromiseToPay, {"amount": 1, "promised_date": "2030-01-01", "promise_id": "p\x00"}, "promise_id"),
    (WaiveFee, {"approved_by": "a" * (L.MAX_SHORT_TEXT + 1)}, "approved_by"),
    (WaiveFee, {"approved_by": "b", "note": "n" * (L.MAX_NOTE + 1)}, "note"),
    (WriteOff, {"reason": "x", "approved_by": "b", "operator": "o" * (L.MAX_SHORT_TEXT + 1)}, "operator"),
    (WriteOff, {"reason": "x", "approved_by": "b", "role": "root"}, "role"),
    (RepaymentPlan, {"plan_id": "P", "instalments": [{"due_date": "2030-01-01", "amount": 1}] *
                     (L.MAX_PLAN_INSTALMENTS + 1)}, "instalments"),
    (RiskSignal, {"kind": "gps_offline", "detail": "d" * (L.MAX_NOTE + 1)}, "detail"),
    (RiskSignal, {"kind": "gps_offline", "observed_at": "9999-01-01T00:00:00Z"}, "observed_at"),
    (Contact, {"channel": "sms", "outcome": "inbound_reply", "detail": "\x00"}, "detail"),
])
def test_update_and_signal_bounds(model: type, data: dict, field: str) -> None:
    refused(model, data, field)


def test_operator_role_is_optional_and_known() -> None:
    assert Operator().role is None
    assert WriteOff.model_validate({"reason": "x", "approved_by": "b", "role": "supervisor"}).role == "supervisor"
    assert RiskSignal.model_validate({"kind": "gps_offline", "detail": "line 1\nline 2\ttab"}).detail


def test_clip_bounds_text_and_keeps_a_hash() -> None:
    long = "a\x00b" + "x" * 10_000
    clipped = L.clip(long, 100)
    assert len(clipped) == 100 and "\x00" not in clipped and "10003 chars, sha256" in clipped
    assert L.clip("short", 100) == "short"
    assert L.clip("\ud800", 10) == "\ufffd"


def test_extras_check_is_iterative() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        L.check_extras({"x": deep}, "debtor")


def test_reference_tables_come_from_their_sources() -> None:
    assert {"Asia/Shanghai", "America/New_York", "UTC"} <= L.TIMEZONES and "Mars/Olympus" not in L.TIMEZONES
    assert {"CN", "US", "DE"} <= L.COUNTRIES and "ZZ" not in L.COUNTRIES and len(L.COUNTRIES) >= 249
    assert TypeAdapter(L.BoundedDate).validate_python("2100-12-31") == L.MAX_DATE
