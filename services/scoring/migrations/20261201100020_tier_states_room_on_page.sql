-- Tier states are rewritten in place all the time: every feed batch raises the version of each
-- state it touches, and a run saves the reviews and changes of the members it reads. None of
-- those writes changes an indexed column, so each can be a HOT update (the new version on the same
-- page, no index entry) when the page has room; full pages send every rewrite to another page
-- with a new primary-key entry. A fill factor leaves that room on the pages written from now on
-- (existing pages keep theirs until they are rewritten).
ALTER TABLE tier_states SET (fillfactor = 85);
