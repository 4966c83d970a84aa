package store

import (
	"context"
	"fmt"
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
