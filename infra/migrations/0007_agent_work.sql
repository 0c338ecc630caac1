-- Agent work: tasks for people are listable, claimable, and carry the outcome of the call.
-- Existing rows stay valid: every new column is nullable (or numbered automatically), and
-- `task_id` gives each task, old ones included, a short number to claim it by.
ALTER TABLE agent_tasks ADD COLUMN IF NOT EXISTS task_id bigserial;
CREATE UNIQUE INDEX IF NOT EXISTS agent_tasks_task_id ON agent_tasks (task_id);
ALTER TABLE agent_tasks ADD COLUMN IF NOT EXISTS claimed_by text;        -- principal name (API key, OIDC, CLI)
ALTER TABLE agent_tasks ADD COLUMN IF NOT EXISTS claimed_at timestamptz;
ALTER TABLE agent_tasks ADD COLUMN IF NOT EXISTS outcome text;           -- reached | promise | refused | wrong_party | no_answer
ALTER TABLE agent_tasks ADD COLUMN IF NOT EXISTS outcome_at timestamptz;
ALTER TABLE agent_tasks ADD COLUMN IF NOT EXISTS outcome_by text;
ALTER TABLE agent_tasks ADD COLUMN IF NOT EXISTS outcome_detail jsonb;   -- the request and what the workflow answered
-- The outcome request's identity (Idempotency-Key, else a hash of the body) and the body's hash:
-- a repeat is answered from the row instead of being sent to the workflow again.
ALTER TABLE agent_tasks ADD COLUMN IF NOT EXISTS outcome_key text;
ALTER TABLE agent_tasks ADD COLUMN IF NOT EXISTS outcome_hash text;
CREATE INDEX IF NOT EXISTS agent_tasks_open ON agent_tasks (status, task_id);
CREATE INDEX IF NOT EXISTS agent_tasks_claimed ON agent_tasks (claimed_by, task_id) WHERE claimed_by IS NOT NULL;
CREATE INDEX IF NOT EXISTS agent_tasks_account ON agent_tasks (account_id, task_id);
