-- What a run has moved so far, per tier shown (the Postgres migration 20261202100022 says why).
CREATE TABLE evaluation_run_moves (
    run_id    BLOB NOT NULL REFERENCES evaluation_runs (id),
    tier_code TEXT NOT NULL,
    customers INTEGER NOT NULL,
    PRIMARY KEY (run_id, tier_code)
);
