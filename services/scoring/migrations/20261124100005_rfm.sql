-- RFM cut points (population quintiles), computed at evaluation time; customers scored between
-- evaluations use the latest version.
CREATE TABLE rfm_cut_points (
    program_id  uuid NOT NULL REFERENCES programs (id),
    version     bigint NOT NULL,
    cut_points  jsonb NOT NULL,
    population  bigint NOT NULL,
    computed_at timestamptz NOT NULL,
    PRIMARY KEY (program_id, version)
);
