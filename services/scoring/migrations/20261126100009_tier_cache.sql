-- Each replica keeps programs and their policies in force in memory, and caches customer records
-- under the program's cache generation (docs/SCORING.md, "The tier cache").

-- Raised by every bucket rebuild, in its transaction: records cached under an earlier generation
-- are never read again.
ALTER TABLE programs ADD COLUMN cache_generation integer NOT NULL DEFAULT 0;

-- Every change of a program or of one of its policy versions is announced on commit (NOTIFY is
-- delivered when the writing transaction commits, never when it rolls back), so that every
-- replica forgets what it holds of that program. A trigger rather than the application's
-- statements, so that no writer (a migration, an operator's SQL) can forget to announce.
CREATE FUNCTION notify_program_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    changed uuid;
BEGIN
    IF TG_TABLE_NAME = 'programs' THEN
        IF TG_OP = 'DELETE' THEN changed := OLD.id; ELSE changed := NEW.id; END IF;
    ELSE
        IF TG_OP = 'DELETE' THEN changed := OLD.program_id; ELSE changed := NEW.program_id; END IF;
    END IF;
    PERFORM pg_notify('scoring_programs', changed::text);
    RETURN NULL;
END $$;

CREATE TRIGGER programs_announce AFTER INSERT OR UPDATE OR DELETE ON programs
    FOR EACH ROW EXECUTE FUNCTION notify_program_change();
CREATE TRIGGER policy_versions_announce AFTER INSERT OR UPDATE OR DELETE ON policy_versions
    FOR EACH ROW EXECUTE FUNCTION notify_program_change();

-- Cache writes to repair: queued in the transaction of every change whose records are written to
-- Redis after commit, removed once that write succeeded. A row left behind (Redis down or slow,
-- the process killed between commit and write) is a write that may have failed: a repairer in
-- every replica deletes those keys from Redis and every replica's memory, so that no older entry
-- outlives the change (docs/SCORING.md).
CREATE TABLE cache_repairs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id       uuid NOT NULL,
    cache_generation integer NOT NULL,
    customer_ids     uuid[] NOT NULL,
    queued_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX cache_repairs_queued_at ON cache_repairs (queued_at);
