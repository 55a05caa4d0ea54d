-- Evaluation runs that survive the death of the replica running them.
--
-- A run's counters grow in the same transaction as each page of decisions, so a resumed run
-- reports the whole run; the counts before are kept from its first start.
ALTER TABLE evaluation_runs
    ADD COLUMN members_evaluated bigint NOT NULL DEFAULT 0,
    ADD COLUMN upgrades          bigint NOT NULL DEFAULT 0,
    ADD COLUMN downgrades        bigint NOT NULL DEFAULT 0,
    ADD COLUMN counts_before     jsonb,
    ADD COLUMN resumed           integer NOT NULL DEFAULT 0;
CREATE INDEX evaluation_runs_running ON evaluation_runs (started_at) WHERE status = 'running';

-- The run whose decision last changed the state: a resumed run skips those it already changed,
-- so nobody is dropped twice by one run. (Members it judged without a change are judged again,
-- which changes nothing.)
ALTER TABLE tier_states ADD COLUMN changed_by_run uuid;
