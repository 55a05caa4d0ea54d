-- The net spend of each profile's first purchase day (src/domain/purchase_profile.rs), so that
-- the feed adds a purchase from before the first day in place: that day's spend becomes repeat
-- spend. A backfill's purchases arrive in no order of time, and without it most of them made
-- the feed count their customer's profile again from every purchase (docs/BENCHMARKS.md).
--
-- Nullable, and left NULL on the profiles that exist: adding the column rewrites nothing, so
-- the migration takes no time at any size and the old replicas' feed can run on. A profile
-- without it is counted again by the first purchase from before its first day, which keeps it
-- from then on; `PgScoringStore::recount_purchase_profiles` fills every profile at once.
ALTER TABLE purchase_profiles ADD COLUMN first_day_spend_minor bigint;
