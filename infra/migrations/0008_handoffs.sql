-- The playbooks' hand-offs (activities/registered_mail.py, activities/handoffs.py). Like the other
-- outbound tables: one row per business key, claimed with a lease (owner token + expiry) before the
-- provider is called with no connection held, the outcome recorded in a second short transaction.

-- Registered letters with proof of delivery. `idempotency_key` is the letter id; the receipt
-- (delivered / refused / returned) arrives later through /webhooks/postal.
CREATE TABLE IF NOT EXISTS registered_letters (
    idempotency_key text PRIMARY KEY,            -- the letter id
    account_id      text NOT NULL,
    template        text NOT NULL,
    language        text NOT NULL,
    recipient       text NOT NULL,               -- debtor | guarantor | co_borrower
    to_name         text NOT NULL,               -- personal data, like communications.address
    address         jsonb NOT NULL,
    service         text NOT NULL,               -- registered | recorded
    step_id         text NOT NULL,
    policy_ref      text NOT NULL,
    subject         text,
    body            text NOT NULL,               -- the letter as rendered and sent (evidence)
    provider        text NOT NULL,               -- outbox | postal
    tracking_ref    text,
    status          text NOT NULL,               -- claimed | sent | delivered | refused | returned
    receipt         jsonb,                       -- the receipt as signalled to the account
    receipt_at      timestamptz,
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS registered_letters_tracking ON registered_letters (tracking_ref)
    WHERE tracking_ref IS NOT NULL;
CREATE INDEX IF NOT EXISTS registered_letters_account ON registered_letters (account_id, created_at);

-- Partner hand-offs: credit hold / release (ERP), credit-bureau reports, recovery requests.
CREATE TABLE IF NOT EXISTS handoffs (
    idempotency_key text PRIMARY KEY,
    kind            text NOT NULL,               -- credit_hold | credit_release | credit_report | recovery
    account_id      text NOT NULL,
    provider        text NOT NULL,               -- outbox | erp | credit_bureau | recovery
    request         jsonb NOT NULL,
    status          text NOT NULL,               -- claimed | submitted | refused
    reference       text,                        -- the partner's reference
    answer          text,                        -- the partner's answer, or why it was refused
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    submitted_at    timestamptz
);
CREATE INDEX IF NOT EXISTS handoffs_account ON handoffs (account_id, kind, created_at);
