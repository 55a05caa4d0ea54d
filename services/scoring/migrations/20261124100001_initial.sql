-- The scoring service's schema; every table lives in the `scoring` schema (the connection's
-- search_path), which no other service reads.

CREATE SEQUENCE feed_seq;

-- The transaction id that wrote a feed row (see docs/FEED.md: the tier-change feed uses the same
-- watermark technique as the activity feed).
CREATE FUNCTION current_xid() RETURNS bigint
    LANGUAGE sql VOLATILE
    AS $$ SELECT pg_current_xact_id()::text::bigint $$;

CREATE FUNCTION notify_feed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN PERFORM pg_notify('scoring_feed', ''); RETURN NULL; END $$;

CREATE TABLE programs (
    id         uuid PRIMARY KEY,
    code       text NOT NULL UNIQUE,
    name       text NOT NULL,
    currency   text NOT NULL,
    scope      jsonb NOT NULL,
    tiers      jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE policy_versions (
    id                uuid PRIMARY KEY,
    program_id        uuid NOT NULL REFERENCES programs (id),
    version           integer NOT NULL,
    status            text NOT NULL CHECK (status IN ('draft', 'active', 'retired')),
    rules             jsonb NOT NULL,
    description       text NOT NULL DEFAULT '',
    revision          bigint NOT NULL DEFAULT 1,
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    activated_by      text,
    activated_at      timestamptz,
    retired_by        text,
    retired_at        timestamptz,
    UNIQUE (program_id, version)
);
-- One version in force per program, enforced by the database.
CREATE UNIQUE INDEX policy_versions_one_active ON policy_versions (program_id) WHERE status = 'active';

-- A run of the evaluation: scheduled (one per program and due time, whichever replica starts
-- it), manual, or after a policy activation.
CREATE TABLE evaluation_runs (
    id                uuid PRIMARY KEY,
    program_id        uuid NOT NULL REFERENCES programs (id),
    policy_version_id uuid NOT NULL REFERENCES policy_versions (id),
    trigger           text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'policy_activation')),
    due_at            timestamptz,
    status            text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    requested_by      text NOT NULL DEFAULT '',
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    summary           jsonb NOT NULL DEFAULT '{}'::jsonb,
    error             text
);
-- A scheduled due time runs exactly once per program, however many replicas try.
CREATE UNIQUE INDEX evaluation_runs_once_per_due_time ON evaluation_runs (program_id, due_at) WHERE trigger = 'schedule';
CREATE INDEX evaluation_runs_by_program ON evaluation_runs (program_id, started_at DESC);
