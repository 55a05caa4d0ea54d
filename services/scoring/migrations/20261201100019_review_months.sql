-- Each tier state keeps the first month at whose end an evaluation could lower its tier, found
-- from the buckets by whoever last wrote it, and the policy version it was found under
-- (src/domain/review.rs). A run reads only the states whose month has come, whose policy is not
-- the one in force, that have lapsed or whose override has ended. NULL: not known yet (read at
-- the next run). Nullable columns without a default: no rewrite of the table.
ALTER TABLE tier_states ADD COLUMN review_month date, ADD COLUMN reviewed_under uuid;
