-- The customer service's schema. Every table lives in the `customer` schema (the connection's
-- search_path), which no other service reads.

-- One sequence numbers every feed row, activities and customer events alike, so the feed has
-- one order within a transaction.
CREATE SEQUENCE feed_seq;

-- The transaction id that wrote a feed row, as a bigint (xid8 is 64-bit and never wraps).
CREATE FUNCTION current_xid() RETURNS bigint
    LANGUAGE sql VOLATILE
    AS $$ SELECT pg_current_xact_id()::text::bigint $$;

-- Wakes feed watchers once per writing statement; delivered only when the transaction commits.
CREATE FUNCTION notify_feed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN PERFORM pg_notify('customer_feed', ''); RETURN NULL; END $$;

CREATE TABLE customers (
    id           uuid PRIMARY KEY,
    external_id  text UNIQUE,
    name         text NOT NULL,
    email        text,
    phone        text,
    birth_date   date,
    joined_at    timestamptz NOT NULL,
    attributes   jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL CHECK (status IN ('active', 'erased')),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    erased_at    timestamptz,
    erase_reason text
);
CREATE INDEX customers_attributes ON customers USING gin (attributes jsonb_path_ops);
CREATE INDEX customers_joined_at ON customers (joined_at);
CREATE INDEX customers_birthday ON customers ((extract(month FROM birth_date)), (extract(day FROM birth_date)))
    WHERE birth_date IS NOT NULL;

-- Customer lifecycle events of the feed (insert-only).
CREATE TABLE customer_events (
    seq         bigint PRIMARY KEY DEFAULT nextval('feed_seq'),
    xid         bigint NOT NULL DEFAULT current_xid(),
    customer_id uuid NOT NULL REFERENCES customers (id),
    kind        text NOT NULL CHECK (kind IN ('created', 'erased')),
    occurred_at timestamptz NOT NULL
);
CREATE INDEX customer_events_feed ON customer_events (xid, seq);
CREATE TRIGGER customer_events_notify AFTER INSERT ON customer_events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_feed();

CREATE TABLE consents (
    customer_id uuid NOT NULL REFERENCES customers (id),
    channel     text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    granted     boolean NOT NULL,
    changed_at  timestamptz NOT NULL,
    source      text NOT NULL,
    PRIMARY KEY (customer_id, channel)
);

CREATE TABLE consent_changes (
    position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES customers (id),
    channel     text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    granted     boolean NOT NULL,
    changed_at  timestamptz NOT NULL,
    source      text NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX consent_changes_by_customer ON consent_changes (customer_id, position DESC);

CREATE TABLE activities (
    id                    uuid PRIMARY KEY,
    seq                   bigint NOT NULL DEFAULT nextval('feed_seq'),
    xid                   bigint NOT NULL DEFAULT current_xid(),
    customer_id           uuid NOT NULL REFERENCES customers (id),
    kind                  text NOT NULL CHECK (kind IN ('purchase', 'refund')),
    idempotency_key       text NOT NULL UNIQUE,
    fingerprint           bytea NOT NULL,
    amount_minor          bigint NOT NULL CHECK (amount_minor > 0),
    currency              text NOT NULL,
    occurred_at           timestamptz NOT NULL,
    recorded_at           timestamptz NOT NULL,
    brand                 text NOT NULL DEFAULT '',
    sales_channel         text NOT NULL DEFAULT '',
    store_id              text NOT NULL DEFAULT '',
    line_items            jsonb NOT NULL DEFAULT '[]'::jsonb,
    refunded_purchase_id  uuid REFERENCES activities (id),
    refunded_amount_minor bigint NOT NULL DEFAULT 0,
    purchase_occurred_at  timestamptz NOT NULL,
    -- The last line of defence of the refund rule; the service checks it first under a row lock.
    CHECK (refunded_amount_minor >= 0 AND refunded_amount_minor <= amount_minor),
    CHECK ((kind = 'refund') = (refunded_purchase_id IS NOT NULL))
);
CREATE INDEX activities_feed ON activities (xid, seq);
CREATE INDEX activities_by_customer ON activities (customer_id, occurred_at DESC, id DESC);
CREATE TRIGGER activities_notify AFTER INSERT ON activities
    FOR EACH STATEMENT EXECUTE FUNCTION notify_feed();
