-- no-transaction
-- Members in customer order with their erasure, from the index alone: a simulation walks the
-- members, their bucket sums (the buckets' covering key) and their tier states side by side in
-- customer order (merge joins), where reading the members' heap in key order cost a second per
-- million (docs/BENCHMARKS.md). Built concurrently: the feed goes on writing members meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS members_in_customer_order ON members (customer_id) INCLUDE (erased);
