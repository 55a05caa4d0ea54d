-- Raised by every bucket rebuild, in its transaction: records cached under an earlier generation
-- are never read again (docs/SCORING.md, "The tier cache").
ALTER TABLE programs ADD COLUMN cache_generation INTEGER NOT NULL DEFAULT 0;

-- Cache writes to repair (the Postgres migration says why). customer_ids: 16-byte ids, end to end.
CREATE TABLE cache_repairs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    program_id       BLOB NOT NULL,
    cache_generation INTEGER NOT NULL,
    customer_ids     BLOB NOT NULL,
    queued_at        INTEGER NOT NULL
);
CREATE INDEX cache_repairs_queued_at ON cache_repairs (queued_at);
