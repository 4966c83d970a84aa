-- 0007: notmuch tag sync. tag_bases holds, per message, the labels (its
-- keywords in lower case) that its keywords on the server and its tags in
-- notmuch last agreed on, and the id notmuch knows it by; the row goes
-- with the message's. refused_keywords holds the labels a mailbox refused
-- to store, which stay local and are not sent again.
CREATE TABLE tag_bases (
	mailbox_id  INTEGER NOT NULL,
	uidvalidity INTEGER NOT NULL,
	uid         INTEGER NOT NULL,
	notmuch_id  TEXT    NOT NULL DEFAULT '',
	labels      TEXT    NOT NULL DEFAULT '',  -- space-separated, sorted
	PRIMARY KEY (mailbox_id, uidvalidity, uid),
	FOREIGN KEY (mailbox_id, uidvalidity, uid) REFERENCES messages (mailbox_id, uidvalidity, uid) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE refused_keywords (
	mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	label      TEXT    NOT NULL,
	PRIMARY KEY (mailbox_id, label)
) WITHOUT ROWID;
