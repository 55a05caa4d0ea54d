-- How far the activity feed has brought the consumer (microseconds since the epoch): every event
-- committed before it has been applied. A scheduled evaluation waits for it to pass the end of
-- the period it judges.
ALTER TABLE feed_cursors ADD COLUMN caught_up_to INTEGER;
