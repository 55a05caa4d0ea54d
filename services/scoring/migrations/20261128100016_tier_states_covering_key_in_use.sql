-- The primary key moves to the covering index built by the previous migration.
ALTER TABLE tier_states
    DROP CONSTRAINT tier_states_pkey,
    ADD CONSTRAINT tier_states_pkey PRIMARY KEY USING INDEX tier_states_covering;
