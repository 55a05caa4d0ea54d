-- The primary key moves to the covering index built by the previous migration (which keeps its
-- name, buckets_pkey).
ALTER TABLE buckets
    DROP CONSTRAINT buckets_pkey,
    ADD CONSTRAINT buckets_pkey PRIMARY KEY USING INDEX buckets_covering;
