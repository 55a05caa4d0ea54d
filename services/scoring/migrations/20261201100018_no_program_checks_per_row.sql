-- The feed inserts counted purchases and tier states thousands at a time, and a foreign key to
-- programs checks each row on its own (a lookup and a row lock on the program: about 40 % of
-- inserting a counted purchase, measured in psql). Programs are never deleted, and every writer
-- of these rows holds the program in force it writes for; the keys to programs go.
ALTER TABLE counted_purchases DROP CONSTRAINT IF EXISTS counted_purchases_program_id_fkey;
ALTER TABLE tier_states DROP CONSTRAINT IF EXISTS tier_states_program_id_fkey;
