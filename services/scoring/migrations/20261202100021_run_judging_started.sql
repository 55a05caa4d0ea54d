-- When a run first began judging; a resumed run keeps it. A run counts its tiers before beside
-- its first chunks (src/domain/evaluation.rs), so a stored `counts_before` no longer tells a
-- resumed run from a fresh one: this does. Runs that began before this migration are marked by
-- their counts, as they were.
ALTER TABLE evaluation_runs ADD COLUMN judging_started_at timestamptz;
UPDATE evaluation_runs SET judging_started_at = started_at WHERE counts_before IS NOT NULL;
