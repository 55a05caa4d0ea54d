-- Overrides that end are found without scanning every state.
CREATE INDEX tier_states_override_until ON tier_states (program_id, override_until) WHERE override_until IS NOT NULL;
