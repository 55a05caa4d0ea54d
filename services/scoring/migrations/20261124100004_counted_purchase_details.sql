-- Explanations show where a counted purchase was made.
ALTER TABLE counted_purchases
    ADD COLUMN brand text NOT NULL DEFAULT '',
    ADD COLUMN sales_channel text NOT NULL DEFAULT '';
