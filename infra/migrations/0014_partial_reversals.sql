-- A payment returned in part (a partial chargeback): how much was returned. The row's status is
-- `partly_reversed` then (`reversed` for the whole payment); NULL on rows reversed before this column.
ALTER TABLE payments ADD COLUMN IF NOT EXISTS reversed_amount bigint CHECK (reversed_amount > 0);
