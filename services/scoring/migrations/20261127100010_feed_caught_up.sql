-- How far the activity feed has brought the consumer: every event committed before this instant
-- (the customer service's clock) has been applied. A scheduled evaluation waits for it to pass
-- the end of the period it judges.
ALTER TABLE feed_cursors ADD COLUMN caught_up_to timestamptz;
