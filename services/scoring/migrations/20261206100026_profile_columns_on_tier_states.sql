-- Each purchase profile moves onto its tier state (docs/SCORING.md, "Purchase profiles"). The
-- feed locks, reads and rewrites the state of every pair a purchase touches; with the profile in
-- a table of its own each purchase also cost the profile's load and its rewrite, about a fifth of
-- the feed's statement time (docs/BENCHMARKS.md). All six columns are NULL on a state whose
-- customer has no purchase that counts, and set together otherwise.
--
-- Nullable columns without a default rewrite nothing: the lock this takes, which blocks reads of
-- the states, lasts an instant at any size. The profiles are copied in the next migration, in a
-- transaction of its own, which reads of the states do not wait for.
ALTER TABLE tier_states
    ADD COLUMN last_purchase_at      timestamptz,
    ADD COLUMN first_day             date,
    ADD COLUMN last_day              date,
    ADD COLUMN purchase_days         integer,
    ADD COLUMN repeat_spend_minor    bigint,
    ADD COLUMN first_day_spend_minor bigint;
