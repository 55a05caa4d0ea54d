-- no-transaction
-- The call centre finds a customer by e-mail (ListCustomers' email filter). Built concurrently, so
-- writes go on meanwhile; one statement per file (Postgres runs several in one transaction).
CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_by_email ON customers (email) WHERE email IS NOT NULL;
