-- Evidence bundles handed to litigation counsel (audit/evidence_bundle.py): stored here, once per
-- placement key, so the ingress (which may run on another host than the worker that built the
-- bundle) serves them at GET /accounts/{account_id}/evidence-bundles/{name}. A retried referral
-- reads the stored bytes back, so its SHA-256 never changes; the checks hold the hash and size to
-- the content. Bounded by MAX_EVIDENCE_BUNDLE_BYTES (8 MiB) where the bundle is built.
CREATE TABLE IF NOT EXISTS evidence_bundles (
    name            text PRIMARY KEY,       -- evidence-<account>-<hash of the placement key>.json
    account_id      text NOT NULL,
    placement_key   text NOT NULL,
    sha256          text NOT NULL CHECK (sha256 = encode(sha256(content), 'hex')),
    bytes           integer NOT NULL CHECK (bytes = octet_length(content)),
    content         bytea NOT NULL,         -- the JSON exactly as counsel is handed it
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS evidence_bundles_account ON evidence_bundles (account_id);

-- What counsel was handed never changes (a retention job may still delete a bundle).
CREATE OR REPLACE FUNCTION evidence_bundles_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'evidence_bundles rows are never updated';
END $$;
DROP TRIGGER IF EXISTS evidence_bundles_no_update ON evidence_bundles;
CREATE TRIGGER evidence_bundles_no_update BEFORE UPDATE ON evidence_bundles
    FOR EACH ROW EXECUTE FUNCTION evidence_bundles_immutable();
