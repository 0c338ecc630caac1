-- Tasks for people are closed when their decision is taken (lockout approved or rejected, dispute
-- resolved, account cured or closed), with the resolution kept for the audit trail.
ALTER TABLE agent_tasks ADD COLUMN IF NOT EXISTS resolution text;
ALTER TABLE agent_tasks ADD COLUMN IF NOT EXISTS closed_at timestamptz;

-- Notices to a placed agency or law firm (payments, disputes, cure, write-off, closure), once each.
CREATE TABLE IF NOT EXISTS placement_notices (
    idempotency_key text PRIMARY KEY,
    account_id      text NOT NULL,
    target          text NOT NULL,
    reference       text,
    kind            text NOT NULL,
    summary         text NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}'::jsonb,
    provider        text NOT NULL,
    status          text NOT NULL DEFAULT 'claimed',
    partner_answer  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    lease_owner     text,              -- one attempt at a time (activities/idempotency.py)
    lease_until     timestamptz
);
CREATE INDEX IF NOT EXISTS placement_notices_account ON placement_notices (account_id);
