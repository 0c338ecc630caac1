-- Receivables ageing and DSO (domain/ageing.py). The `accounts` and `instalments` tables of 0001 are
-- never written (the account workflow keeps its balances in its own state), so the receivables the
-- report reads are kept here: each ledger batch an account writes carries its current instalment
-- balances (activities/ledger.py), replacing the account's rows when it is newer than what is held.
-- No personal data: account id, policy, currency and amounts only.
CREATE TABLE IF NOT EXISTS receivable_accounts (
    account_id      text PRIMARY KEY,
    currency        char(3) NOT NULL,
    policy_id       text NOT NULL,
    policy_ref      text NOT NULL,
    segment         text,
    opened_on       date NOT NULL,
    stage           text NOT NULL,
    as_of           date NOT NULL,          -- the debtor's date the balances were computed on
    statement_at    timestamptz NOT NULL,   -- when: an older statement never overwrites a newer one
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS receivable_accounts_policy ON receivable_accounts (policy_id);

CREATE TABLE IF NOT EXISTS receivable_lines (
    account_id      text NOT NULL REFERENCES receivable_accounts(account_id),
    line_id         text NOT NULL,          -- the charges engine's instalment id
    due_date        date NOT NULL,
    source          text NOT NULL,          -- billing | plan
    principal       bigint NOT NULL CHECK (principal >= 0),
    outstanding     bigint NOT NULL CHECK (outstanding >= 0),   -- principal and charges still owed
    PRIMARY KEY (account_id, line_id)
);
CREATE INDEX IF NOT EXISTS receivable_lines_open ON receivable_lines (account_id) WHERE outstanding > 0;

-- Weekly snapshots, one per scope ('all' or 'policy:<id>') and ISO week (its Monday): written once
-- by the `PortfolioAgeing` workflow's activity, so a retried or re-run week changes nothing.
CREATE TABLE IF NOT EXISTS ageing_reports (
    scope           text NOT NULL,
    week_start      date NOT NULL,
    as_of           date NOT NULL,
    window_days     integer NOT NULL,
    report          jsonb NOT NULL,         -- per currency: buckets (count, amount), outstanding, sales, dso
    accounts        integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, week_start)
);
CREATE INDEX IF NOT EXISTS ageing_reports_latest ON ageing_reports (scope, as_of DESC);
