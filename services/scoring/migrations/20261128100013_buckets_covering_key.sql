-- no-transaction
-- The buckets' primary key will carry the amounts, so an evaluation sums a range of customers'
-- windows from the index alone (an index-only scan reads a few hundred consecutive index pages
-- per 10,000 customers, where the heap scatters each customer's months over as many pages).
-- Built concurrently, so bucket writers go on meanwhile (one statement: Postgres runs several
-- in one implicit transaction); the next migration moves the key to it.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS buckets_covering
    ON buckets (program_id, customer_id, month) INCLUDE (net_spend_minor, points, purchases);
