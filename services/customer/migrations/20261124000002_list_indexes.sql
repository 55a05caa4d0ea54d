-- Listing customers by status walks (status, id) instead of the whole primary key.
CREATE INDEX customers_status_id ON customers (status, id);
