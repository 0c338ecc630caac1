-- Runs the ledger sweep (activities/ledger_recovery.py, workflows/ledger_sweep.py) has checked: an
-- account run that ended without closing (terminated, reset, cancelled, timed out) is
-- replayed once for the ledger records it never wrote, then skipped by every later sweep.
CREATE TABLE IF NOT EXISTS ledger_checked_runs (
    run_id          text PRIMARY KEY,
    account_id      text NOT NULL,
    status          text NOT NULL,          -- how the run ended (Temporal's execution status)
    closed_at       timestamptz,
    records         integer NOT NULL,       -- ledger records the run made
    written         integer NOT NULL,       -- of them, those the sweep wrote (PostgreSQL lacked them)
    outcome         text NOT NULL CHECK (outcome IN ('complete', 'recovered', 'does_not_replay')),
    checked_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ledger_checked_runs_account ON ledger_checked_runs (account_id);
