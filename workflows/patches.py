"""Every `workflow.patched` id of AccountCollection, and the ones a run records all at once.

A patch id is recorded, as a marker and an upsert of `TemporalChangeVersion`, in the first task that
asks for it. Asked where each change first applies (a payment, a risk sign, a ladder step), that was
two events and a visibility write in the middle of an account's life, for every id, in every run.
A run opened since PATCHES_AT_OPEN records that one id in its opening task and then takes every id
in FOLDED_AT_OPEN as applied without asking; runs recorded before it ask for each id where they
always did, so their histories replay unchanged.

Each FOLDED set is frozen: a patch added later gets its own id and is asked where it applies (a run
opened under "patches-at-open-1" never had it). Folding later ids means a new at-open id with its own
list, every list kept for the histories that carry them (AT_OPEN, newest first: a live run records
the first; a replay finds the one its history holds).
"""
from __future__ import annotations

# A handler applies at once once the account is open, before the loop acts again in the same task.
HANDLERS_APPLY_AT_ONCE = "handlers-apply-at-once"
# A ladder message's purpose (legal notice or collection) follows the step's action, not its template's
# name (asked only where the two differ).
PURPOSE_FROM_ACTION = "purpose-from-step-action"
# Every pre-due step sharing a day offset runs (asked only under a policy that has such steps).
PRE_DUE_SHARE_A_DAY = "pre-due-steps-share-a-day"
# Under a policy with a litigation referral after its agency placement, an account placed with the
# agency still takes that referral (asked only while such an account is placed).
AGENCY_THEN_LEGAL = "agency-then-litigation"
# Agents' reported call attempts count toward the call cap.
AGENT_CALLS_COUNT = "agent-call-attempts-count"
# The risk-sign catalogue's kinds and the agreed region (asked only for a kind it changes).
RISK_SIGNS_CATALOGUE = "risk-signs-catalogue"
# A task closes when its outcome is recorded.
CLOSE_TASK_ON_OUTCOME = "close-task-on-outcome"
# Resuming a hold to verify a risk sign closes its verification task.
CLOSE_VERIFY_ON_RESUME = "close-verify-task-on-resume"
# Compressed time: a turn woken only by its late timer acts at the instant the timer was due.
COMPRESSED_TIME_AT_TIMER_DUE = "compressed-time-acts-at-timer-due"

PATCHES_AT_OPEN = "patches-at-open-1"
FOLDED_AT_OPEN = frozenset({
    HANDLERS_APPLY_AT_ONCE, PURPOSE_FROM_ACTION, PRE_DUE_SHARE_A_DAY, AGENCY_THEN_LEGAL, AGENT_CALLS_COUNT,
    RISK_SIGNS_CATALOGUE, CLOSE_TASK_ON_OUTCOME, CLOSE_VERIFY_ON_RESUME, COMPRESSED_TIME_AT_TIMER_DUE,
})

# Added after PATCHES_AT_OPEN, folded since PATCHES_AT_OPEN_2 (a run opened under the first asks where each applies).
# A ladder step deferred to a later day (a weekend, a holiday) keeps its own time of day there.
DEFERRAL_KEEPS_STEP_TIME = "deferral-keeps-step-time"
# No GPS-lockout warning or request for a machine back in the lender's hands (asked only then).
NO_LOCKOUT_AFTER_RECOVERY = "no-lockout-after-recovery"
# A broken promise charges the policy's fee (asked only under a policy that has one).
BROKEN_PROMISE_FEE = "broken-promise-fee"
# The opening turn acts after the messages that arrived with the start (a signal-with-start, a payment
# sent right after it): the first turn no longer contacts a debtor whose payment the task already held.
OPENING_AFTER_MESSAGES = "opening-turn-after-messages"

# Added after PATCHES_AT_OPEN_2, asked where it applies (a cancellation request) in every run.
# A cancellation request (the Web UI's Cancel, `temporal workflow cancel`) ends the run only after
# the account has written what it holds: the records waiting for their batch, the charges accrued.
RECORDS_WRITTEN_ON_CANCEL = "records-written-on-cancel"

# Added after PATCHES_AT_OPEN_2, asked only when a start cannot be opened while updates wait for it.
# Those updates are refused with the reason the run fails, before it fails, instead of being left
# unfinished (their callers were told only that the run had completed).
UPDATES_TOLD_WHY_NOT_OPENED = "updates-told-why-not-opened"

# Added after PATCHES_AT_OPEN_2, asked only when an account is paid off holding credit. The money left
# over (an overpayment that paid it off, or credit held without prepayment beyond the last instalment)
# is owed back: a person is asked to refund it, keyed by the payment that left it, before the run can
# complete. Before it, only a payment arriving after the close opened a refund task.
REFUND_CREDIT_ON_PAY_OFF = "refund-credit-on-pay-off"

# Added after PATCHES_AT_OPEN_2, asked only when an opt-out's address is neither a phone number nor
# an e-mail address ("()", "n/a"): refused, where it matched every person with no phone or no e-mail.
OPT_OUT_ADDRESS_NAMES_ONE = "opt-out-address-names-one"

# Added after PATCHES_AT_OPEN_2, asked only when a device confirms a lock while the lockout is approved
# and no lock command is in flight: it matches nothing (recorded only), where it marked the machine
# locked before any command was sent.
LOCK_CONFIRMED_ONLY_WHEN_SENT = "lock-confirmed-only-when-sent"

# Added after PATCHES_AT_OPEN_2, asked only when a task's payments go over its work budget
# (workflows/pacing.py): the payments over it wait for one short timer and go on in the next task,
# where a burst of thousands failed every task of the account.
PAYMENTS_PACED = "payments-paced"
# Added after PAYMENTS_PACED, asked only when a payment cannot be applied at once (the account not yet
# open with a hundred messages waiting, the task's budget spent, payments queued ahead of it): it is
# queued and one worker applies the queue in order, where each such payment waited in its own handler
# (workflows/pacing.py).
PAYMENTS_QUEUED = "payments-queued"
# Added after PAYMENTS_QUEUED, asked only when a payment whose id is no longer remembered is found on the
# charges book: a duplicate, recorded and ignored, where it was counted again and handed to a person.
PAYMENT_ON_BOOK_IS_DUPLICATE = "payment-on-book-is-duplicate"
# Added after it, asked only when a supervisor closes or writes off an account holding credit: a person
# is asked to refund it (as at a pay-off), where the run ended holding the debtor's money, nobody told.
REFUND_CREDIT_ON_CLOSE = "refund-credit-on-close"
# Added after it, asked only when a contact outcome names an open task a contact does not answer (an
# approval, a dispute, a refund ...): the task stays open and the refusal is recorded, where any open
# task named so was closed (schemas/agent_work.py contact_answers; the ingress refused it already).
CONTACT_CLOSES_ITS_TASKS_ONLY = "contact-closes-its-tasks-only"
# Added after it, asked only when a payment arrives while the charges book is full: one task a day to
# apply them by hand, where each payment opened its own (a burst left thousands, in state and history).
BOOK_FULL_ONE_TASK = "book-full-one-task"
# Added after it, asked only when a run is started under a workflow id that is not its account's
# (`account-<account_id>`, as the ingress and the CLI start it): the run fails once, where it ran and
# took the payments sent to the account its id names.
WORKFLOW_ID_NAMES_ACCOUNT = "workflow-id-names-account"
# Added after it, asked only when a dispute is resolved with an adjustment: reducing principal is a
# supervisor's decision, and under a policy that asks a second person for write-offs it is requested
# for approval; any operator could reduce principal to nothing so, where a write-off needs both.
DISPUTE_ADJUSTMENT_SUPERVISED = "dispute-adjustment-supervised"
# Added after it, asked only when a payment needs a task of a kind ("payment date to check", "refund
# overpayment") while 20 of that kind are open: one task a day gathers the rest, where each payment
# opened its own (a burst filled the state carried across continue-as-new past Temporal's payload limit).
PAYMENT_TASKS_GATHERED = "payment-tasks-gathered"
# Added after it, asked only when the state to carry across continue-as-new is past 384 KiB: older
# payment ids and timeline entries are forgotten, and past 480 KiB the run goes on without continuing
# as new (a task for an engineer), where the payload past Temporal's 512 KiB failed every task
# (workflows/carried.py).
CARRIED_STATE_MEASURED = "carried-state-measured"
# Added after it, asked only when a closed account would complete with a refund task open: the run
# waits until the refund is recorded (record_refund) or the task resolved by hand, where it completed
# after its closing grace and a refund done later could no longer be recorded on the account.
REFUND_BEFORE_COMPLETE = "refund-before-complete"
# Added after it, asked only when a supervisor's promise meets the policy's refusal (too many broken
# promises, or below the policy's minimum share of what is past due): accepted and recorded as over
# the policy, where it was refused (the refusal said a supervisor could, and none could).
PROMISE_SUPERVISOR_OVERRULES = "promise-supervisor-overrules"
# Added after it, asked only when a caller other than a supervisor (an operator, the CLI, billing) pauses
# collection open-ended or past 30 days (schemas/limits.py MAX_OPERATOR_PAUSE_DAYS): refused, where any
# operator could stop an account's collection for a year, or for good.
PAUSE_BOUNDED_FOR_OPERATORS = "pause-bounded-for-operators"
# Added after it, asked only when a repayment plan the policy would let an operator agree alone puts
# payment off (its first instalment more than 31 days away, or a balloon: domain/restructuring.py
# plan_deferral): a second person's approval is requested, where the plan applied at once (any
# operator could hold collection for the policy's whole term with nothing paid).
PLAN_DEFERRAL_APPROVED = "plan-deferral-approved"
# Added after it, asked only when a supervisor resumes, with a note, an account whose collection a risk
# sign stopped (bankruptcy, death): the stop is lifted, where nothing could lift it (a report on the
# wrong account stopped collection for good).
STOP_LIFTED_BY_SUPERVISOR = "stop-lifted-by-supervisor"
# Added after it, asked only when a payment id first falls out of the latest MAX_PAYMENT_IDS the account
# remembers: from then on the ids past the window are kept in a Bloom filter (domain/payment_memory.py)
# and a payment whose id it may hold is held for a person, where an old id merged off the charges book
# and sent again straight to Temporal was counted a second time.
FORGOTTEN_PAYMENT_IDS_KEPT = "forgotten-payment-ids-kept"
# Added after it, asked only when a payment finds the charges book full within a run: same-day payments
# merge then (as at continue-as-new) and the payment is applied, where it and every later one of a
# burst went to a person (one task a day) while the account went on escalating a debtor who had paid.
# (Tried once as book-merged-when-full, before forgotten-payment-ids-kept, and reverted unreleased: a
# merged id past the remembered window, sent again, was counted twice; it is remembered now.)
BOOK_MERGED_IN_RUN = "book-merged-in-run"
# Added after it, asked only when the `arrears` CLI (role `cli`) takes a supervisor's decision: allowed,
# as for any client of Temporal itself (docs/security.md), where every such check refused it and the
# CLI's documented write-off, close, lockout and refund commands could not work.
CLI_TRUSTED_AS_SUPERVISOR = "cli-trusted-as-supervisor"
# Added after it, asked only when a `payment_reversal` signal arrives: the returned payment is backed out
# (workflows/reversals.py), where the signal was unknown, recorded and ignored, and an account paid by
# money that never came stayed cured, or paid off.
PAYMENT_REVERSAL = "payment-reversal"
# Added after it, asked only when an episode begins on an anchor an earlier episode worked (a payment
# that cured it was returned): the ladder's steps are keyed anew for it (`:r<round>`) and the current
# stage's action is taken again, where every step of that anchor counted as done and collection stalled
# (no credit hold again, no hand-over again).
LADDER_AGAIN_ON_RELAPSE = "ladder-again-on-relapse"
# Added after it, asked only when a `payment_reversal` names a payment the account does not know: the
# return is kept (MAX_RETURNS_AWAITING) and backed out when its payment arrives, where it was rejected
# and the payment, arriving after it (billing's messages crossed, a retried payment signal), stood as
# paid with money the bank had already returned.
RETURN_BEFORE_PAYMENT = "return-before-payment"
# Added after it, asked only when a return names a payment already returned, for another amount or
# reason: a second return (a second partial chargeback) goes to a person, where it was taken for the
# first sent again and ignored, and the money it took back was never counted.
SECOND_RETURN_TO_PERSON = "second-return-to-person"
# Added after it, asked only when a payment id the bank returned is sent again on another day or for
# another amount (a re-presentment under the same id): held for a person, where it was taken for the
# original sent again and ignored, and the debtor's money, if it cleared this time, was never counted.
PAYMENT_AFTER_ITS_RETURN = "payment-after-its-return"

# Added after PATCHES_AT_OPEN_2, asked only when a phone_dead risk sign names a person the account
# does not know: rejected (recorded, nothing changed), where it marked the debtor's phone dead.
RISK_PERSON_KNOWN = "risk-person-known"

PATCHES_AT_OPEN_2 = "patches-at-open-2"
FOLDED_AT_OPEN_2 = FOLDED_AT_OPEN | frozenset({
    DEFERRAL_KEEPS_STEP_TIME, NO_LOCKOUT_AFTER_RECOVERY, BROKEN_PROMISE_FEE, OPENING_AFTER_MESSAGES,
})
# (at-open id, the ids it folds), newest first.
AT_OPEN: tuple[tuple[str, frozenset[str]], ...] = ((PATCHES_AT_OPEN_2, FOLDED_AT_OPEN_2),
                                                   (PATCHES_AT_OPEN, FOLDED_AT_OPEN))
