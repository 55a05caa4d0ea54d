-- Idempotency keys of retried writes (CreateProgram, CreatePolicyVersion, SetTierOverride),
-- claimed in the transaction of the write: a retry finds the first request's digest and result.
CREATE TABLE idempotent_requests (
    operation   text NOT NULL,
    key         text NOT NULL,
    fingerprint bytea NOT NULL,
    resource_id uuid NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (operation, key)
);
