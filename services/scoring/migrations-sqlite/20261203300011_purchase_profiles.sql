-- A customer's counted purchases in one row per program (the Postgres migration 20261203100023
-- says what it holds). SQLite has no time zones, so the profiles of purchases counted before
-- this migration are counted by the store when it opens (storage/sqlite/purchase_profiles.rs).
CREATE TABLE purchase_profiles (
    program_id         BLOB NOT NULL,
    customer_id        BLOB NOT NULL,
    last_purchase_at   INTEGER NOT NULL,
    first_day          TEXT NOT NULL,
    last_day           TEXT NOT NULL,
    purchase_days      INTEGER NOT NULL,
    repeat_spend_minor INTEGER NOT NULL,
    PRIMARY KEY (program_id, customer_id)
);
