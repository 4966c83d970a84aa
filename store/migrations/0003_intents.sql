-- 0003: intents. A step that changes two places (server and Maildir,
-- Maildir and index) is recorded here before it starts and removed in the
-- same transaction that records its result, so that the next run can
-- complete or undo a step a crash interrupted.
CREATE TABLE intents (
	id          INTEGER PRIMARY KEY,
	mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	kind        TEXT    NOT NULL,            -- download | upload | move | adopt
	uid         INTEGER NOT NULL DEFAULT 0,  -- the message's UID, when known
	maildir_key TEXT    NOT NULL DEFAULT '', -- the local file's key
	-- upload and move: where to look for the new message after a crash
	target      TEXT    NOT NULL DEFAULT '', -- mailbox name
	uidnext     INTEGER NOT NULL DEFAULT 0,  -- the target's UIDNEXT before
	size        INTEGER NOT NULL DEFAULT 0,  -- RFC822.SIZE
	header_hash BLOB,                        -- SHA-256 of the CRLF header
	data        TEXT    NOT NULL DEFAULT ''  -- the row to record, JSON
);
