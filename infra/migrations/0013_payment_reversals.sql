-- A payment billing reports returned by the bank (insufficient funds, a chargeback ...):
-- `POST /accounts/{id}/payment_reversals` (ingress/reversals.py) marks its row `status = 'reversed'`
-- and keeps what billing said, once per payment. The workflow backs it out (signal `payment_reversal`).
-- `reversed_at` set is the mark: the ledger's later upsert of the same payment keeps `reversed`.
ALTER TABLE payments ADD COLUMN IF NOT EXISTS reversed_at timestamptz;           -- when the bank returned it
ALTER TABLE payments ADD COLUMN IF NOT EXISTS reversal_reason text               -- schemas/events.py ReversalReason
    CHECK (reversal_reason IN ('insufficient_funds', 'account_closed', 'stopped_by_payer', 'unauthorised',
                               'chargeback', 'bank_error', 'other'));
ALTER TABLE payments ADD COLUMN IF NOT EXISTS reversal_detail text;              -- the scheme's own code and words
ALTER TABLE payments ADD COLUMN IF NOT EXISTS reversal_recorded_at timestamptz;  -- when the ingress recorded it
