-- Every history record says what decided it: the window its totals were summed over (as
-- instants, [start, end); no start for a lifetime window), the evaluation run or the purchase
-- that caused it, and for an operator's act on an override who acted and why, with the
-- override's end (on set, replace, clear and expiry).
-- Nullable without defaults, so only the catalogue changes (no table rewrite); records written
-- before this migration have none of it.
ALTER TABLE tier_history
    ADD COLUMN window_start timestamptz,
    ADD COLUMN window_end timestamptz,
    ADD COLUMN evaluation_run_id uuid,
    ADD COLUMN activity_id uuid,
    ADD COLUMN operator_name text,
    ADD COLUMN operator_reason text,
    ADD COLUMN override_expires_at timestamptz;
