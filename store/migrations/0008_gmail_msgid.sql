-- 0008: Gmail's X-GM-MSGID of each message, where the server has
-- X-GM-EXT-1; NULL elsewhere. One message with several labels has one
-- X-GM-MSGID in every label's mailbox: the index finds the file a new
-- label's copy can be linked to instead of downloaded again.
ALTER TABLE messages ADD COLUMN gmail_msgid INTEGER;
CREATE INDEX messages_gmail_msgid ON messages (gmail_msgid) WHERE gmail_msgid IS NOT NULL;

-- Gmail's labels of each message of a mailbox synced in label mode
-- (gmail.labels: tags), as the server last showed them (X-GM-LABELS, a
-- JSON array of decoded labels); the row goes with the message's.
CREATE TABLE gmail_labels (
	mailbox_id  INTEGER NOT NULL,
	uidvalidity INTEGER NOT NULL,
	uid         INTEGER NOT NULL,
	labels      TEXT    NOT NULL DEFAULT '[]',
	PRIMARY KEY (mailbox_id, uidvalidity, uid),
	FOREIGN KEY (mailbox_id, uidvalidity, uid) REFERENCES messages (mailbox_id, uidvalidity, uid) ON DELETE CASCADE
) WITHOUT ROWID;
