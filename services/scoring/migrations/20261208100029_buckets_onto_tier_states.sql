-- Copies every customer's monthly buckets onto their tier state as month arrays and running
-- totals (columns added by the migration before), and drops the buckets' table (docs/SCORING.md,
-- "Months on the state").
--
-- Copying rewrites every buyer's state, which outlives the service's statement timeout on a
-- large population: this migration's transaction lifts it for itself. Until it commits, writers
-- of those states wait for their row locks; readers do not (docs/DEPLOY.md, "Upgrading").
SET LOCAL statement_timeout = 0;

-- No writer adds to a bucket while the copy reads them (an old replica still running would,
-- and its month would be lost; docs/DEPLOY.md says to stop them); readers go on until the drop.
LOCK TABLE buckets IN EXCLUSIVE MODE;

-- A customer with buckets but no state (a population loaded around the feed, which creates both
-- together) gets the one the feed would have given them: the base tier since joining.
INSERT INTO tier_states (program_id, customer_id, earned_rank, since, version, updated_at, months, spend_through,
                         points_through, purchases_through)
SELECT r.program_id, r.customer_id, 0, COALESCE(m.joined_at, r.first_month::timestamptz), 1, now(),
       r.months, r.spend_through, r.points_through, r.purchases_through
FROM (SELECT program_id, customer_id, min(month) AS first_month,
             array_agg(month ORDER BY month) AS months, array_agg(spend ORDER BY month) AS spend_through,
             array_agg(points ORDER BY month) AS points_through, array_agg(purchases ORDER BY month) AS purchases_through
      FROM (SELECT program_id, customer_id, month,
                   sum(net_spend_minor) OVER running AS spend, sum(points) OVER running AS points,
                   sum(purchases) OVER running AS purchases
            FROM buckets
            WINDOW running AS (PARTITION BY program_id, customer_id ORDER BY month)) t
      GROUP BY program_id, customer_id) r
LEFT JOIN members m ON m.customer_id = r.customer_id
ON CONFLICT (program_id, customer_id) DO UPDATE SET
    months = EXCLUDED.months, spend_through = EXCLUDED.spend_through, points_through = EXCLUDED.points_through,
    purchases_through = EXCLUDED.purchases_through;

-- Nothing reads it any more; an old replica still running would (docs/DEPLOY.md).
DROP TABLE buckets;
