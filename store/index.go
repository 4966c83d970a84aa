package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Mailbox is the index's row for one synced mailbox: the server state as of
// the last successful sync.
type Mailbox = mail.Mailbox

// Message is the last synced state of one message, on both sides: the
// server's UID and the Maildir file's key name the same message. Its
// InternalDate has second precision; the zero time is stored as 0.
type Message = mail.Message

// statements are prepared once per Index; Tx binds them to its connection.
type statements struct {
	mailboxes, mailbox, insertMailbox, saveMailbox, deleteMailbox *sql.Stmt
	messages, countMessages, putMessage, setFlags, deleteMessage  *sql.Stmt
}

const mailboxColumns = `id, name, local_path, uidvalidity, uidnext, highestmodseq, messages, mode, last_sync, local_stamp, mailbox_id`

func (s *statements) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&s.mailboxes, `SELECT ` + mailboxColumns + ` FROM mailboxes ORDER BY name`},
		{&s.mailbox, `SELECT ` + mailboxColumns + ` FROM mailboxes WHERE name = ?`},
		{&s.insertMailbox, `INSERT INTO mailboxes (name, local_path) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`},
		{&s.saveMailbox, `UPDATE mailboxes SET local_path = ?, uidvalidity = ?, uidnext = ?, highestmodseq = ?,
			messages = ?, mode = ?, last_sync = ?, local_stamp = ?, mailbox_id = ? WHERE id = ?`},
		{&s.deleteMailbox, `DELETE FROM mailboxes WHERE id = ?`},
		{&s.messages, `SELECT uid, maildir_key, flags, modseq, size, internal_date, message_id, state, local_only_flags
			FROM messages WHERE mailbox_id = ? AND uidvalidity = ? ORDER BY uid`},
		{&s.countMessages, `SELECT count(*) FROM messages WHERE mailbox_id = ?`},
		// An upsert, not INSERT OR REPLACE: REPLACE would also delete a
		// row of another UID holding the same Maildir key, where that is
		// a conflict the caller must hear about.
		{&s.putMessage, `INSERT INTO messages
			(mailbox_id, uidvalidity, uid, maildir_key, flags, modseq, size, internal_date, message_id, state, local_only_flags, gmail_msgid)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (mailbox_id, uidvalidity, uid) DO UPDATE SET
			maildir_key = excluded.maildir_key, flags = excluded.flags, modseq = excluded.modseq,
			size = excluded.size, internal_date = excluded.internal_date, message_id = excluded.message_id,
			state = excluded.state, local_only_flags = excluded.local_only_flags,
			gmail_msgid = coalesce(excluded.gmail_msgid, gmail_msgid)`},
		{&s.setFlags, `UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uidvalidity = ? AND uid = ?`},
		{&s.deleteMessage, `DELETE FROM messages WHERE mailbox_id = ? AND uidvalidity = ? AND uid = ?`},
	} {
		stmt, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.stmt = stmt
	}
	return nil
}

func (s *statements) close() error {
	var first error
	for _, stmt := range []*sql.Stmt{
		s.mailboxes, s.mailbox, s.insertMailbox, s.saveMailbox, s.deleteMailbox,
		s.messages, s.countMessages, s.putMessage, s.setFlags, s.deleteMessage,
	} {
		if stmt == nil {
			continue
		}
		if err := stmt.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Mailboxes returns every mailbox of the index, ordered by name (byte
// order of the UTF-8 name).
func (ix *Index) Mailboxes(ctx context.Context) ([]Mailbox, error) {
	rows, err := ix.stmts.mailboxes.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	defer rows.Close()
	var mbs []Mailbox
	for rows.Next() {
		mb, err := scanMailbox(rows)
		if err != nil {
			return nil, fmt.Errorf("list mailboxes: %w", err)
		}
		mbs = append(mbs, mb)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	return mbs, nil
}

// Mailbox returns the row of the mailbox with the remote name; false if
// there is none.
func (ix *Index) Mailbox(ctx context.Context, name string) (Mailbox, bool, error) {
	mb, err := scanMailbox(ix.stmts.mailbox.QueryRowContext(ctx, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Mailbox{}, false, nil
	}
	if err != nil {
		return Mailbox{}, false, fmt.Errorf("read mailbox %q: %w", name, err)
	}
	return mb, true, nil
}

// EnsureMailbox returns the row for name, creating it with localPath if
// absent. An existing row keeps its local path; localPath is then unused.
// It fails if localPath is new for name but already another mailbox's.
func (ix *Index) EnsureMailbox(ctx context.Context, name, localPath string) (Mailbox, error) {
	var mb Mailbox
	err := ix.Update(ctx, func(tx *Tx) error {
		if _, err := tx.stmt(ix.stmts.insertMailbox).ExecContext(ctx, name, localPath); err != nil {
			return err
		}
		var err error
		mb, err = scanMailbox(tx.stmt(ix.stmts.mailbox).QueryRowContext(ctx, name))
		return err
	})
	if err != nil {
		return Mailbox{}, fmt.Errorf("ensure mailbox %q: %w", name, err)
	}
	return mb, nil
}

// Messages returns the index's messages of the mailbox under uidvalidity,
// keyed by UID. Rows under another UIDVALIDITY are not returned.
func (ix *Index) Messages(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity) (map[mail.UID]Message, error) {
	msgs := make(map[mail.UID]Message)
	err := ix.EachMessage(ctx, mailboxID, uidvalidity, func(m Message) error {
		msgs[m.UID] = m
		return nil
	})
	if err != nil {
		return nil, err
	}
	return msgs, nil
}

// EachMessage calls fn with each of the mailbox's messages under
// uidvalidity, by ascending UID, reading them one at a time; an error from
// fn stops it and is returned as it is. fn runs while the query holds one
// of the pool's connections: it must not use the index.
func (ix *Index) EachMessage(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, fn func(Message) error) error {
	rows, err := ix.stmts.messages.QueryContext(ctx, mailboxID, int64(uidvalidity))
	if err != nil {
		return fmt.Errorf("read messages of mailbox %d: %w", mailboxID, err)
	}
	return scanMessages(rows, mailboxID, uidvalidity, fn)
}

// uidBatch is how many UIDs one query of MessagesOf names: well below
// SQLite's limit on bound parameters.
const uidBatch = 500

// MessagesOf calls fn with the rows of the given UIDs recorded under
// uidvalidity, by ascending UID; UIDs without a row are skipped. It reads
// only those rows: a sync that learned which messages changed need not
// read the others.
func (ix *Index) MessagesOf(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, uids []mail.UID, fn func(Message) error) error {
	uids = slices.Clone(uids)
	slices.Sort(uids)
	uids = slices.Compact(uids)
	for len(uids) > 0 {
		n := min(len(uids), uidBatch)
		args := make([]any, 0, n+2)
		args = append(args, mailboxID, int64(uidvalidity))
		for _, u := range uids[:n] {
			args = append(args, int64(u))
		}
		rows, err := ix.db.QueryContext(ctx, `SELECT uid, maildir_key, flags, modseq, size, internal_date, message_id, state, local_only_flags
			FROM messages WHERE mailbox_id = ? AND uidvalidity = ? AND uid IN (?`+strings.Repeat(", ?", n-1)+`) ORDER BY uid`, args...)
		if err != nil {
			return fmt.Errorf("read messages of mailbox %d: %w", mailboxID, err)
		}
		if err := scanMessages(rows, mailboxID, uidvalidity, fn); err != nil {
			return err
		}
		uids = uids[n:]
	}
	return nil
}

// CountRows counts the rows recorded under uidvalidity of messages that
// exist on the server (mail.State.OnServer) and of those with a local
// file (mail.State.OnLocal).
func (ix *Index) CountRows(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity) (onServer, onLocal int, err error) {
	err = ix.db.QueryRowContext(ctx, `SELECT
			coalesce(sum(state NOT IN (?, ?)), 0),
			coalesce(sum(state IN (?, ?, ?)), 0)
		FROM messages WHERE mailbox_id = ? AND uidvalidity = ?`,
		string(mail.StateLocalOnly), string(mail.StateHeld),
		string(mail.StateSynced), string(mail.StateLocalOnly), string(mail.StateHeld),
		mailboxID, int64(uidvalidity)).Scan(&onServer, &onLocal)
	if err != nil {
		return 0, 0, fmt.Errorf("count messages of mailbox %d: %w", mailboxID, err)
	}
	return onServer, onLocal, nil
}

// scanMessages reads message rows (the columns of statements.messages)
// into fn, and closes them.
func scanMessages(rows *sql.Rows, mailboxID int64, uidvalidity mail.UIDValidity, fn func(Message) error) error {
	defer rows.Close()
	for rows.Next() {
		var (
			uid, modseq, date int64
			flags             string
			m                 = Message{UIDValidity: uidvalidity}
		)
		var state, localOnly string
		if err := rows.Scan(&uid, &m.Key, &flags, &modseq, &m.Size, &date, &m.MessageID, &state, &localOnly); err != nil {
			return fmt.Errorf("read messages of mailbox %d: %w", mailboxID, err)
		}
		u, err := uint32Column("uid", uid)
		if err != nil {
			return fmt.Errorf("read messages of mailbox %d: %w", mailboxID, err)
		}
		m.UID = mail.UID(u)
		m.Flags = mail.ParseFlags(flags)
		m.ModSeq = modSeqFromDB(modseq)
		m.InternalDate = timeFromDB(date)
		m.State = mail.State(state)
		m.LocalOnlyFlags = mail.ParseFlags(localOnly)
		if err := fn(m); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read messages of mailbox %d: %w", mailboxID, err)
	}
	return nil
}

// CountMessages is the number of message rows of the mailbox, under any
// UIDVALIDITY.
func (ix *Index) CountMessages(ctx context.Context, mailboxID int64) (int, error) {
	var n int
	if err := ix.stmts.countMessages.QueryRowContext(ctx, mailboxID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count messages of mailbox %d: %w", mailboxID, err)
	}
	return n, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanMailbox(s scanner) (Mailbox, error) {
	var (
		mb                                            Mailbox
		uidvalidity, uidnext, modseq, count, lastSync int64
		mode                                          string
	)
	err := s.Scan(&mb.ID, &mb.Name, &mb.LocalPath, &uidvalidity, &uidnext, &modseq, &count, &mode, &lastSync, &mb.LocalStamp, &mb.MailboxID)
	if err != nil {
		return Mailbox{}, err
	}
	for _, c := range []struct {
		name string
		v    int64
		dst  func(uint32)
	}{
		{"uidvalidity", uidvalidity, func(v uint32) { mb.UIDValidity = mail.UIDValidity(v) }},
		{"uidnext", uidnext, func(v uint32) { mb.UIDNext = mail.UID(v) }},
		{"messages", count, func(v uint32) { mb.Messages = v }},
	} {
		v, err := uint32Column(c.name, c.v)
		if err != nil {
			return Mailbox{}, fmt.Errorf("mailbox %q: %w", mb.Name, err)
		}
		c.dst(v)
	}
	mb.HighestModSeq = modSeqFromDB(modseq)
	mb.Mode = mail.SyncMode(mode)
	mb.LastSync = timeFromDB(lastSync)
	return mb, nil
}

// uint32Column checks a column that holds a uint32, so that a damaged
// index is reported rather than its UIDs silently truncated.
func uint32Column(name string, v int64) (uint32, error) {
	if v < 0 || v > math.MaxUint32 {
		return 0, fmt.Errorf("column %s: %d out of range", name, v)
	}
	return uint32(v), nil
}

// SQLite integers are int64. A MODSEQ is kept as its two's-complement bit
// pattern, so that any uint64 round-trips; RFC 7162 §7 caps mod-sequences
// at 2^63-1, so a conforming server's values also sort correctly in SQL.
func modSeqToDB(m mail.ModSeq) int64   { return int64(m) }
func modSeqFromDB(v int64) mail.ModSeq { return mail.ModSeq(uint64(v)) }

// Times are unix seconds, with 0 for the zero time (whose Unix() is far
// negative). A time of exactly 1970-01-01T00:00:00Z reads back as zero.
func timeToDB(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeFromDB(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}
