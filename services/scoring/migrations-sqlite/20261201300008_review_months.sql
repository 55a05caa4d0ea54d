-- Each tier state keeps the first month at whose end an evaluation could lower its tier and the
-- policy version it was found under (src/domain/review.rs); NULL: not known yet.
ALTER TABLE tier_states ADD COLUMN review_month TEXT;
ALTER TABLE tier_states ADD COLUMN reviewed_under BLOB;
