package store

import (
	"context"
	"fmt"
)

// The methods below follow a mailbox through the life of its folder:
// renamed, re-created empty on one side, or gone from both. Each is one
// transaction.

// RenameMailbox gives a mailbox's row a new name and folder, keeping its
// messages: a mailbox renamed on one side and followed on the other is
// the same mailbox.
func (ix *Index) RenameMailbox(ctx context.Context, id int64, name, localPath string) error {
	return ix.Update(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `UPDATE mailboxes SET name = ?, local_path = ?, local_stamp = '' WHERE id = ?`, name, localPath, id); err != nil {
			return fmt.Errorf("rename mailbox %d to %q: %w", id, name, err)
		}
		return nil
	})
}

// ResetMailbox forgets what a mailbox's row says of its last sync (its
// messages, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, folder stamp and pending
// steps) but its last sync time and the local messages kept in limbo
// (UIDVALIDITY 0): the next sync takes it as synced for the first time.
// It is how a mailbox deleted on one side is re-created there with its
// mail.
func (ix *Index) ResetMailbox(ctx context.Context, id int64) error {
	return ix.Update(ctx, func(tx *Tx) error {
		for _, q := range []string{
			`DELETE FROM intents WHERE mailbox_id = ?`,
			`DELETE FROM messages WHERE mailbox_id = ? AND uidvalidity != 0`,
			`UPDATE mailboxes SET uidvalidity = 0, uidnext = 0, highestmodseq = 0, messages = 0, local_stamp = '' WHERE id = ?`,
		} {
			if _, err := tx.tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("reset mailbox %d: %w", id, err)
			}
		}
		return nil
	})
}

// ForgetMailbox removes a mailbox's row with its messages and pending
// steps: the mailbox is gone from both sides.
func (ix *Index) ForgetMailbox(ctx context.Context, id int64) error {
	return ix.Update(ctx, func(tx *Tx) error { return tx.DeleteMailbox(id) })
}
