-- One attempt at a time per idempotency key, without holding a connection across a provider call.
-- An attempt claims the row with a lease (owner token + expiry) in one short transaction, calls the
-- provider with no connection held, and records the outcome (clearing the lease) in another. A
-- crashed attempt's lease simply expires; it is never longer than the activity's start-to-close
-- timeout, after which Temporal retries anyway.
ALTER TABLE communications
    ADD COLUMN lease_owner text,
    ADD COLUMN lease_until timestamptz;
ALTER TABLE lockout_requests
    ADD COLUMN lease_owner text,
    ADD COLUMN lease_until timestamptz;
ALTER TABLE placements
    ADD COLUMN lease_owner text,
    ADD COLUMN lease_until timestamptz;
