-- Campaigns, their members, suppressions and deliveries, and what attribution counted.

-- LISTEN/NOTIFY channel of delivery changes: waiting delivery streams wake up.
CREATE FUNCTION notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('campaign_deliveries', '');
    RETURN NULL;
END $$;

CREATE TABLE campaigns (
    id              uuid PRIMARY KEY,
    program_id      uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('one_shot', 'triggered')),
    status          text NOT NULL CHECK (status IN ('draft', 'scheduled', 'running', 'completed', 'cancelled')),
    -- Everything an operator defines (name, audience, offer, costs, schedule, trigger, …).
    definition      jsonb NOT NULL,
    -- The program's currency, tiers and scope as read when the definition last changed.
    program         jsonb NOT NULL,
    start_at        timestamptz,
    end_at          timestamptz,
    revision        bigint NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    launched_at     timestamptz,
    completed_at    timestamptz,
    cancelled_at    timestamptz,
    cancel_reason   text NOT NULL DEFAULT '',
    launch_matched  bigint NOT NULL DEFAULT 0,
    launch_cursor   uuid,
    launch_complete boolean NOT NULL DEFAULT false
);
CREATE INDEX campaigns_listing ON campaigns (created_at DESC, id DESC);
CREATE INDEX campaigns_due ON campaigns (start_at) WHERE status = 'scheduled';
CREATE INDEX campaigns_ending ON campaigns (end_at) WHERE status = 'running';

-- One entry of a customer into a campaign; attribution keeps revenue and conversions here so a
-- report is one aggregate over a campaign's members.
CREATE TABLE members (
    campaign_id         uuid NOT NULL REFERENCES campaigns (id),
    customer_id         uuid NOT NULL,
    entry               integer NOT NULL,
    seq                 bigserial,
    arm                 text NOT NULL CHECK (arm IN ('treatment', 'control')),
    entered_at          timestamptz NOT NULL,
    attribution_ends_at timestamptz NOT NULL,
    -- Attributed purchases not fully refunded, and their net amount.
    conversions         integer NOT NULL DEFAULT 0,
    revenue_minor       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, customer_id, entry)
);
CREATE INDEX members_in_order ON members (campaign_id, seq);
CREATE INDEX members_attribution ON members (customer_id, attribution_ends_at);

-- Customers who matched but were not made members; `occasion` is the launch, or the trigger
-- event of a triggered campaign, so a replay records nothing twice.
CREATE TABLE suppressions (
    campaign_id   uuid NOT NULL REFERENCES campaigns (id),
    customer_id   uuid NOT NULL,
    occasion      text NOT NULL,
    seq           bigserial,
    reason        text NOT NULL,
    suppressed_at timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, customer_id, occasion)
);
CREATE INDEX suppressions_in_order ON suppressions (campaign_id, seq);

-- One delivery per treatment entry.
CREATE TABLE deliveries (
    id                  uuid PRIMARY KEY,
    campaign_id         uuid NOT NULL REFERENCES campaigns (id),
    customer_id         uuid NOT NULL,
    entry               integer NOT NULL,
    channel             text NOT NULL,
    status              text NOT NULL CHECK (status IN ('pending', 'leased', 'sent', 'failed', 'withdrawn')),
    attempt             integer NOT NULL DEFAULT 0,
    leased_to           text,
    lease_expires_at    timestamptz,
    created_at          timestamptz NOT NULL,
    acked_at            timestamptz,
    occurred_at         timestamptz,
    failure_reason      text,
    provider_message_id text,
    UNIQUE (campaign_id, customer_id, entry)
);
CREATE INDEX deliveries_to_lease ON deliveries (channel, created_at) WHERE status IN ('pending', 'leased');
-- The frequency cap counts a customer's recent contacts across campaigns.
CREATE INDEX deliveries_contacts ON deliveries (customer_id, created_at) WHERE status IN ('pending', 'leased', 'sent');
CREATE TRIGGER deliveries_notify AFTER INSERT OR UPDATE ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notify_deliveries();

-- Purchases attributed to a member's entry, for refunds to find them.
CREATE TABLE attributed_purchases (
    activity_id    uuid NOT NULL,
    campaign_id    uuid NOT NULL,
    customer_id    uuid NOT NULL,
    entry          integer NOT NULL,
    amount_minor   bigint NOT NULL,
    refunded_minor bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (activity_id, campaign_id, customer_id, entry)
);

-- Refunds already netted (an idempotency guard beside the cursor).
CREATE TABLE applied_refunds (
    activity_id uuid PRIMARY KEY
);

-- Where each upstream feed consumer stands; written with the effects of what it covers.
CREATE TABLE feed_cursors (
    consumer   text PRIMARY KEY,
    position   text NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Idempotency keys of CreateCampaign.
CREATE TABLE idempotent_requests (
    key         text PRIMARY KEY,
    fingerprint bytea NOT NULL,
    campaign_id uuid NOT NULL
);
