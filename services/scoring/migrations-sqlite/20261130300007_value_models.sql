-- Customer value models, as in Postgres (migrations/20261130100016_value_models.sql).
CREATE TABLE value_models (
    program_id        BLOB NOT NULL REFERENCES programs (id),
    version           INTEGER NOT NULL,
    bg_r              REAL NOT NULL,
    bg_alpha          REAL NOT NULL,
    bg_a              REAL NOT NULL,
    bg_b              REAL NOT NULL,
    bg_log_likelihood REAL NOT NULL,
    gg_p              REAL,
    gg_q              REAL,
    gg_gamma          REAL,
    gg_log_likelihood REAL NOT NULL,
    customers         INTEGER NOT NULL,
    repeat_customers  INTEGER NOT NULL,
    as_of             INTEGER NOT NULL,
    summary_micros    INTEGER NOT NULL,
    fit_micros        INTEGER NOT NULL,
    evaluation_run_id BLOB,
    PRIMARY KEY (program_id, version)
);
