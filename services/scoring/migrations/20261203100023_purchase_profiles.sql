-- A customer's counted purchases in one row per program (src/domain/purchase_profile.rs): the
-- last purchase's instant, the first and last purchase day in the program's zone, the number of
-- purchase days and the net spend of those after the first. Purchases refunded in full do not
-- count; a customer without any has no row. The feed keeps it with the buckets, in each batch's
-- transaction; RFM recency and the value model read it at every evaluation instead of every
-- purchase (docs/SCORING.md, "Purchase profiles").
CREATE TABLE purchase_profiles (
    program_id         uuid NOT NULL,
    customer_id        uuid NOT NULL,
    last_purchase_at   timestamptz NOT NULL,
    first_day          date NOT NULL,
    last_day           date NOT NULL,
    purchase_days      integer NOT NULL,
    repeat_spend_minor bigint NOT NULL,
    PRIMARY KEY (program_id, customer_id)
);

-- Counting every stored purchase outlives the service's statement timeout on a large
-- population (the store's chunked recount takes 71-83 s for 12 million purchases): this
-- migration's transaction lifts it for itself (docs/DEPLOY.md, "Upgrading").
SET LOCAL statement_timeout = 0;

-- The profiles of the purchases counted so far, days in the zone of each program's policy in
-- force (UTC without one, as the service counts them). The same arithmetic as the service's
-- recount (storage/postgres/purchase_profiles.rs).
INSERT INTO purchase_profiles (program_id, customer_id, last_purchase_at, first_day, last_day, purchase_days,
                               repeat_spend_minor)
SELECT program_id, customer_id, max(last_at), min(day), max(day), count(*),
       sum(spend) - (array_agg(spend ORDER BY day))[1]
FROM (SELECT c.program_id, c.customer_id, (c.occurred_at AT TIME ZONE z.zone)::date AS day,
             sum(c.amount_minor - c.refunded_minor) AS spend, max(c.occurred_at) AS last_at
      FROM counted_purchases c
           JOIN (SELECT p.id, COALESCE((SELECT v.rules ->> 'time_zone' FROM policy_versions v
                                        WHERE v.program_id = p.id AND v.status = 'active'), 'UTC') AS zone
                 FROM programs p) z ON z.id = c.program_id
      WHERE c.refunded_minor < c.amount_minor
      GROUP BY 1, 2, 3) days
GROUP BY program_id, customer_id;
