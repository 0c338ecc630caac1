"""The operator updates of `AccountCollection`: name → the schema of its one JSON argument.

One table drives the HTTP routes, the CLI and the docs, so a new update is added once.
Shape checks run here (422); checks that need the account run in the workflow's update
validator (400 with its message)."""
from __future__ import annotations

from pydantic import BaseModel

from schemas import events as ev

UPDATES: dict[str, tuple[type[BaseModel], str]] = {
    "promise_to_pay": (ev.PromiseToPay, "Record a promise to pay an amount by a date."),
    "open_dispute": (ev.OpenDispute, "Open a dispute; by policy, contact and escalation pause."),
    "resolve_dispute": (ev.ResolveDispute, "Resolve a dispute: upheld (with an adjustment) or rejected."),
    "repayment_plan": (ev.RepaymentPlan, "Replace the schedule with a signed repayment plan."),
    "pause": (ev.Pause, "Pause contact and escalation."),
    "resume": (ev.Resume, "Resume a paused account."),
    "approve_lockout": (ev.ApproveLockout, "Approve the pending GPS lockout request."),
    "reject_lockout": (ev.RejectLockout, "Reject the pending GPS lockout request."),
    "emergency_unlock": (ev.EmergencyUnlock, "Unlock the machine now, whatever the balance."),
    "waive_fee": (ev.WaiveFee, "Waive a fee (approval required)."),
    "opt_out": (ev.OptOut, "Record the debtor's opt-out from a channel."),
    "cease_communication": (ev.CeaseCommunication, "Cease communication (only legally required notices)."),
    "reinstate_phone": (ev.ReinstatePhone, "Reinstate a phone number marked dead or wrong party in error "
                                           "(supervisor; note required)."),
    "withdraw_cease": (ev.WithdrawCease, "Withdraw a cease-communication recorded in error or withdrawn by the "
                                         "person (supervisor; note required)."),
    "write_off": (ev.WriteOff, "Write the balance off (approval required)."),
    "close": (ev.Close, "Close the account."),
    "record_refund": (ev.RecordRefund, "Record credit paid back to the debtor (at most the credit held; supervisor)."),
    "change_policy": (ev.ChangePolicy, "Move the account to another policy or version (latest when no version)."),
    "decide_approval": (ev.DecideApproval, "Approve or reject a pending four-eyes request (another person)."),
    "request_recovery": (ev.RequestRecovery, "Hand the machine to the recovery partner: repossession (supervisor) "
                                             "or voluntary surrender."),
    "recovery_update": (ev.RecoveryUpdate, "Record a recovery step: taken back, stored, returned or cancelled."),
    "decide_disposal": (ev.DecideDisposal, "Decide a stored machine's fate: dispose or return (supervisor)."),
}

# Signals the ingress forwards besides `payment` (which has its own endpoint and ledger row).
SIGNALS: dict[str, tuple[type[BaseModel], str]] = {
    "risk": (ev.RiskSignal, "Report a risk signal (tamper, GPS offline, bankruptcy, ...)."),
    "contact": (ev.Contact, "Report a contact outcome (conversation, no answer, inbound reply, ...)."),
}
