-- Each purchase profile moves onto its tier state (docs/SCORING.md, "Purchase profiles"). The
-- feed locks, reads and rewrites the state of every pair a purchase touches; with the profile in
-- a table of its own each purchase also cost the profile's load and its rewrite, about a fifth of
-- the feed's statement time (docs/BENCHMARKS.md). All six columns are NULL on a state whose
-- customer has no purchase that counts, and set together otherwise.
--
-- Copying every profile rewrites every buyer's state, which outlives the service's statement
-- timeout on a large population: this migration's transaction lifts it for itself (docs/DEPLOY.md,
-- "Upgrading").
SET LOCAL statement_timeout = 0;

ALTER TABLE tier_states
    ADD COLUMN last_purchase_at      timestamptz,
    ADD COLUMN first_day             date,
    ADD COLUMN last_day              date,
    ADD COLUMN purchase_days         integer,
    ADD COLUMN repeat_spend_minor    bigint,
    ADD COLUMN first_day_spend_minor bigint;

-- A buyer without a state (a population loaded around the feed, which creates both together)
-- gets the one the feed would have given them: the base tier since joining, as when a state is
-- created at the first purchase.
INSERT INTO tier_states (program_id, customer_id, earned_rank, since, version, updated_at, last_purchase_at, first_day,
                         last_day, purchase_days, repeat_spend_minor, first_day_spend_minor)
SELECT f.program_id, f.customer_id, 0, COALESCE(m.joined_at, f.last_purchase_at), 1, now(), f.last_purchase_at,
       f.first_day, f.last_day, f.purchase_days, f.repeat_spend_minor, f.first_day_spend_minor
FROM purchase_profiles f LEFT JOIN members m ON m.customer_id = f.customer_id
ON CONFLICT (program_id, customer_id) DO UPDATE SET
    last_purchase_at = EXCLUDED.last_purchase_at, first_day = EXCLUDED.first_day, last_day = EXCLUDED.last_day,
    purchase_days = EXCLUDED.purchase_days, repeat_spend_minor = EXCLUDED.repeat_spend_minor,
    first_day_spend_minor = EXCLUDED.first_day_spend_minor;

DROP TABLE purchase_profiles;
