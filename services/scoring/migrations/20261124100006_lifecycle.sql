-- Lifecycle states as last swept, and the changes between sweeps; the changes join the tier
-- changes in the tier-change feed (same sequence, same watermark).
CREATE TABLE lifecycle_states (
    program_id  uuid NOT NULL REFERENCES programs (id),
    customer_id uuid NOT NULL,
    state       text NOT NULL CHECK (state IN ('new', 'active', 'at_risk', 'dormant')),
    since       timestamptz NOT NULL,
    PRIMARY KEY (program_id, customer_id)
);

CREATE TABLE lifecycle_changes (
    id                       uuid PRIMARY KEY,
    seq                      bigint NOT NULL DEFAULT nextval('feed_seq'),
    xid                      bigint NOT NULL DEFAULT current_xid(),
    program_id               uuid NOT NULL,
    customer_id              uuid NOT NULL,
    -- NULL for a member's first classification.
    from_state               text,
    to_state                 text NOT NULL,
    days_since_last_purchase integer,
    occurred_at              timestamptz NOT NULL
);
CREATE INDEX lifecycle_changes_feed ON lifecycle_changes (xid, seq);
CREATE TRIGGER lifecycle_changes_notify AFTER INSERT ON lifecycle_changes
    FOR EACH STATEMENT EXECUTE FUNCTION notify_feed();
