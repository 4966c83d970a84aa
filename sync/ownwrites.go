package sync

import (
	"context"
	"fmt"

	"github.com/satchel-mail/satchel/sync/mail"
)

// A sync that writes to a mailbox moves the server's state on: UIDNEXT
// past what it appended or moved in, HIGHESTMODSEQ past its STOREs and
// expunges, MESSAGES by what it added and removed. Recorded as learned,
// before those writes, the state would make the next run's listing
// differ from the index (see unchanged), and the next run would select
// the mailbox and fetch its own writes back. Recorded as it is after the
// writes, it could hide another client's change made meanwhile: the next
// run asks only for what came after it (RFC 7162 §3.1.4.1, §3.2.5).
//
// So, after a mailbox's plan is applied, advanceOwnWrites asks the server
// for its state and for every message changed since the state learned
// (one round trip, the mailbox still selected), and the state is advanced
// only when every difference is accounted for by the index as it now
// stands; otherwise the learned state stays, and the next run looks.

// advanceOwnWrites ends apply: when the mailbox is selected and its state
// may have moved since it was learned (this run wrote to it, or recorded
// rows for UIDs at or above the UIDNEXT learned), it learns the state
// after the writes and, where safeAfterWrites finds nothing but what the
// index records, advances b.st to it, for finish to record. The rows of
// messages this run appended or moved in get the MODSEQ the server gave
// them, so that the next run finds them as it left them. removed counts
// the messages this run took out of the mailbox on the server.
func (r *runner) advanceOwnWrites(ctx context.Context, remote Remote, b *box, removed int) error {
	p := b.plan
	wrote := len(p.Upload)+len(p.RemoteFlags)+len(p.DeleteRemote)+len(p.MoveOut) > 0 || len(b.added) > 0
	// Without CONDSTORE a listing never lets a mailbox be skipped
	// (unchanged): there is nothing to gain. An empty plan left the
	// mailbox unselected, and a SELECT for this would cost more than the
	// next run's.
	if !wrote || p.Empty() || remote.Mode() == mail.ModeFull || b.st.HighestModSeq == 0 {
		return nil
	}
	st, changed, ok, err := remote.StatusChanges(ctx, b.Name, b.st.HighestModSeq)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	a := afterWrites{before: b.st, after: st, changed: changed, added: b.added, removed: removed, rows: map[mail.UID]mail.Message{}}
	// The rows of the changed messages and a count: what the check
	// reads follows the changes, not the mailbox.
	uids := make([]mail.UID, len(changed))
	for i, m := range changed {
		uids[i] = m.UID
	}
	err = r.deps.Index.MessagesOf(ctx, b.mb.ID, b.mb.UIDValidity, uids, func(m mail.Message) error {
		a.rows[m.UID] = m
		return nil
	})
	if err != nil {
		return err
	}
	if a.onServer, _, err = r.deps.Index.CountRows(ctx, b.mb.ID, b.mb.UIDValidity); err != nil {
		return err
	}
	fixed, why := a.decide()
	if why != "" {
		r.log.Debug("state kept as learned: the next sync looks again", "mailbox", b.Name, "why", why)
		return nil
	}
	if len(fixed) > 0 {
		if err := r.deps.Index.PutMessages(ctx, b.mb.ID, fixed); err != nil {
			return err
		}
	}
	b.st.UIDNext, b.st.HighestModSeq, b.st.Messages = st.UIDNext, st.HighestModSeq, st.Messages
	return nil
}

// afterWrites is what advanceOwnWrites compares: the state learned and
// the state after this run's writes, the messages changed in between,
// and what the index now records.
type afterWrites struct {
	before, after mail.MailboxStatus
	// changed: UID, flags and MODSEQ of the messages whose MODSEQ is above
	// before.HighestModSeq, as the server reported them after the writes.
	changed []mail.RemoteMessage
	// rows: the index rows of the changed messages that have one;
	// onServer: how many rows the index holds of messages on the server.
	rows     map[mail.UID]mail.Message
	onServer int
	// added: UIDs at or above before.UIDNext whose rows this run recorded
	// (uploads, moves in, downloads of mail that arrived while learning);
	// removed: messages this run expunged or moved out.
	added   map[mail.UID]bool
	removed int
}

// decide returns the rows to record with the MODSEQ the server gave this
// run's own new messages, and "" if after may be recorded; else why not.
// after may be recorded when the index, with those rows, holds what the
// next run would learn from before, so that it loses nothing by starting
// from after:
//
//   - every UID from before.UIDNext up to after.UIDNext has a row this run
//     recorded (an append or a move in by another client has none);
//   - MESSAGES moved by exactly what this run added and removed, and the
//     index holds as many messages on the server (another client's
//     expunge, which a QRESYNC from after would not report, breaks both);
//   - every message changed since before.HighestModSeq, up to
//     after.HighestModSeq, has a row with its flags and MODSEQ: the
//     result of this run's STORE, or what it learned (another client's
//     change to a message has a MODSEQ of its own, RFC 7162 §3.1). One of
//     this run's appended or moved-in messages, whose MODSEQ APPENDUID
//     and COPYUID do not tell (RFC 4315 §3), needs the flags it was
//     recorded with; its row gets the MODSEQ reported.
//
// A message changed after after.HighestModSeq, between STATUS and FETCH,
// is left out: the next run asks for it anyway.
func (a afterWrites) decide() ([]mail.Message, string) {
	b, s := a.before, a.after
	switch {
	case s.UIDValidity != b.UIDValidity:
		return nil, "UIDVALIDITY changed"
	case b.HighestModSeq == 0 || s.HighestModSeq < b.HighestModSeq:
		return nil, fmt.Sprintf("HIGHESTMODSEQ went from %d to %d", b.HighestModSeq, s.HighestModSeq)
	case s.UIDNext < b.UIDNext:
		return nil, fmt.Sprintf("UIDNEXT went from %d to %d", b.UIDNext, s.UIDNext)
	}
	n := int64(s.UIDNext) - int64(b.UIDNext)
	if n > int64(len(a.added)) {
		return nil, fmt.Sprintf("%d UIDs were assigned, this run recorded %d", n, len(a.added))
	}
	for u := b.UIDNext; u < s.UIDNext; u++ {
		if !a.added[u] {
			return nil, fmt.Sprintf("UID %d is not one this run recorded", u)
		}
	}
	if want := int64(b.Messages) + n - int64(a.removed); int64(s.Messages) != want {
		return nil, fmt.Sprintf("%d messages, %d expected from this run's writes", s.Messages, want)
	}
	if a.onServer != int(s.Messages) {
		return nil, fmt.Sprintf("%d messages, the index records %d", s.Messages, a.onServer)
	}
	var fixed []mail.Message
	for _, m := range a.changed {
		if m.ModSeq > s.HighestModSeq {
			continue
		}
		row, ok := a.rows[m.UID]
		switch {
		case !ok || !row.State.OnServer():
			return nil, fmt.Sprintf("UID %d changed and the index has no row for it", m.UID)
		case !m.Flags.Equal(row.Flags):
			return nil, fmt.Sprintf("UID %d has flags %q, the index %q", m.UID, m.Flags, row.Flags)
		case row.ModSeq == m.ModSeq:
		case row.ModSeq == 0 && a.added[m.UID]:
			row.ModSeq = m.ModSeq
			fixed = append(fixed, row)
		default:
			return nil, fmt.Sprintf("UID %d has MODSEQ %d, the index %d", m.UID, m.ModSeq, row.ModSeq)
		}
	}
	return fixed, ""
}
