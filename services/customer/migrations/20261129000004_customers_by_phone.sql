-- no-transaction
-- And by phone (E.164, as stored), as customers_by_email.
CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_by_phone ON customers (phone) WHERE phone IS NOT NULL;
