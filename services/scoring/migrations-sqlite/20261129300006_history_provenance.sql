-- What decided each history record, as in the Postgres migration
-- 20261129100015_history_provenance.sql: the window (instants in microseconds), the evaluation
-- run or the purchase, and an operator's act on an override with the override's end.
ALTER TABLE tier_history ADD COLUMN window_start INTEGER;
ALTER TABLE tier_history ADD COLUMN window_end INTEGER;
ALTER TABLE tier_history ADD COLUMN evaluation_run_id BLOB;
ALTER TABLE tier_history ADD COLUMN activity_id BLOB;
ALTER TABLE tier_history ADD COLUMN operator_name TEXT;
ALTER TABLE tier_history ADD COLUMN operator_reason TEXT;
ALTER TABLE tier_history ADD COLUMN override_expires_at INTEGER;
