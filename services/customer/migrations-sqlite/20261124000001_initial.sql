-- The customer service's tables in SQLite, for the all-in-one development mode: the same tables
-- as the Postgres migrations, with ids as 16-byte blobs, instants as microseconds since the
-- epoch, documents as JSON text. The feed's order is (xid, seq) as in Postgres: `xid` is the
-- number of the writing transaction (SQLite has one writer, so they commit in that order) and
-- `seq` a counter across both feed tables.

CREATE TABLE customers (
    id           BLOB PRIMARY KEY,
    external_id  TEXT UNIQUE,
    name         TEXT NOT NULL,
    email        TEXT,
    phone        TEXT,
    birth_date   TEXT,
    joined_at    INTEGER NOT NULL,
    attributes   TEXT NOT NULL DEFAULT '{}',
    status       TEXT NOT NULL CHECK (status IN ('active', 'erased')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    erased_at    INTEGER,
    erase_reason TEXT
);

CREATE TABLE customer_events (
    seq         INTEGER PRIMARY KEY,
    xid         INTEGER NOT NULL,
    customer_id BLOB NOT NULL REFERENCES customers (id),
    kind        TEXT NOT NULL CHECK (kind IN ('created', 'erased')),
    occurred_at INTEGER NOT NULL
);
CREATE INDEX customer_events_feed ON customer_events (xid, seq);

CREATE TABLE consents (
    customer_id BLOB NOT NULL REFERENCES customers (id),
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    granted     INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL,
    source      TEXT NOT NULL,
    PRIMARY KEY (customer_id, channel)
);

CREATE TABLE consent_changes (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BLOB NOT NULL REFERENCES customers (id),
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    granted     INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL,
    source      TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX consent_changes_by_customer ON consent_changes (customer_id, position DESC);

CREATE TABLE activities (
    id                    BLOB PRIMARY KEY,
    seq                   INTEGER NOT NULL UNIQUE,
    xid                   INTEGER NOT NULL,
    customer_id           BLOB NOT NULL REFERENCES customers (id),
    kind                  TEXT NOT NULL CHECK (kind IN ('purchase', 'refund')),
    idempotency_key       TEXT NOT NULL UNIQUE,
    fingerprint           BLOB NOT NULL,
    amount_minor          INTEGER NOT NULL CHECK (amount_minor > 0),
    currency              TEXT NOT NULL,
    occurred_at           INTEGER NOT NULL,
    recorded_at           INTEGER NOT NULL,
    brand                 TEXT NOT NULL DEFAULT '',
    sales_channel         TEXT NOT NULL DEFAULT '',
    store_id              TEXT NOT NULL DEFAULT '',
    line_items            TEXT NOT NULL DEFAULT '[]',
    refunded_purchase_id  BLOB REFERENCES activities (id),
    refunded_amount_minor INTEGER NOT NULL DEFAULT 0,
    purchase_occurred_at  INTEGER NOT NULL,
    CHECK (refunded_amount_minor >= 0 AND refunded_amount_minor <= amount_minor),
    CHECK ((kind = 'refund') = (refunded_purchase_id IS NOT NULL))
);
CREATE INDEX activities_feed ON activities (xid, seq);
CREATE INDEX activities_by_customer ON activities (customer_id, occurred_at DESC, id DESC);

-- The writing transactions' counter (their xid) and the feed's seq counter. Every writing
-- transaction updates `write_gate` first, which also takes SQLite's write lock at once.
CREATE TABLE write_gate (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    writes   INTEGER NOT NULL,
    feed_seq INTEGER NOT NULL
);
INSERT INTO write_gate (id, writes, feed_seq) VALUES (1, 0, 0);
