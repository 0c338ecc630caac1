"""The playbooks' hand-offs against fake partner APIs (real HTTP) and the outbox, on real PostgreSQL:
send_registered_letter, request_credit_hold / request_credit_release, report_to_credit_bureau,
request_recovery. Each happens once per business key, whatever the retries."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.handoffs import HandOffActivities
from activities.providers.factory import build_providers
from activities.providers.handoffs_http import HttpPostal
from activities.providers.outbox import _short_id
from activities.registered_mail import RegisteredMailActivities
from infra.settings import Settings
from schemas.handoffs import CreditBureauReport, CreditHoldRequest, RecoveryRequest, RegisteredLetter
from tests.fakes.fixtures import pool, unique  # noqa: F401 (fixture)
from tests.fakes.partners import API_KEY, FakePartners, partners  # noqa: F401 (fixture)

DEFAULTS = {"company_name": "Harbour Property Management", "contact_phone": "+86 21 5555 0100"}


def _settings(tmp_path: Path, fake: FakePartners | None) -> Settings:
    urls = ({"POSTAL_BASE_URL": fake.url("postal"), "ERP_BASE_URL": fake.url("erp"),
             "CREDIT_BUREAU_BASE_URL": fake.url("bureau"), "RECOVERY_BASE_URL": fake.url("recovery"),
             "POSTAL_API_KEY": API_KEY, "ERP_API_KEY": API_KEY, "CREDIT_BUREAU_API_KEY": API_KEY,
             "RECOVERY_API_KEY": API_KEY} if fake else
            {"POSTAL_BASE_URL": None, "ERP_BASE_URL": None, "CREDIT_BUREAU_BASE_URL": None, "RECOVERY_BASE_URL": None})
    return Settings(ARREARS_DATA_DIR=tmp_path, **urls)


class Wired:
    def __init__(self, pool, settings: Settings) -> None:
        self.providers = build_providers(settings)
        self.letters = RegisteredMailActivities(pool, self.providers.postal, defaults=DEFAULTS)
        self.handoffs = HandOffActivities(pool, erp=self.providers.erp, credit_bureau=self.providers.credit_bureau,
                                          recovery=self.providers.recovery)


@pytest.fixture
async def http(pool, partners, tmp_path):  # noqa: F811
    wired = Wired(pool, _settings(tmp_path, partners))
    yield wired
    await wired.providers.aclose()


@pytest.fixture
async def outbox(pool, tmp_path):  # noqa: F811
    wired = Wired(pool, _settings(tmp_path, None))
    yield wired
    await wired.providers.aclose()


def letter(language: str = "zh", **overrides) -> RegisteredLetter:
    account = overrides.pop("account_id", unique("P"))
    fields = dict(
        letter_id=f"{account}:1:property-dpd30:debtor", account_id=account, template="property_late_charge_letter",
        language=language, to_name="王伟", step_id="property-dpd30", policy_ref="property@2",
        address={"lines": ["上海市浦东新区世纪大道100号", "12栋1502室"], "postcode": "200120", "country": "CN"},
        variables={"days_past_due": 30, "due_date": "2026-02-01", "as_of": "2026-03-03",
                   "amount_due": "CNY 1,290.00", "charges_outstanding": "CNY 90.00", "debtor_name": "王伟"})
    fields.update(overrides)
    return RegisteredLetter(**fields)


# ---- registered letters --------------------------------------------------------------------

async def test_registered_letter_is_rendered_posted_once_and_its_tracking_ref_kept(http, partners, pool):
    sent = letter()
    first = await http.letters.send_registered_letter(sent)
    again = await http.letters.send_registered_letter(sent)

    assert first.status == "sent" and first.tracking_ref.startswith("RR") and first.provider == "postal"
    assert again.status == "duplicate" and again.tracking_ref == first.tracking_ref
    assert partners.count("postal", "POST", "/v1/letters") == 1
    [post] = [r for r in partners.requests if r.provider == "postal"]
    assert post.headers["Idempotency-Key"] == sent.letter_id
    assert post.body["service"] == "registered" and post.body["recipient"]["name"] == "王伟"
    assert post.body["recipient"]["address"]["lines"][1] == "12栋1502室"
    # The Chinese template, rendered with the letter's variables and the company's details.
    text = post.body["content"]["body"]
    assert "物业管理费欠缴及滞纳金告知函" in text and "欠缴30天" in text and "Harbour Property Management" in text
    row = await pool.fetchrow("SELECT status, tracking_ref, body, sent_at FROM registered_letters"
                              " WHERE idempotency_key = $1", sent.letter_id)
    assert row["status"] == "sent" and row["tracking_ref"] == first.tracking_ref and row["body"] == text
    assert row["sent_at"] is not None


async def test_a_retry_after_the_carrier_accepted_gets_the_same_letter_not_a_second(http, partners, pool):
    # The worker died after the carrier accepted the letter and before our record: the carrier
    # already holds the letter id; the retry must come back with the same tracking reference.
    sent = letter("en")
    content = http.letters._content(sent)
    accepted = await HttpPostal(partners.url("postal"), API_KEY).send(sent, content)
    result = await http.letters.send_registered_letter(sent)
    assert result.status == "sent" and result.tracking_ref == accepted.tracking_ref
    assert len(partners.letters) == 1


async def test_carrier_outage_is_retryable_and_posts_nothing_twice(http, partners, pool):
    sent = letter("en")
    partners.fail_next("postal", "503")
    with pytest.raises(ApplicationError) as failure:
        await http.letters.send_registered_letter(sent)
    assert not failure.value.non_retryable
    assert await pool.fetchval("SELECT lease_owner FROM registered_letters WHERE idempotency_key = $1",
                               sent.letter_id) is None          # the lease was given back
    result = await http.letters.send_registered_letter(sent)
    assert result.status == "sent" and len(partners.letters) == 1


async def test_carrier_refusal_is_not_retried_and_a_later_attempt_may_post(http, partners, pool):
    sent = letter("en")
    partners.fail_next("postal", "400")
    with pytest.raises(ApplicationError) as failure:
        await http.letters.send_registered_letter(sent)
    assert failure.value.non_retryable and failure.value.type == "ProviderRejected"
    assert await pool.fetchval("SELECT status FROM registered_letters WHERE idempotency_key = $1",
                               sent.letter_id) == "failed"
    assert (await http.letters.send_registered_letter(sent)).status == "sent"


async def test_missing_template_is_a_template_error_before_anything_is_claimed(http, partners, pool):
    sent = letter(template="no_such_letter")
    with pytest.raises(ApplicationError) as failure:
        await http.letters.send_registered_letter(sent)
    assert failure.value.type == "TemplateError" and failure.value.non_retryable
    assert partners.requests == []
    assert await pool.fetchval("SELECT count(*) FROM registered_letters WHERE idempotency_key = $1",
                               sent.letter_id) == 0


async def test_outbox_letter_waits_for_the_print_room_once(outbox, pool, tmp_path):
    sent = letter("en")
    first = await outbox.letters.send_registered_letter(sent)
    again = await outbox.letters.send_registered_letter(sent)
    assert first.status == "sent" and first.provider == "outbox"
    assert first.tracking_ref == _short_id("outbox-rl", sent.letter_id)
    assert again.status == "duplicate" and again.tracking_ref == first.tracking_ref
    log = (tmp_path / "outbox.log").read_text()
    assert log.count("REGISTERED_LETTER registered") == 1
    assert f"key={sent.letter_id}" in log and "Notice of unpaid management fee and late charge" in log
    assert "200120" in log


def test_registered_letter_fields_are_bounded():
    with pytest.raises(ValidationError, match="lines"):
        letter(address={"lines": [f"line {i}" for i in range(7)], "country": "CN"})
    with pytest.raises(ValidationError, match="template variables too large"):
        letter(variables={"text": "x" * 9000})
    with pytest.raises(ValidationError, match="letter_id"):
        letter(letter_id="A 1/letter")
    with pytest.raises(ValidationError, match="country"):
        letter(address={"lines": ["1 Road"], "country": "XX"})


# ---- credit hold and release ----------------------------------------------------------------

def hold(account: str, key: str, **overrides) -> CreditHoldRequest:
    return CreditHoldRequest(**{"idempotency_key": key, "account_id": account, "customer_ref": "CUST-0042",
                                "reason": "60 days past due: supply stopped until paid", "currency": "CNY",
                                "amount_overdue": 8_400_000, "days_past_due": 60, "step_id": "b2b-dpd60-hold",
                                "policy_ref": "b2b@1", **overrides})


async def test_credit_hold_then_release_reach_the_erp_once_each(http, partners, pool):
    account = unique("B")
    held = await http.handoffs.request_credit_hold(hold(account, f"{account}:1:credit-hold"))
    again = await http.handoffs.request_credit_hold(hold(account, f"{account}:1:credit-hold"))
    released = await http.handoffs.request_credit_release(
        hold(account, f"{account}:1:credit-release", reason="paid in full", hold_reference=held.reference))

    assert held.status == "accepted" and held.reference.startswith("HOLD-") and held.answer == "on_hold"
    assert again.status == "duplicate" and again.reference == held.reference
    assert released.reference.startswith("REL-") and released.answer == "released"
    assert partners.count("erp", "POST", "/v1/customers/CUST-0042/credit-hold") == 2
    bodies = [r.body for r in partners.requests if r.provider == "erp"]
    assert [b["action"] for b in bodies] == ["hold", "release"]
    assert bodies[1]["hold_reference"] == held.reference and bodies[0]["amount_overdue"] == 8_400_000
    rows = await pool.fetch("SELECT kind, status, reference FROM handoffs WHERE account_id = $1 ORDER BY created_at",
                            account)
    assert [(r["kind"], r["status"]) for r in rows] == [("credit_hold", "submitted"), ("credit_release", "submitted")]


async def test_a_key_used_for_a_hold_cannot_release(http, partners):
    account = unique("B")
    await http.handoffs.request_credit_hold(hold(account, f"{account}:1:credit"))
    with pytest.raises(ApplicationError) as failure:
        await http.handoffs.request_credit_release(hold(account, f"{account}:1:credit"))
    assert failure.value.type == "ProviderRejected" and failure.value.non_retryable
    assert partners.count("erp") == 1


async def test_erp_outage_is_retried_and_refusal_recorded(http, partners, pool):
    account = unique("B")
    partners.fail_next("erp", "502")
    with pytest.raises(ApplicationError) as outage:
        await http.handoffs.request_credit_hold(hold(account, f"{account}:1:credit-hold"))
    assert not outage.value.non_retryable
    assert (await http.handoffs.request_credit_hold(hold(account, f"{account}:1:credit-hold"))).status == "accepted"

    other = unique("B")
    partners.fail_next("erp", "422")
    with pytest.raises(ApplicationError) as refusal:
        await http.handoffs.request_credit_hold(hold(other, f"{other}:1:credit-hold"))
    assert refusal.value.non_retryable
    row = await pool.fetchrow("SELECT status, answer FROM handoffs WHERE idempotency_key = $1", f"{other}:1:credit-hold")
    assert row["status"] == "refused" and "422" in row["answer"]


async def test_outbox_credit_hold_for_credit_control(outbox, tmp_path):
    account = unique("B")
    result = await outbox.handoffs.request_credit_hold(hold(account, f"{account}:1:credit-hold"))
    assert result.provider == "outbox" and result.reference == _short_id("outbox-hold", f"{account}:1:credit-hold")
    assert f"CREDIT_HOLD account={account} customer=CUST-0042" in (tmp_path / "outbox.log").read_text()


# ---- credit-bureau reports ------------------------------------------------------------------

def report(account: str, **overrides) -> CreditBureauReport:
    return CreditBureauReport(**{
        "idempotency_key": f"{account}:1:bureau-default", "account_id": account, "kind": "default",
        "jurisdiction": "CN", "debt_type": "consumer_loan", "policy_kinds": ["broken_promise", "default"],
        "as_of": date(2026, 5, 1), "days_past_due": 90, "currency": "CNY", "amount_overdue": 1_200_000,
        "oldest_due_date": date(2026, 1, 31), "notice_sent_on": date(2026, 4, 20), "subject_name": "Li Na",
        "step_id": "consumer-dpd90-report", "policy_ref": "consumer@1", **overrides})


async def test_permitted_report_reaches_the_bureau_once(http, partners, pool):
    account = unique("C")
    sent = await http.handoffs.report_to_credit_bureau(report(account))
    again = await http.handoffs.report_to_credit_bureau(report(account))
    assert sent.status == "accepted" and sent.reference.startswith("CBR-") and again.status == "duplicate"
    assert partners.count("bureau") == 1
    [body] = partners.reports.values()
    assert body["kind"] == "default" and body["amount_overdue"] == 1_200_000 and body["subject_name"] == "Li Na"


@pytest.mark.parametrize("overrides,rule", [
    ({"kind": "broken_promise", "jurisdiction": "US"}, "jurisdiction"),          # a promise is no data element there
    ({"debt_type": "property_fee"}, "jurisdiction"),                              # a property manager is no furnisher
    ({"jurisdiction": "FR"}, "jurisdiction"),                                     # no rule written: refused
    ({"jurisdiction": None}, "jurisdiction"),
    ({"policy_kinds": ["broken_promise"]}, "policy"),                             # the lender chose not to
    ({"disputed": True}, "dispute"),
    ({"notice_sent_on": None}, "notice"),
    ({"jurisdiction": "GB", "notice_sent_on": date(2026, 4, 20)}, "notice"),      # 28 days not yet passed
    ({"jurisdiction": "US", "days_past_due": 20}, "days_past_due"),
])
async def test_report_the_rule_forbids_is_refused_without_calling_the_bureau(http, partners, pool, overrides, rule):
    account = unique("C")
    with pytest.raises(ApplicationError) as refusal:
        await http.handoffs.report_to_credit_bureau(report(account, **overrides))
    assert refusal.value.type == "CreditReportNotAllowed" and refusal.value.non_retryable
    assert refusal.value.details[0] == rule
    assert partners.count("bureau") == 0
    row = await pool.fetchrow("SELECT status, answer FROM handoffs WHERE idempotency_key = $1",
                              f"{account}:1:bureau-default")
    assert row["status"] == "refused" and rule in row["answer"]


async def test_refused_report_goes_out_once_the_notice_period_has_passed(http, partners):
    account = unique("C")
    early = report(account, jurisdiction="GB", as_of=date(2026, 5, 1), notice_sent_on=date(2026, 4, 20))
    with pytest.raises(ApplicationError):
        await http.handoffs.report_to_credit_bureau(early)
    later = report(account, jurisdiction="GB", as_of=date(2026, 5, 18), notice_sent_on=date(2026, 4, 20))
    assert (await http.handoffs.report_to_credit_bureau(later)).status == "accepted"
    assert partners.count("bureau") == 1


# ---- recovery -------------------------------------------------------------------------------

def recovery(account: str, kind: str = "repossession", **overrides) -> RecoveryRequest:
    return RecoveryRequest(**{
        "idempotency_key": f"{account}:1:recovery", "account_id": account, "kind": kind, "asset_id": "EXC-330",
        "asset_description": "Excavator, 33 t", "last_known_location": "Site 4, Jiading, Shanghai",
        "requested_on": date(2026, 6, 1), "contact_name": "Zhang San", "contact_phone": "+86 138 0013 8000",
        "reason": "voluntary surrender agreed" if kind == "voluntary_surrender" else "90 days past due, machine idle",
        "step_id": "equipment-recovery", "policy_ref": "standard@3", **overrides})


async def test_recovery_hand_off_once_with_storage_terms(http, partners):
    account = unique("E")
    sent = await http.handoffs.request_recovery(recovery(account))
    again = await http.handoffs.request_recovery(recovery(account))
    assert sent.reference.startswith("RCV-") and sent.answer == "scheduled" and again.status == "duplicate"
    [body] = partners.recoveries.values()
    assert body["kind"] == "repossession" and body["storage_months"] == 3 and body["asset_id"] == "EXC-330"


async def test_outbox_recovery_for_the_recovery_desk(outbox, tmp_path):
    account = unique("E")
    result = await outbox.handoffs.request_recovery(recovery(account, "voluntary_surrender", storage_months=2))
    assert result.provider == "outbox" and result.status == "accepted"
    log = (tmp_path / "outbox.log").read_text()
    assert f"RECOVERY voluntary_surrender account={account} asset=EXC-330 storage_months=2" in log


def test_recovery_storage_is_at_most_three_months():
    with pytest.raises(ValidationError, match="storage_months"):
        recovery("E-1", storage_months=4)
