-- API keys of ingress clients (billing systems, operators' tools). Only a keyed hash of each
-- secret is stored (HMAC-SHA256 with a server-side pepper, see ingress/apikeys.py); the secret is
-- shown once, when the key is created or rotated.
CREATE TABLE api_keys (
    key_id          text PRIMARY KEY,        -- public part of the key, `arr_<key_id>_<secret>`
    name            text NOT NULL,           -- the principal recorded as the actor, e.g. billing-1
    role            text NOT NULL CHECK (role IN ('billing', 'operator', 'supervisor', 'readonly')),
    secret_hash     bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text,
    expires_at      timestamptz,             -- set on the old key when a rotation keeps a grace period
    revoked_at      timestamptz,
    replaced_by     text REFERENCES api_keys(key_id) DEFERRABLE INITIALLY DEFERRED,
    last_used_at    timestamptz
);
-- One current key per name; rotated keys (replaced_by set) may linger until they expire.
CREATE UNIQUE INDEX api_keys_current_name ON api_keys(name) WHERE revoked_at IS NULL AND replaced_by IS NULL;
