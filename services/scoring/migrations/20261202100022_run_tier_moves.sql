-- What a run has moved so far: customers per tier shown, in (+) or out (-), added in the
-- transaction of each chunk that moved anyone, so they survive a resume. A run's counts after are
-- its counts before plus these (src/domain/run_counts.rs): it ends without counting the whole
-- population again, and a running run shows its counts after so far.
CREATE TABLE evaluation_run_moves (
    run_id    uuid NOT NULL REFERENCES evaluation_runs (id),
    tier_code text NOT NULL,
    customers bigint NOT NULL,
    PRIMARY KEY (run_id, tier_code)
);
