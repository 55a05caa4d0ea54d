-- Finding a customer by e-mail or phone (ListCustomers' filters), as the Postgres migrations
-- 20261129000003 and 20261129000004 do.
CREATE INDEX customers_by_email ON customers (email) WHERE email IS NOT NULL;
CREATE INDEX customers_by_phone ON customers (phone) WHERE phone IS NOT NULL;
