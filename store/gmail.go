package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
)

// gmailIDToDB stores an X-GM-MSGID (a 64-bit unsigned number) in SQLite's
// signed INTEGER, and 0, unknown, as NULL, which PutMessage's upsert
// leaves in place of what is recorded.
func gmailIDToDB(id uint64) any {
	if id == 0 {
		return nil
	}
	return int64(id)
}

// GmailCopies returns, for each X-GM-MSGID in ids that the index records
// with a local file under its mailbox's current UIDVALIDITY, one such row
// and its mailbox. Which of several copies is returned is unspecified.
func (ix *Index) GmailCopies(ctx context.Context, ids []uint64) (map[uint64]mail.GmailCopy, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make(map[uint64]mail.GmailCopy)
	for len(ids) > 0 {
		n := min(len(ids), uidBatch)
		args := make([]any, 0, n+3)
		args = append(args, string(mail.StateSynced), string(mail.StateLocalOnly), string(mail.StateHeld))
		for _, id := range ids[:n] {
			args = append(args, int64(id))
		}
		ids = ids[n:]
		rows, err := ix.db.QueryContext(ctx, `SELECT m.gmail_msgid, m.mailbox_id, m.uidvalidity, m.uid, m.maildir_key,
				m.flags, m.size, m.internal_date, m.message_id
			FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id AND b.uidvalidity = m.uidvalidity
			WHERE m.state IN (?, ?, ?) AND m.gmail_msgid IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("look up Gmail message ids: %w", err)
		}
		for rows.Next() {
			var (
				gid, mbox, uidv, uid, date int64
				flags                      string
				c                          mail.GmailCopy
			)
			if err := rows.Scan(&gid, &mbox, &uidv, &uid, &c.Row.Key, &flags, &c.Row.Size, &date, &c.Row.MessageID); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up Gmail message ids: %w", err)
			}
			c.MailboxID = mbox
			c.Row.UIDValidity, c.Row.UID = mail.UIDValidity(uidv), mail.UID(uid)
			c.Row.Flags, c.Row.InternalDate, c.Row.GmailID = mail.ParseFlags(flags), timeFromDB(date), uint64(gid)
			out[uint64(gid)] = c
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("look up Gmail message ids: %w", err)
		}
	}
	return out, nil
}

// GmailLabels returns the labels recorded for the given UIDs (all of the
// mailbox's under uidvalidity when uids is nil); a UID without a record
// is absent.
func (ix *Index) GmailLabels(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, uids []mail.UID) (map[mail.UID][]string, error) {
	out := map[mail.UID][]string{}
	scan := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var uid int64
			var js string
			if err := rows.Scan(&uid, &js); err != nil {
				return err
			}
			var l []string
			if err := json.Unmarshal([]byte(js), &l); err != nil {
				return fmt.Errorf("labels of UID %d: %w", uid, err)
			}
			out[mail.UID(uid)] = l
		}
		return rows.Err()
	}
	if uids == nil {
		rows, err := ix.db.QueryContext(ctx, `SELECT uid, labels FROM gmail_labels WHERE mailbox_id = ? AND uidvalidity = ?`, mailboxID, int64(uidvalidity))
		if err == nil {
			err = scan(rows)
		}
		if err != nil {
			return nil, fmt.Errorf("read Gmail labels of mailbox %d: %w", mailboxID, err)
		}
		return out, nil
	}
	uids = slices.Clone(uids)
	slices.Sort(uids)
	uids = slices.Compact(uids)
	for len(uids) > 0 {
		n := min(len(uids), uidBatch)
		args := []any{mailboxID, int64(uidvalidity)}
		for _, u := range uids[:n] {
			args = append(args, int64(u))
		}
		uids = uids[n:]
		rows, err := ix.db.QueryContext(ctx, `SELECT uid, labels FROM gmail_labels WHERE mailbox_id = ? AND uidvalidity = ? AND uid IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err == nil {
			err = scan(rows)
		}
		if err != nil {
			return nil, fmt.Errorf("read Gmail labels of mailbox %d: %w", mailboxID, err)
		}
	}
	return out, nil
}

// SetGmailLabels records the labels of messages that have rows, in one
// transaction; a UID without a row is skipped.
func (ix *Index) SetGmailLabels(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, labels map[mail.UID][]string) error {
	if len(labels) == 0 {
		return nil
	}
	return ix.Update(ctx, func(tx *Tx) error {
		for _, uid := range slices.Sorted(maps.Keys(labels)) {
			l := labels[uid]
			if l == nil {
				l = []string{}
			}
			js, err := json.Marshal(l)
			if err != nil {
				return err
			}
			_, err = tx.tx.ExecContext(tx.ctx, `INSERT INTO gmail_labels (mailbox_id, uidvalidity, uid, labels)
				SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM messages WHERE mailbox_id = ? AND uidvalidity = ? AND uid = ?)
				ON CONFLICT (mailbox_id, uidvalidity, uid) DO UPDATE SET labels = excluded.labels`,
				mailboxID, int64(uidvalidity), int64(uid), string(js), mailboxID, int64(uidvalidity), int64(uid))
			if err != nil {
				return fmt.Errorf("record Gmail labels of UID %d: %w", uid, err)
			}
		}
		return nil
	})
}

// SetGmailIDs records the X-GM-MSGIDs of rows that lack one, in one
// transaction; UIDs without a row are skipped.
func (ix *Index) SetGmailIDs(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, ids map[mail.UID]uint64) error {
	if len(ids) == 0 {
		return nil
	}
	return ix.Update(ctx, func(tx *Tx) error {
		for _, uid := range slices.Sorted(maps.Keys(ids)) {
			_, err := tx.tx.ExecContext(tx.ctx, `UPDATE messages SET gmail_msgid = ?
				WHERE mailbox_id = ? AND uidvalidity = ? AND uid = ? AND gmail_msgid IS NULL`,
				gmailIDToDB(ids[uid]), mailboxID, int64(uidvalidity), int64(uid))
			if err != nil {
				return fmt.Errorf("record the Gmail id of UID %d: %w", uid, err)
			}
		}
		return nil
	})
}

// MissingGmailIDs counts the rows under uidvalidity without an
// X-GM-MSGID.
func (ix *Index) MissingGmailIDs(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity) (int, error) {
	var n int
	err := ix.db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE mailbox_id = ? AND uidvalidity = ? AND gmail_msgid IS NULL`,
		mailboxID, int64(uidvalidity)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count rows without a Gmail id in mailbox %d: %w", mailboxID, err)
	}
	return n, nil
}
