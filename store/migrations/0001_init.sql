-- 0001: the mailboxes satchel syncs and the messages it last synced in each.

CREATE TABLE mailboxes (
	id            INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL UNIQUE,     -- remote name, UTF-8
	local_path    TEXT    NOT NULL UNIQUE,     -- relative to the Maildir root
	uidvalidity   INTEGER NOT NULL DEFAULT 0,  -- 0: never synced
	uidnext       INTEGER NOT NULL DEFAULT 0,
	highestmodseq INTEGER NOT NULL DEFAULT 0,  -- uint64 stored as its int64 bit pattern
	messages      INTEGER NOT NULL DEFAULT 0,  -- server's count at last sync
	mode          TEXT    NOT NULL DEFAULT '', -- mail.SyncMode
	last_sync     INTEGER NOT NULL DEFAULT 0   -- unix seconds of last successful sync, 0 never
);

CREATE TABLE messages (
	mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uidvalidity   INTEGER NOT NULL,
	uid           INTEGER NOT NULL,
	maildir_key   TEXT    NOT NULL,
	flags         TEXT    NOT NULL,            -- last synced flags, canonical mail.Flags.String() incl. keywords
	modseq        INTEGER NOT NULL DEFAULT 0,  -- uint64 stored as its int64 bit pattern
	size          INTEGER NOT NULL,            -- RFC822.SIZE
	internal_date INTEGER NOT NULL,            -- unix seconds
	message_id    TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (mailbox_id, uidvalidity, uid)
);

-- One Maildir file is one message: two UIDs never share a file.
CREATE UNIQUE INDEX messages_maildir_key ON messages (mailbox_id, maildir_key);
