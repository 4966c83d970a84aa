package store

import (
	"context"

	"github.com/satchel-mail/satchel/sync/mail"
)

// The methods below are the engine's steps: each is one transaction, so
// that after it returns nil its change survives a crash.

// SaveMailbox writes a mailbox row.
func (ix *Index) SaveMailbox(ctx context.Context, m Mailbox) error {
	return ix.Update(ctx, func(tx *Tx) error { return tx.SaveMailbox(m) })
}

// SaveMailboxes writes mailbox rows together.
func (ix *Index) SaveMailboxes(ctx context.Context, ms []Mailbox) error {
	return ix.Update(ctx, func(tx *Tx) error {
		for _, m := range ms {
			if err := tx.SaveMailbox(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutMessages inserts or replaces message rows together.
func (ix *Index) PutMessages(ctx context.Context, mailboxID int64, msgs []Message) error {
	return ix.Update(ctx, func(tx *Tx) error {
		for _, m := range msgs {
			if err := tx.PutMessage(mailboxID, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteMessages removes message rows together; absent rows are ignored.
func (ix *Index) DeleteMessages(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, uids []mail.UID) error {
	return ix.Update(ctx, func(tx *Tx) error {
		for _, u := range uids {
			if err := tx.DeleteMessage(mailboxID, uidvalidity, u); err != nil {
				return err
			}
		}
		return nil
	})
}
