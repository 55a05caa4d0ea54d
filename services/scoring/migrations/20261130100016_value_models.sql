-- Customer value models (BG/NBD and Gamma-Gamma), fitted at each evaluation and on demand;
-- customers scored between fits use the latest version (docs/SCORING.md, "Customer value").
CREATE TABLE value_models (
    program_id        uuid NOT NULL REFERENCES programs (id),
    version           bigint NOT NULL,
    -- BG/NBD parameters (days) and log-likelihood.
    bg_r              float8 NOT NULL,
    bg_alpha          float8 NOT NULL,
    bg_a              float8 NOT NULL,
    bg_b              float8 NOT NULL,
    bg_log_likelihood float8 NOT NULL,
    -- Gamma-Gamma parameters (minor units) and log-likelihood; absent with too few repeat
    -- buyers.
    gg_p              float8,
    gg_q              float8,
    gg_gamma          float8,
    gg_log_likelihood float8 NOT NULL,
    customers         bigint NOT NULL,
    repeat_customers  bigint NOT NULL,
    as_of             timestamptz NOT NULL,
    summary_micros    bigint NOT NULL,
    fit_micros        bigint NOT NULL,
    evaluation_run_id uuid,
    PRIMARY KEY (program_id, version)
);
