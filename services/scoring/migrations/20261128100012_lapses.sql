-- An evaluation writes only the states it changes. A member who still qualifies is not
-- rewritten; the program remembers when its last evaluation that finished began, and a state
-- says when an evaluation first found its member below the earned tier. Grace still counts from
-- the last time the member qualified: the stored time, or the last evaluation for a member
-- not lapsed. Existing states need nothing: their "last qualified" was rewritten at every
-- evaluation until now, and a program with no recorded evaluation adds nothing to it.
ALTER TABLE tier_states ADD COLUMN lapsed_at timestamptz;
ALTER TABLE programs ADD COLUMN last_evaluated_at timestamptz;
