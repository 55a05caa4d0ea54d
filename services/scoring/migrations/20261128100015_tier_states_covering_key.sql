-- no-transaction
-- The tier states' primary key will carry what an evaluation needs to pick the members whose
-- state may change (earned rank, lapse, override end, the run that changed it), so a chunk of
-- 20,000 is filtered from the index alone and only the few candidates' rows are read. A write
-- that changes none of these (a purchase: version, since, last qualified) stays a HOT update.
-- Built concurrently (one statement); the next migration moves the key to it.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS tier_states_covering
    ON tier_states (program_id, customer_id)
    INCLUDE (earned_rank, lapsed_at, override_until, override_rank, changed_by_run);
