-- Delivery streams wake on this NOTIFY. A statement trigger fires even when its statement
-- changes no rows, so an empty lease attempt woke every waiting stream, which tried to lease
-- again and notified again: idle streams polled in a loop. Notify only when rows changed.
DROP TRIGGER deliveries_notify ON deliveries;

CREATE OR REPLACE FUNCTION notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        PERFORM pg_notify('campaign_deliveries', '');
    END IF;
    RETURN NULL;
END $$;

-- Transition tables allow one event per trigger.
CREATE TRIGGER deliveries_inserted AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION notify_deliveries();
CREATE TRIGGER deliveries_updated AFTER UPDATE ON deliveries
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION notify_deliveries();
