-- The scoring service's tables in SQLite, for the all-in-one development mode: the same tables
-- as the Postgres migrations (services/scoring/migrations), with ids as 16-byte blobs, instants
-- as microseconds since the epoch, months as 'YYYY-MM-DD' text, documents as JSON text.
--
-- The tier-change feed is ordered by (xid, seq) as in Postgres: `xid` is the number of the
-- writing transaction (SQLite has one writer, so they commit in that order) and `seq` a counter
-- across tier_history and lifecycle_changes.

CREATE TABLE programs (
    id         BLOB PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    currency   TEXT NOT NULL,
    scope      TEXT NOT NULL,
    tiers      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE policy_versions (
    id           BLOB PRIMARY KEY,
    program_id   BLOB NOT NULL REFERENCES programs (id),
    version      INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('draft', 'active', 'retired')),
    rules        TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    revision     INTEGER NOT NULL DEFAULT 1,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    activated_by TEXT,
    activated_at INTEGER,
    retired_by   TEXT,
    retired_at   INTEGER,
    UNIQUE (program_id, version)
);
CREATE UNIQUE INDEX policy_versions_one_active ON policy_versions (program_id) WHERE status = 'active';

CREATE TABLE evaluation_runs (
    id                BLOB PRIMARY KEY,
    program_id        BLOB NOT NULL REFERENCES programs (id),
    policy_version_id BLOB NOT NULL REFERENCES policy_versions (id),
    trigger           TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual', 'policy_activation')),
    due_at            INTEGER,
    status            TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    requested_by      TEXT NOT NULL DEFAULT '',
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    summary           TEXT NOT NULL DEFAULT '{}',
    error             TEXT,
    members_evaluated INTEGER NOT NULL DEFAULT 0,
    upgrades          INTEGER NOT NULL DEFAULT 0,
    downgrades        INTEGER NOT NULL DEFAULT 0,
    counts_before     TEXT,
    resumed           INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX evaluation_runs_once_per_due_time ON evaluation_runs (program_id, due_at) WHERE trigger = 'schedule';
CREATE INDEX evaluation_runs_by_program ON evaluation_runs (program_id, started_at DESC);
CREATE INDEX evaluation_runs_running ON evaluation_runs (started_at) WHERE status = 'running';

CREATE TABLE feed_cursors (
    consumer   TEXT PRIMARY KEY,
    position   TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE members (
    customer_id BLOB PRIMARY KEY,
    joined_at   INTEGER NOT NULL,
    erased      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE counted_purchases (
    program_id     BLOB NOT NULL REFERENCES programs (id),
    activity_id    BLOB NOT NULL,
    customer_id    BLOB NOT NULL,
    occurred_at    INTEGER NOT NULL,
    amount_minor   INTEGER NOT NULL,
    refunded_minor INTEGER NOT NULL DEFAULT 0,
    points         INTEGER NOT NULL,
    brand          TEXT NOT NULL DEFAULT '',
    sales_channel  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (program_id, activity_id)
);
CREATE INDEX counted_purchases_by_customer ON counted_purchases (program_id, customer_id, occurred_at DESC);

CREATE TABLE applied_refunds (
    program_id  BLOB NOT NULL,
    activity_id BLOB NOT NULL,
    PRIMARY KEY (program_id, activity_id)
);

CREATE TABLE buckets (
    program_id      BLOB NOT NULL,
    customer_id     BLOB NOT NULL,
    month           TEXT NOT NULL,
    net_spend_minor INTEGER NOT NULL DEFAULT 0,
    points          INTEGER NOT NULL DEFAULT 0,
    purchases       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (program_id, customer_id, month)
);

CREATE TABLE tier_states (
    program_id        BLOB NOT NULL REFERENCES programs (id),
    customer_id       BLOB NOT NULL,
    earned_rank       INTEGER NOT NULL,
    since             INTEGER NOT NULL,
    last_qualified_at INTEGER,
    override_rank     INTEGER,
    override_until    INTEGER,
    override_reason   TEXT,
    override_operator TEXT,
    override_set_at   INTEGER,
    version           INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    changed_by_run    BLOB,
    PRIMARY KEY (program_id, customer_id)
);
CREATE INDEX tier_states_override_until ON tier_states (program_id, override_until) WHERE override_until IS NOT NULL;

CREATE TABLE tier_history (
    id                BLOB PRIMARY KEY,
    seq               INTEGER NOT NULL UNIQUE,
    xid               INTEGER NOT NULL,
    program_id        BLOB NOT NULL,
    customer_id       BLOB NOT NULL,
    from_rank         INTEGER NOT NULL,
    to_rank           INTEGER NOT NULL,
    reason            TEXT NOT NULL,
    policy_version_id BLOB,
    policy_version    INTEGER,
    totals            TEXT NOT NULL,
    occurred_at       INTEGER NOT NULL
);
CREATE INDEX tier_history_feed ON tier_history (xid, seq);
CREATE INDEX tier_history_by_customer ON tier_history (program_id, customer_id, occurred_at DESC, id DESC);

CREATE TABLE rfm_cut_points (
    program_id  BLOB NOT NULL REFERENCES programs (id),
    version     INTEGER NOT NULL,
    cut_points  TEXT NOT NULL,
    population  INTEGER NOT NULL,
    computed_at INTEGER NOT NULL,
    PRIMARY KEY (program_id, version)
);

CREATE TABLE lifecycle_states (
    program_id  BLOB NOT NULL REFERENCES programs (id),
    customer_id BLOB NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('new', 'active', 'at_risk', 'dormant')),
    since       INTEGER NOT NULL,
    PRIMARY KEY (program_id, customer_id)
);

CREATE TABLE lifecycle_changes (
    id                       BLOB PRIMARY KEY,
    seq                      INTEGER NOT NULL UNIQUE,
    xid                      INTEGER NOT NULL,
    program_id               BLOB NOT NULL,
    customer_id              BLOB NOT NULL,
    from_state               TEXT,
    to_state                 TEXT NOT NULL,
    days_since_last_purchase INTEGER,
    occurred_at              INTEGER NOT NULL
);
CREATE INDEX lifecycle_changes_feed ON lifecycle_changes (xid, seq);

CREATE TABLE idempotent_requests (
    operation   TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    resource_id BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (operation, key)
);

-- The writing transactions' counter (their xid) and the feed's seq counter. Every writing
-- transaction updates `write_gate` first, which also takes SQLite's write lock at once.
CREATE TABLE write_gate (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    writes   INTEGER NOT NULL,
    feed_seq INTEGER NOT NULL
);
INSERT INTO write_gate (id, writes, feed_seq) VALUES (1, 0, 0);
