-- When a run first began judging (microseconds); a resumed run keeps it. The counts before are
-- stored beside the first chunks, so they no longer mark a started run: this does (the Postgres
-- migration 20261202100021 says why).
ALTER TABLE evaluation_runs ADD COLUMN judging_started_at INTEGER;
UPDATE evaluation_runs SET judging_started_at = started_at WHERE counts_before IS NOT NULL;
