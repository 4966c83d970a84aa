-- 0002: one-sided states and flags the server cannot store.

-- mail.State: '' synced, 'local-only', 'remote-only', 'skipped', 'held'.
ALTER TABLE messages ADD COLUMN state TEXT NOT NULL DEFAULT '';
-- Flags kept locally that the server's PERMANENTFLAGS refuse.
ALTER TABLE messages ADD COLUMN local_only_flags TEXT NOT NULL DEFAULT '';
-- Local moves are matched on Message-ID and size.
CREATE INDEX messages_message_id ON messages (message_id, size);
