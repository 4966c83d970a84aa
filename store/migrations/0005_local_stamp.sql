-- 0005: what the local folder looked like when its mailbox was last seen
-- in sync (new/ and cur/ modification times), so that a mailbox unchanged
-- on both sides need not be selected or listed.
ALTER TABLE mailboxes ADD COLUMN local_stamp TEXT NOT NULL DEFAULT '';
