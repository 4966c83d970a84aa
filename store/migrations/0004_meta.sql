-- 0004: facts about the index as a whole, key → value. "maildir_id" is the
-- identity of the Maildir root this index was synced with (the same id is
-- in the root's .satchel-id file).
CREATE TABLE meta (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
