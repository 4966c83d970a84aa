-- 0008: Gmail's X-GM-MSGID of each message, where the server has
-- X-GM-EXT-1; NULL elsewhere. One message with several labels has one
-- X-GM-MSGID in every label's mailbox: the index finds the file a new
-- label's copy can be linked to instead of downloaded again.
ALTER TABLE messages ADD COLUMN gmail_msgid INTEGER;
CREATE INDEX messages_gmail_msgid ON messages (gmail_msgid) WHERE gmail_msgid IS NOT NULL;
