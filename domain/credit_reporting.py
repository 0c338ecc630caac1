"""May this account be reported to a credit bureau? One pure rule, by jurisdiction and debt type.

The seed playbook (001) makes a broken promise "go on the credit record". What a bureau receives is
never a label such as "broke a promise": it is the account's true status (overdue since, amount
overdue), furnished by a lender that is a recognised data provider, after the debtor was told in
advance where the law requires it, and never while the debtor disputes the debt. Two kinds of
report exist here:

- `broken_promise`: the account's overdue status furnished after a promise to pay was broken;
- `default`: the account furnished as in default (seriously overdue).

The table below (RULES) says which kinds each jurisdiction and debt type permit, from how many
days past due, and how many days of advance notice to the debtor are needed; each row carries
its reason. Anything not in the table is refused: reporting is opt-in per jurisdiction, and a new
one needs a row written (and reviewed) first. A subdivision ("US-NY") falls back to its country.

The policy must allow the kind too (`policy_kinds`): a lender may report less than the law allows.

This is a product rule distilled from the laws named below, not legal advice; a lender reviews the
table for its own licences before switching reporting on in a policy.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType

from schemas.handoffs import ReportKind

REPORT_KINDS: tuple[ReportKind, ...] = ("broken_promise", "default")


@dataclass(frozen=True)
class ReportingRule:
    kinds: frozenset[str]
    min_days_past_due: int
    notice_days: int | None     # days of advance notice to the debtor; None: no notice required
    basis: str                  # why: the law or practice the row follows


@dataclass(frozen=True)
class ReportDecision:
    allowed: bool
    rule: str                   # which check decided: policy, jurisdiction, dispute, days_past_due, notice, ok
    reason: str


_NONE: frozenset[str] = frozenset()
_BOTH = frozenset(REPORT_KINDS)
_DEFAULT = frozenset({"default"})

_CN_CREDIT = ("PRC Regulation on the Administration of the Credit Investigation Industry (征信业管理条例, 2013): "
              "lenders connected to the PBOC Credit Reference Center furnish repayment status including "
              "overdue records; art. 15 requires the person to be told in advance of adverse information.")
_US_CONSUMER = ("US FCRA s.623 (accuracy; a dispute must be marked) and s.623(a)(7) (notice of negative "
                "information), Regulation F s.1006.30(a) (no reporting before the consumer has been "
                "contacted). Furnishers report status from 30 days past due (Metro 2). A promise is not a "
                "data element: a broken promise is reported only as the account's overdue status, which the "
                "lender's monthly furnishing already carries, so it is not a separate collection report.")
_US_COMMERCIAL = ("US commercial credit (business-purpose obligations, outside the FCRA): lenders and suppliers "
                  "furnish payment experience to commercial bureaus (e.g. SBFE, trade-payment exchanges) from "
                  "30 days past due; no statutory notice, the contract's reporting clause applies.")
_GB_CONSUMER = ("UK: ICO Principles for the reporting of arrears, arrangements and defaults: a default is "
                "registered once the relationship has broken down, normally at 3 to 6 months in arrears, after "
                "a notice of intention to file a default at least 28 days before (CCA 1974 s.87 default notice). "
                "Arrears are reported monthly by the lender as status, not as a collection step.")
_PROPERTY = ("Property management fees: the manager is not a lender nor a recognised credit data provider, so "
             "it cannot furnish a bureau; persistent non-payment goes to litigation (a court judgment may then "
             "be recorded by the court itself).")

RULES: Mapping[tuple[str, str], ReportingRule] = MappingProxyType({
    ("CN", "consumer_loan"): ReportingRule(_BOTH, 1, 0, _CN_CREDIT),
    ("CN", "equipment_finance"): ReportingRule(_BOTH, 1, 0, _CN_CREDIT),
    # Enterprise credit records (企业征信) under the same regulation; art. 15 protects individuals.
    ("CN", "trade_receivable"): ReportingRule(_DEFAULT, 30, None, _CN_CREDIT),
    ("CN", "property_fee"): ReportingRule(_NONE, 0, None, _PROPERTY),
    ("US", "consumer_loan"): ReportingRule(_DEFAULT, 30, 0, _US_CONSUMER),
    ("US", "equipment_finance"): ReportingRule(_DEFAULT, 30, None, _US_COMMERCIAL),
    ("US", "trade_receivable"): ReportingRule(_DEFAULT, 30, None, _US_COMMERCIAL),
    ("US", "property_fee"): ReportingRule(_NONE, 0, None, _PROPERTY),
    ("GB", "consumer_loan"): ReportingRule(_DEFAULT, 90, 28, _GB_CONSUMER),
    ("GB", "property_fee"): ReportingRule(_NONE, 0, None, _PROPERTY),
})


def rule_for(jurisdiction: str | None, debt_type: str) -> tuple[str, ReportingRule] | None:
    """The row that governs, and the jurisdiction key it was found under (subdivision first)."""
    if not jurisdiction:
        return None
    code = jurisdiction.strip().upper()
    for key in (code, code.split("-")[0]):
        if (key, debt_type) in RULES:
            return key, RULES[(key, debt_type)]
    return None


def may_report(kind: str, *, jurisdiction: str | None, debt_type: str, policy_kinds: tuple[str, ...] | frozenset[str],
               days_past_due: int, disputed: bool, notice_sent_on: date | None, today: date) -> ReportDecision:
    """Whether a report of `kind` may be sent today; the first check that fails names itself."""
    if kind not in REPORT_KINDS:
        return ReportDecision(False, "kind", f"unknown report kind {kind!r}")
    if kind not in policy_kinds:
        return ReportDecision(False, "policy", f"the policy does not report {kind}")
    found = rule_for(jurisdiction, debt_type)
    if found is None:
        return ReportDecision(False, "jurisdiction",
                              f"no credit-reporting rule for {debt_type} in {jurisdiction or 'an unknown jurisdiction'}:"
                              " reporting is refused until one is written")
    where, rule = found
    if kind not in rule.kinds:
        return ReportDecision(False, "jurisdiction", f"{where} does not permit a {kind} report for {debt_type}: "
                                                     f"{rule.basis}")
    if disputed:
        return ReportDecision(False, "dispute", "the debt is disputed: nothing is reported until the dispute is resolved")
    if days_past_due < rule.min_days_past_due:
        return ReportDecision(False, "days_past_due", f"{where} {debt_type}: reported from {rule.min_days_past_due} "
                                                      f"days past due ({days_past_due} now)")
    if rule.notice_days is not None:
        if notice_sent_on is None:
            return ReportDecision(False, "notice", f"{where}: the debtor must be told before a report is furnished")
        if notice_sent_on > today or today < notice_sent_on + timedelta(days=rule.notice_days):
            return ReportDecision(False, "notice", f"{where}: {rule.notice_days} days of notice are required "
                                                   f"(notice sent {notice_sent_on.isoformat()})")
    return ReportDecision(True, "ok", f"{where} {debt_type}: {kind} report permitted")
