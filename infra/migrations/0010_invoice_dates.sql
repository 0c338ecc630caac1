-- Issue 16 (seed 002 #37, DSO): an instalment's invoice date when billing gives one (`invoiced_on`
-- in the start input). The ageing report dates a sale by it; lines without one keep the opening date.
ALTER TABLE receivable_lines ADD COLUMN IF NOT EXISTS invoiced_on date;
