package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Tx is the write side of one Update. It is valid only while fn runs and
// only on fn's goroutine. It keeps Update's context because its methods
// mirror the engine's per-step calls, which carry none; the Tx dies with
// the Update call, so the context is never held beyond it.
type Tx struct {
	ix    *Index
	tx    *sql.Tx
	ctx   context.Context
	stmts map[*sql.Stmt]*sql.Stmt
}

// Update runs fn in one transaction (one engine step = one transaction).
// If fn returns an error the transaction is rolled back and that error
// returned as is; otherwise it is committed, durably (synchronous=FULL).
//
// The transaction takes the write lock when it begins, waiting up to the
// busy timeout for another writer. fn must not call Update. Reads through
// the Index inside fn see the last committed state, not fn's writes.
func (ix *Index) Update(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	tx := &Tx{ix: ix, tx: sqlTx, ctx: ctx, stmts: make(map[*sql.Stmt]*sql.Stmt)}
	// Also rolls back if fn panics; after Commit it is a no-op.
	defer sqlTx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		// database/sql rolls the transaction back when ctx ends, and
		// Commit then only says the transaction is done; say why.
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		}
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// stmt binds one of the Index's prepared statements to the transaction,
// once per transaction.
func (tx *Tx) stmt(s *sql.Stmt) *sql.Stmt {
	if ts, ok := tx.stmts[s]; ok {
		return ts
	}
	ts := tx.tx.StmtContext(tx.ctx, s)
	tx.stmts[s] = ts
	return ts
}

// PutMessage inserts the message, or replaces the row of the same
// (mailbox, UIDVALIDITY, UID). It fails with ErrKeyInUse if another UID of
// the mailbox has the same Maildir key; the transaction stays usable.
func (tx *Tx) PutMessage(mailboxID int64, m Message) error {
	if m.UID == 0 {
		return errors.New("put message 0: invalid uid")
	}
	_, err := tx.stmt(tx.ix.stmts.putMessage).ExecContext(tx.ctx,
		mailboxID, int64(m.UIDValidity), int64(m.UID), m.Key, m.Flags.String(),
		modSeqToDB(m.ModSeq), m.Size, timeToDB(m.InternalDate), m.MessageID,
		string(m.State), m.LocalOnlyFlags.String(), gmailIDToDB(m.GmailID))
	if err != nil {
		var serr sqlite3.Error
		if errors.As(err, &serr) && serr.ExtendedCode == sqlite3.ErrConstraintUnique {
			return fmt.Errorf("put message %d: key %q: %w", m.UID, m.Key, ErrKeyInUse)
		}
		return fmt.Errorf("put message %d: %w", m.UID, err)
	}
	return nil
}

// SetFlags records the message's synced flags and MODSEQ. It fails with
// ErrNoMessage if the message has no row.
func (tx *Tx) SetFlags(mailboxID int64, uidv mail.UIDValidity, uid mail.UID, flags mail.Flags, modseq mail.ModSeq) error {
	res, err := tx.stmt(tx.ix.stmts.setFlags).ExecContext(tx.ctx,
		flags.String(), modSeqToDB(modseq), mailboxID, int64(uidv), int64(uid))
	if err != nil {
		return fmt.Errorf("set flags of message %d: %w", uid, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set flags of message %d: %w", uid, err)
	} else if n == 0 {
		return fmt.Errorf("set flags of message %d: %w", uid, ErrNoMessage)
	}
	return nil
}

// DeleteMessage removes the message's row. Removing a message that has no
// row is not an error, so a retried step is harmless.
func (tx *Tx) DeleteMessage(mailboxID int64, uidv mail.UIDValidity, uid mail.UID) error {
	if _, err := tx.stmt(tx.ix.stmts.deleteMessage).ExecContext(tx.ctx, mailboxID, int64(uidv), int64(uid)); err != nil {
		return fmt.Errorf("delete message %d: %w", uid, err)
	}
	return nil
}

// SaveMailbox writes every column of the row m.ID but its ID and name. It
// fails with ErrNoMailbox if there is no such row.
func (tx *Tx) SaveMailbox(m Mailbox) error {
	res, err := tx.stmt(tx.ix.stmts.saveMailbox).ExecContext(tx.ctx,
		m.LocalPath, int64(m.UIDValidity), int64(m.UIDNext), modSeqToDB(m.HighestModSeq),
		int64(m.Messages), string(m.Mode), timeToDB(m.LastSync), m.LocalStamp, m.MailboxID, m.ID)
	if err != nil {
		return fmt.Errorf("save mailbox %q: %w", m.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("save mailbox %q: %w", m.Name, err)
	} else if n == 0 {
		return fmt.Errorf("save mailbox %q (id %d): %w", m.Name, m.ID, ErrNoMailbox)
	}
	return nil
}

// DeleteMailbox removes the mailbox's row and, by cascade, its messages'.
// Removing a mailbox that has no row is not an error.
func (tx *Tx) DeleteMailbox(id int64) error {
	if _, err := tx.stmt(tx.ix.stmts.deleteMailbox).ExecContext(tx.ctx, id); err != nil {
		return fmt.Errorf("delete mailbox %d: %w", id, err)
	}
	return nil
}
