-- Copies every purchase profile onto its tier state (columns added by the migration before) and
-- drops the profiles' table (docs/SCORING.md, "Purchase profiles").
--
-- Copying rewrites every buyer's state, which outlives the service's statement timeout on a
-- large population: this migration's transaction lifts it for itself. Until it commits, writers
-- of those states wait for their row locks; readers do not (docs/DEPLOY.md, "Upgrading").
SET LOCAL statement_timeout = 0;

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

-- Nothing reads it any more; an old replica still running would (docs/DEPLOY.md).
DROP TABLE purchase_profiles;
