-- Each customer's monthly buckets move onto their tier state (docs/SCORING.md, "Months on the
-- state"). The feed locks, reads and rewrites the state of every pair a purchase touches; with the
-- months in a table of their own each batch also paid their load and two writes, about a third
-- of its statement time (docs/BENCHMARKS.md).
--
-- Four arrays aligned by position: `months` holds the first day of each month with a purchase
-- that counts, oldest first, each once; the other three hold running totals through that month
-- (element i is the sum over months 1..i). A window's sum is then two subscripts found by binary
-- search, whatever the number of months: `x_through[width_bucket(last, months)]` less
-- `x_through[width_bucket(first - 1, months)]` (each NULL, read as 0, before the first month).
--
-- A constant default rewrites nothing: the lock this takes, which blocks reads of the states,
-- lasts an instant at any size. The buckets are copied in the next migration.
ALTER TABLE tier_states
    ADD COLUMN months            date[]   NOT NULL DEFAULT '{}',
    ADD COLUMN spend_through     bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN points_through    bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN purchases_through bigint[] NOT NULL DEFAULT '{}';
