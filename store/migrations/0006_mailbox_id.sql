-- 0006: the server's MAILBOXID (RFC 8474) of each mailbox, where it has
-- OBJECTID: it survives a RENAME, so a renamed mailbox is recognised by it
-- whatever its name and UIDVALIDITY became.
ALTER TABLE mailboxes ADD COLUMN mailbox_id TEXT NOT NULL DEFAULT '';
