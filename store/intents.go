package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/satchel-mail/satchel/sync/mail"
)

// rowJSON is mail.Message with its flag sets as strings.
type rowJSON struct {
	UIDValidity    uint32 `json:"uidvalidity"`
	UID            uint32 `json:"uid"`
	Key            string `json:"key"`
	Flags          string `json:"flags"`
	ModSeq         uint64 `json:"modseq"`
	Size           int64  `json:"size"`
	InternalDate   int64  `json:"date"`
	MessageID      string `json:"message_id"`
	State          string `json:"state"`
	LocalOnlyFlags string `json:"local_only"`
	GmailID        uint64 `json:"gmail_msgid,omitempty"`
}

func encodeIntentData(in mail.Intent) (string, error) {
	m := in.Row
	b, err := json.Marshal(intentJSON{rowJSON{uint32(m.UIDValidity), uint32(m.UID), m.Key, m.Flags.String(), uint64(m.ModSeq), m.Size,
		timeToDB(m.InternalDate), m.MessageID, string(m.State), m.LocalOnlyFlags.String(), m.GmailID}, in.From, uint32(in.FromUIDValidity), uint32(in.FromUID), in.FromFolder})
	return string(b), err
}

type intentJSON struct {
	Row             rowJSON `json:"row"`
	From            int64   `json:"from,omitempty"`
	FromUIDValidity uint32  `json:"from_uidvalidity,omitempty"`
	FromUID         uint32  `json:"from_uid,omitempty"`
	FromFolder      string  `json:"from_folder,omitempty"`
}

func decodeIntentData(s string, in *mail.Intent) error {
	var d intentJSON
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return err
	}
	r := d.Row
	in.Row = mail.Message{UIDValidity: mail.UIDValidity(r.UIDValidity), UID: mail.UID(r.UID), Key: r.Key,
		Flags: mail.ParseFlags(r.Flags), ModSeq: mail.ModSeq(r.ModSeq), Size: r.Size,
		InternalDate: timeFromDB(r.InternalDate), MessageID: r.MessageID, State: mail.State(r.State),
		LocalOnlyFlags: mail.ParseFlags(r.LocalOnlyFlags), GmailID: r.GmailID}
	in.From, in.FromUIDValidity, in.FromUID = d.From, mail.UIDValidity(d.FromUIDValidity), mail.UID(d.FromUID)
	in.FromFolder = d.FromFolder
	return nil
}

// AddIntents records steps before they start, in one transaction, and
// returns their IDs in order.
func (ix *Index) AddIntents(ctx context.Context, ins []mail.Intent) ([]int64, error) {
	ids := make([]int64, 0, len(ins))
	err := ix.Update(ctx, func(tx *Tx) error {
		for _, in := range ins {
			data, err := encodeIntentData(in)
			if err != nil {
				return err
			}
			res, err := tx.tx.ExecContext(ctx, `INSERT INTO intents
				(mailbox_id, kind, uid, maildir_key, uidnext, size, header_hash, data)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				in.MailboxID, in.Kind, int64(in.UID), in.Key, int64(in.UIDNext), in.Size, in.HeaderHash[:], data)
			if err != nil {
				return fmt.Errorf("record %s intent: %w", in.Kind, err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids, err
}

// Intents returns the steps recorded for a mailbox and not completed.
func (ix *Index) Intents(ctx context.Context, mailboxID int64) ([]mail.Intent, error) {
	rows, err := ix.db.QueryContext(ctx, `SELECT id, mailbox_id, kind, uid, maildir_key, uidnext, size, header_hash, data
		FROM intents WHERE mailbox_id = ? ORDER BY id`, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("read intents: %w", err)
	}
	defer rows.Close()
	var out []mail.Intent
	for rows.Next() {
		var in mail.Intent
		var uid, uidnext int64
		var hash []byte
		var data string
		if err := rows.Scan(&in.ID, &in.MailboxID, &in.Kind, &uid, &in.Key, &uidnext, &in.Size, &hash, &data); err != nil {
			return nil, fmt.Errorf("read intents: %w", err)
		}
		in.UID, in.UIDNext = mail.UID(uid), mail.UID(uidnext)
		copy(in.HeaderHash[:], hash)
		if err := decodeIntentData(data, &in); err != nil {
			return nil, fmt.Errorf("read intent %d: %w", in.ID, err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// CompleteIntent records a step's result and forgets the intent, in one
// transaction: after a crash either both happened or neither.
func (ix *Index) CompleteIntent(ctx context.Context, id int64, changes []mail.RowChange) error {
	return ix.Update(ctx, func(tx *Tx) error {
		if err := tx.apply(changes); err != nil {
			return err
		}
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM intents WHERE id = ?`, id); err != nil {
			return fmt.Errorf("forget intent %d: %w", id, err)
		}
		return nil
	})
}

// DropIntent forgets a step that did not happen.
func (ix *Index) DropIntent(ctx context.Context, id int64) error {
	return ix.CompleteIntent(ctx, id, nil)
}

// Apply writes and deletes rows in one transaction, deletions first (so
// that a row can move to another UID under the same Maildir key).
func (ix *Index) Apply(ctx context.Context, changes []mail.RowChange) error {
	return ix.Update(ctx, func(tx *Tx) error { return tx.apply(changes) })
}

func (tx *Tx) apply(changes []mail.RowChange) error {
	for _, del := range []bool{true, false} {
		for _, c := range changes {
			if c.Delete != del {
				continue
			}
			var err error
			if c.Delete {
				err = tx.DeleteMessage(c.MailboxID, c.Row.UIDValidity, c.Row.UID)
			} else {
				err = tx.PutMessage(c.MailboxID, c.Row)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// CompleteIntents records the results of several steps and forgets their
// intents, all in one transaction (a batch's group commit).
func (ix *Index) CompleteIntents(ctx context.Context, ids []int64, changes []mail.RowChange) error {
	return ix.Update(ctx, func(tx *Tx) error {
		if err := tx.apply(changes); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.tx.ExecContext(ctx, `DELETE FROM intents WHERE id = ?`, id); err != nil {
				return fmt.Errorf("forget intent %d: %w", id, err)
			}
		}
		return nil
	})
}
