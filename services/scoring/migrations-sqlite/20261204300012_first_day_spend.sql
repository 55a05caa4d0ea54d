-- The net spend of each profile's first purchase day (the Postgres migration 20261204100024
-- says why). The store counts the profiles that exist again when it opens, which fills it
-- (storage/sqlite/purchase_profiles.rs).
ALTER TABLE purchase_profiles ADD COLUMN first_day_spend_minor INTEGER;
