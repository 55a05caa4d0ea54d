-- See the Postgres migration 20261128100012_lapses.sql: states say when an evaluation first
-- found their member below the earned tier; programs when their last finished evaluation began.
ALTER TABLE tier_states ADD COLUMN lapsed_at INTEGER;
ALTER TABLE programs ADD COLUMN last_evaluated_at INTEGER;
