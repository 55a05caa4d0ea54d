-- Tier state built from the customer service's activity feed.

-- Where each consumer of an upstream feed stands; written in the same transaction as the effects
-- of the events it covers, so a crash replays exactly what was not committed.
CREATE TABLE feed_cursors (
    consumer   text PRIMARY KEY,
    position   text NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Customers known from the feed (created and erased events).
CREATE TABLE members (
    customer_id uuid PRIMARY KEY,
    joined_at   timestamptz NOT NULL,
    erased      boolean NOT NULL DEFAULT false
);

-- Purchases that count toward a program: for refunds, explanations and rebuilding buckets.
CREATE TABLE counted_purchases (
    program_id     uuid NOT NULL REFERENCES programs (id),
    activity_id    uuid NOT NULL,
    customer_id    uuid NOT NULL,
    occurred_at    timestamptz NOT NULL,
    amount_minor   bigint NOT NULL,
    refunded_minor bigint NOT NULL DEFAULT 0,
    points         bigint NOT NULL,
    PRIMARY KEY (program_id, activity_id)
);
CREATE INDEX counted_purchases_by_customer ON counted_purchases (program_id, customer_id, occurred_at DESC);

-- Refunds already applied (an idempotency guard beside the cursor).
CREATE TABLE applied_refunds (
    program_id  uuid NOT NULL,
    activity_id uuid NOT NULL,
    PRIMARY KEY (program_id, activity_id)
);

-- Monthly aggregates: window totals are sums over a few rows.
CREATE TABLE buckets (
    program_id      uuid NOT NULL,
    customer_id     uuid NOT NULL,
    month           date NOT NULL,
    net_spend_minor bigint NOT NULL DEFAULT 0,
    points          bigint NOT NULL DEFAULT 0,
    purchases       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (program_id, customer_id, month)
);

CREATE TABLE tier_states (
    program_id        uuid NOT NULL REFERENCES programs (id),
    customer_id       uuid NOT NULL,
    earned_rank       integer NOT NULL,
    since             timestamptz NOT NULL,
    last_qualified_at timestamptz,
    override_rank     integer,
    override_until    timestamptz,
    override_reason   text,
    override_operator text,
    override_set_at   timestamptz,
    -- Raised on every change: caches compare it so an older value never replaces a newer one.
    version           bigint NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (program_id, customer_id)
);

-- Every change of the tier shown; also the tier-change feed (ordered by xid, seq as the activity
-- feed is, see docs/FEED.md).
CREATE TABLE tier_history (
    id                uuid PRIMARY KEY,
    seq               bigint NOT NULL DEFAULT nextval('feed_seq'),
    xid               bigint NOT NULL DEFAULT current_xid(),
    program_id        uuid NOT NULL,
    customer_id       uuid NOT NULL,
    from_rank         integer NOT NULL,
    to_rank           integer NOT NULL,
    reason            text NOT NULL,
    policy_version_id uuid,
    policy_version    integer,
    totals            jsonb NOT NULL,
    occurred_at       timestamptz NOT NULL
);
CREATE INDEX tier_history_feed ON tier_history (xid, seq);
CREATE INDEX tier_history_by_customer ON tier_history (program_id, customer_id, occurred_at DESC, id DESC);
CREATE TRIGGER tier_history_notify AFTER INSERT ON tier_history
    FOR EACH STATEMENT EXECUTE FUNCTION notify_feed();
