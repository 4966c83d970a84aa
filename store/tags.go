package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
)

// The tag sync's records (migration 0007): each message's tag base and
// each mailbox's refused keywords. They implement the engine's TagIndex.

// inChunk bounds the parameters of one IN (...) query, well below
// SQLite's limit on host parameters.
const inChunk = 500

// messageColumns are read by scanMessage.
const messageColumns = `uidvalidity, uid, maildir_key, flags, modseq, size, internal_date, message_id, state, local_only_flags`

func scanMessage(rows *sql.Rows) (mail.Message, error) {
	var (
		uidv, uid, modseq, date int64
		flags, state, localOnly string
		m                       mail.Message
	)
	if err := rows.Scan(&uidv, &uid, &m.Key, &flags, &modseq, &m.Size, &date, &m.MessageID, &state, &localOnly); err != nil {
		return m, err
	}
	v, err := uint32Column("uidvalidity", uidv)
	if err != nil {
		return m, err
	}
	u, err := uint32Column("uid", uid)
	if err != nil {
		return m, err
	}
	m.UIDValidity, m.UID = mail.UIDValidity(v), mail.UID(u)
	m.Flags = mail.ParseFlags(flags)
	m.ModSeq = modSeqFromDB(modseq)
	m.InternalDate = timeFromDB(date)
	m.State = mail.State(state)
	m.LocalOnlyFlags = mail.ParseFlags(localOnly)
	return m, nil
}

// inList is "?, ?, ..." for n parameters.
func inList(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// chunks calls fn with successive parts of l of at most inChunk items.
func chunks[T any](l []T, fn func([]T) error) error {
	for len(l) > 0 {
		n := min(len(l), inChunk)
		if err := fn(l[:n]); err != nil {
			return err
		}
		l = l[n:]
	}
	return nil
}

// TagMessagesByKey returns the rows of the mailbox's messages under
// uidvalidity with these Maildir keys, by key; keys without a row are
// absent.
func (ix *Index) TagMessagesByKey(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, keys []string) (map[string]mail.Message, error) {
	return ix.messagesByKey(ctx, mailboxID, &uidvalidity, keys)
}

// MessagesByKey returns the rows of the mailbox's messages with these
// Maildir keys, under any UIDVALIDITY, by key; keys without a row are
// absent. A key names one row of a mailbox (messages_maildir_key).
func (ix *Index) MessagesByKey(ctx context.Context, mailboxID int64, keys []string) (map[string]mail.Message, error) {
	return ix.messagesByKey(ctx, mailboxID, nil, keys)
}

// messagesByKey reads the rows of these keys, under uidvalidity if set.
func (ix *Index) messagesByKey(ctx context.Context, mailboxID int64, uidvalidity *mail.UIDValidity, keys []string) (map[string]mail.Message, error) {
	out := map[string]mail.Message{}
	where := `mailbox_id = ?`
	if uidvalidity != nil {
		where += ` AND uidvalidity = ?`
	}
	err := chunks(keys, func(part []string) error {
		args := []any{mailboxID}
		if uidvalidity != nil {
			args = append(args, int64(*uidvalidity))
		}
		for _, k := range part {
			args = append(args, k)
		}
		return ix.eachRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE `+where+` AND maildir_key IN (`+inList(len(part))+`)`, args, func(m mail.Message) {
			out[m.Key] = m
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read messages of mailbox %d by key: %w", mailboxID, err)
	}
	return out, nil
}

// TagMessagesByUID returns the rows of the mailbox's messages under
// uidvalidity with these UIDs; UIDs without a row are absent.
func (ix *Index) TagMessagesByUID(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, uids []mail.UID) (map[mail.UID]mail.Message, error) {
	out := map[mail.UID]mail.Message{}
	err := chunks(uids, func(part []mail.UID) error {
		args := []any{mailboxID, int64(uidvalidity)}
		for _, u := range part {
			args = append(args, int64(u))
		}
		return ix.eachRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE mailbox_id = ? AND uidvalidity = ? AND uid IN (`+inList(len(part))+`)`, args, func(m mail.Message) {
			out[m.UID] = m
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read messages of mailbox %d by UID: %w", mailboxID, err)
	}
	return out, nil
}

func (ix *Index) eachRow(ctx context.Context, query string, args []any, fn func(mail.Message)) error {
	rows, err := ix.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return err
		}
		fn(m)
	}
	return rows.Err()
}

// TagBases returns the tag bases of the mailbox's messages under
// uidvalidity with these UIDs; a message without one is absent.
func (ix *Index) TagBases(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, uids []mail.UID) (map[mail.UID]mail.TagBase, error) {
	out := map[mail.UID]mail.TagBase{}
	err := chunks(uids, func(part []mail.UID) error {
		args := []any{mailboxID, int64(uidvalidity)}
		for _, u := range part {
			args = append(args, int64(u))
		}
		rows, err := ix.db.QueryContext(ctx, `SELECT uid, notmuch_id, labels FROM tag_bases
			WHERE mailbox_id = ? AND uidvalidity = ? AND uid IN (`+inList(len(part))+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var uid int64
			var labels string
			b := mail.TagBase{MailboxID: mailboxID, UIDValidity: uidvalidity}
			if err := rows.Scan(&uid, &b.NotmuchID, &labels); err != nil {
				return err
			}
			u, err := uint32Column("uid", uid)
			if err != nil {
				return err
			}
			b.UID = mail.UID(u)
			b.Labels = strings.Fields(labels)
			out[b.UID] = b
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read tag bases of mailbox %d: %w", mailboxID, err)
	}
	return out, nil
}

// SaveTagBases records tag bases, in one transaction. A base whose
// message has no row is not recorded: the message is gone.
func (ix *Index) SaveTagBases(ctx context.Context, bases []mail.TagBase) error {
	if len(bases) == 0 {
		return nil
	}
	err := ix.Update(ctx, func(tx *Tx) error {
		for _, b := range bases {
			labels := slices.Clone(b.Labels)
			slices.Sort(labels)
			_, err := tx.tx.ExecContext(ctx, `INSERT INTO tag_bases (mailbox_id, uidvalidity, uid, notmuch_id, labels)
				SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM messages WHERE mailbox_id = ? AND uidvalidity = ? AND uid = ?)
				ON CONFLICT (mailbox_id, uidvalidity, uid) DO UPDATE SET notmuch_id = excluded.notmuch_id, labels = excluded.labels`,
				b.MailboxID, int64(b.UIDValidity), int64(b.UID), b.NotmuchID, strings.Join(slices.Compact(labels), " "),
				b.MailboxID, int64(b.UIDValidity), int64(b.UID))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record tag bases: %w", err)
	}
	return nil
}

// RefusedKeywords returns the labels the mailbox refused to store.
func (ix *Index) RefusedKeywords(ctx context.Context, mailboxID int64) ([]string, error) {
	rows, err := ix.db.QueryContext(ctx, `SELECT label FROM refused_keywords WHERE mailbox_id = ? ORDER BY label`, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("read refused keywords of mailbox %d: %w", mailboxID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, fmt.Errorf("read refused keywords of mailbox %d: %w", mailboxID, err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// AddRefusedKeywords records labels the mailbox refused, in one
// transaction.
func (ix *Index) AddRefusedKeywords(ctx context.Context, mailboxID int64, labels []string) error {
	err := ix.Update(ctx, func(tx *Tx) error {
		for _, l := range labels {
			if _, err := tx.tx.ExecContext(ctx, `INSERT INTO refused_keywords (mailbox_id, label) VALUES (?, ?) ON CONFLICT DO NOTHING`, mailboxID, l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record refused keywords of mailbox %d: %w", mailboxID, err)
	}
	return nil
}
