-- Arrears ledger and outbox. Money is bigint minor units with an ISO 4217 currency.
-- Every table written by an activity has a business idempotency key, so a retried or
-- replayed activity is a no-op (INSERT ... ON CONFLICT DO NOTHING).

CREATE TABLE accounts (
    account_id      text PRIMARY KEY,
    currency        char(3) NOT NULL,
    debtor          jsonb NOT NULL,           -- personal data: name, phone, email, timezone, language
    policy_id       text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE instalments (
    account_id      text NOT NULL REFERENCES accounts(account_id),
    due_date        date NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    source          text NOT NULL DEFAULT 'billing',   -- billing | repayment_plan
    PRIMARY KEY (account_id, due_date, source)
);

CREATE TABLE payments (
    payment_id      text PRIMARY KEY,
    account_id      text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        char(3) NOT NULL,
    received_at     timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'received',  -- received | applied | rejected
    allocation      jsonb,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_account ON payments(account_id);

-- Every outbound communication (SMS, email, call, letter), whatever the provider.
CREATE TABLE communications (
    idempotency_key     text PRIMARY KEY,
    account_id          text NOT NULL,
    channel             text NOT NULL,       -- sms | email | voice | letter
    template            text NOT NULL,
    language            text NOT NULL,
    recipient           text NOT NULL,       -- debtor | guarantor | co_borrower
    address             text,                -- phone number or e-mail address used
    step_id             text NOT NULL,
    policy_ref          text NOT NULL,
    provider            text NOT NULL,       -- outbox | twilio | sendgrid | ...
    provider_message_id text,
    status              text NOT NULL,       -- queued | sent | failed
    delivery_status     text,                -- delivered | undelivered | bounced | opened | ...
    delivery_updated_at timestamptz,
    subject             text,
    body                text,
    compliance          jsonb,               -- the contact-rules decision that allowed it
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX communications_account ON communications(account_id, created_at);
CREATE UNIQUE INDEX communications_provider_message ON communications(provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;

CREATE TABLE promises (
    promise_key     text PRIMARY KEY,        -- account_id:promise_id
    account_id      text NOT NULL,
    amount          bigint NOT NULL,
    promised_date   date NOT NULL,
    status          text NOT NULL,           -- open | kept | broken
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE disputes (
    dispute_key     text PRIMARY KEY,        -- account_id:dispute_id
    account_id      text NOT NULL,
    reason          text NOT NULL,
    status          text NOT NULL,           -- open | upheld | rejected
    adjustment      bigint NOT NULL DEFAULT 0,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz
);

CREATE TABLE lockout_requests (
    idempotency_key text PRIMARY KEY,
    account_id      text NOT NULL,
    asset_id        text NOT NULL,
    device_id       text,
    command         text NOT NULL,           -- lock | unlock
    reason          text NOT NULL,
    emergency       boolean NOT NULL DEFAULT false,
    provider        text NOT NULL,
    request_id      text,                    -- the telematics provider's request id
    state           text NOT NULL,           -- requested | accepted | acknowledged | confirmed | failed
    requested_at    timestamptz NOT NULL DEFAULT now(),
    confirmed_at    timestamptz
);
CREATE UNIQUE INDEX lockout_requests_request_id ON lockout_requests(provider, request_id)
    WHERE request_id IS NOT NULL;

CREATE TABLE placements (
    idempotency_key text PRIMARY KEY,
    account_id      text NOT NULL,
    target          text NOT NULL,           -- agency | litigation
    provider        text NOT NULL,
    reference       text,
    record          jsonb NOT NULL,          -- balance itemisation, dates, contact history summary
    status          text NOT NULL,           -- placed | recalled | failed
    placed_at       timestamptz NOT NULL DEFAULT now(),
    recalled_at     timestamptz
);

CREATE TABLE agent_tasks (
    idempotency_key text PRIMARY KEY,
    account_id      text NOT NULL,
    reason          text NOT NULL,
    detail          text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'open',
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Inbound provider events (webhooks), deduplicated by the provider's own event id.
CREATE TABLE inbound_events (
    provider        text NOT NULL,
    event_id        text NOT NULL,
    kind            text NOT NULL,
    account_id      text,
    payload         jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

-- Append-only audit log: every fact and decision about an account, and operator actions.
CREATE TABLE audit_log (
    seq             bigserial PRIMARY KEY,
    entry_key       text NOT NULL UNIQUE,
    account_id      text,
    kind            text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    actor           text NOT NULL DEFAULT 'workflow',
    summary         text NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_account ON audit_log(account_id, occurred_at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
