-- The campaign service's tables in SQLite, for the all-in-one development mode: the same tables
-- as the Postgres migrations, with ids as 16-byte blobs, instants as microseconds since the
-- epoch, documents as JSON text, and sequences kept by the one writer.

CREATE TABLE campaigns (
    id              BLOB PRIMARY KEY,
    program_id      BLOB NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('one_shot', 'triggered')),
    status          TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'running', 'completed', 'cancelled')),
    definition      TEXT NOT NULL,
    program         TEXT NOT NULL,
    start_at        INTEGER,
    end_at          INTEGER,
    revision        INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    launched_at     INTEGER,
    completed_at    INTEGER,
    cancelled_at    INTEGER,
    cancel_reason   TEXT NOT NULL DEFAULT '',
    launch_matched  INTEGER NOT NULL DEFAULT 0,
    launch_cursor   BLOB,
    launch_complete INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX campaigns_listing ON campaigns (created_at DESC, id DESC);

CREATE TABLE members (
    campaign_id         BLOB NOT NULL REFERENCES campaigns (id),
    customer_id         BLOB NOT NULL,
    entry               INTEGER NOT NULL,
    seq                 INTEGER NOT NULL,
    arm                 TEXT NOT NULL CHECK (arm IN ('treatment', 'control')),
    entered_at          INTEGER NOT NULL,
    attribution_ends_at INTEGER NOT NULL,
    conversions         INTEGER NOT NULL DEFAULT 0,
    revenue_minor       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, customer_id, entry)
);
CREATE INDEX members_in_order ON members (campaign_id, seq);
CREATE INDEX members_attribution ON members (customer_id, attribution_ends_at);

CREATE TABLE suppressions (
    campaign_id   BLOB NOT NULL REFERENCES campaigns (id),
    customer_id   BLOB NOT NULL,
    occasion      TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    suppressed_at INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, customer_id, occasion)
);
CREATE INDEX suppressions_in_order ON suppressions (campaign_id, seq);

CREATE TABLE deliveries (
    id                  BLOB PRIMARY KEY,
    campaign_id         BLOB NOT NULL REFERENCES campaigns (id),
    customer_id         BLOB NOT NULL,
    entry               INTEGER NOT NULL,
    channel             TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'leased', 'sent', 'failed', 'withdrawn')),
    attempt             INTEGER NOT NULL DEFAULT 0,
    leased_to           TEXT,
    lease_expires_at    INTEGER,
    created_at          INTEGER NOT NULL,
    acked_at            INTEGER,
    occurred_at         INTEGER,
    failure_reason      TEXT,
    provider_message_id TEXT,
    UNIQUE (campaign_id, customer_id, entry)
);
CREATE INDEX deliveries_to_lease ON deliveries (channel, created_at) WHERE status IN ('pending', 'leased');
CREATE INDEX deliveries_contacts ON deliveries (customer_id, created_at) WHERE status IN ('pending', 'leased', 'sent');

CREATE TABLE attributed_purchases (
    activity_id    BLOB NOT NULL,
    campaign_id    BLOB NOT NULL,
    customer_id    BLOB NOT NULL,
    entry          INTEGER NOT NULL,
    amount_minor   INTEGER NOT NULL,
    refunded_minor INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (activity_id, campaign_id, customer_id, entry)
);

CREATE TABLE applied_refunds (
    activity_id BLOB PRIMARY KEY
);

CREATE TABLE feed_cursors (
    consumer   TEXT PRIMARY KEY,
    position   TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE idempotent_requests (
    key         TEXT PRIMARY KEY,
    fingerprint BLOB NOT NULL,
    campaign_id BLOB NOT NULL
);

-- One row every writing transaction updates first: it takes SQLite's write lock at the start,
-- so a transaction never reads a snapshot it then cannot write on.
CREATE TABLE write_gate (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    writes INTEGER NOT NULL
);
INSERT INTO write_gate (id, writes) VALUES (1, 0);
