package sync

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
	"github.com/satchel-mail/satchel/sync/tagmap"
)

// store adds and removes the keywords of one mailbox's copies on the
// server, on the run's connection, and records what the server kept: the
// rows' keywords and the copies' bases. A keyword the server does not
// show afterwards was refused, not removed: servers refuse keywords in
// more ways than a PERMANENTFLAGS without \* (RFC 9051 §7.1; Dovecot's
// Maildir holds at most 26 keywords per mailbox, Cyrus 128), and say so
// only by leaving them out of the FETCH FLAGS that answers the STORE.
// A refused keyword's tag stays local; the mailbox remembers the refusal
// and it is not sent again.
func (t *tagRun) store(ctx context.Context, s *session, mb mail.Mailbox, changes []copyChange, pending map[rowKey]mail.TagBase) error {
	remote, st, err := selectRecorded(ctx, s, mb)
	if err != nil {
		return err
	}
	refused := map[string]bool{}
	var fcs []mail.FlagChange
	byUID := map[mail.UID]copyChange{}
	for _, c := range changes {
		fc := mail.FlagChange{UID: c.c.row.UID}
		var add []string
		for _, kw := range c.add {
			if !st.CanCreateKeywords && !st.PermanentFlags.Has(kw) {
				refused[tagmap.Label(kw)] = true
				continue
			}
			add = append(add, kw)
		}
		fc.Add, fc.Remove = mail.NewFlags(add...), mail.NewFlags(c.remove...)
		byUID[fc.UID] = c
		if fc.Add.Len()+fc.Remove.Len() > 0 {
			fcs = append(fcs, fc)
		}
	}
	done := map[mail.UID]mail.RemoteMessage{}
	if len(fcs) > 0 {
		if done, err = remote.Store(ctx, fcs); err != nil {
			s.close()
			return err
		}
	}
	// Store leaves out a message whose flags do not show the whole
	// change: read those again, to tell a refused keyword from a message
	// that is gone.
	var missing []mail.UID
	for _, fc := range fcs {
		if _, ok := done[fc.UID]; !ok {
			missing = append(missing, fc.UID)
		}
	}
	if len(missing) > 0 {
		now, err := remote.Meta(ctx, missing)
		if err != nil {
			s.close()
			return err
		}
		for _, m := range now {
			done[m.UID] = m
		}
	}
	var rows []mail.Message
	var bases []mail.TagBase
	var unconfirmed []mail.UID
	for _, fc := range fcs {
		got, ok := done[fc.UID]
		if !ok {
			continue // gone: its row goes with the next sync
		}
		have := map[string]bool{}
		for _, kw := range got.Flags.Keywords().List() {
			have[tagmap.Label(kw)] = true
		}
		c := byUID[fc.UID]
		row := c.c.row
		flags := row.Flags
		stuck := false
		for _, kw := range fc.Remove.List() {
			flags = flags.With(kw, false)
			stuck = stuck || have[tagmap.Label(kw)]
		}
		if stuck {
			unconfirmed = append(unconfirmed, fc.UID)
			continue
		}
		for _, kw := range fc.Add.List() {
			if have[tagmap.Label(kw)] {
				flags = flags.With(kw, true)
			} else {
				refused[tagmap.Label(kw)] = true
			}
		}
		row.Flags = flags
		if got.Flags.System().Equal(row.Flags.System()) && got.ModSeq != 0 {
			row.ModSeq = got.ModSeq
		}
		rows = append(rows, row)
		bases = append(bases, pending[rowKey{mb.ID, row.UIDValidity, row.UID}])
	}
	// Copies whose only keywords were refused before sending.
	for _, c := range changes {
		if _, sent := done[c.c.row.UID]; !sent && !slices.ContainsFunc(fcs, func(f mail.FlagChange) bool { return f.UID == c.c.row.UID }) {
			bases = append(bases, pending[rowKey{mb.ID, c.c.row.UIDValidity, c.c.row.UID}])
		}
	}
	if len(rows) > 0 {
		if err := t.r.deps.Index.PutMessages(ctx, mb.ID, rows); err != nil {
			return err
		}
	}
	if len(refused) > 0 {
		l := slices.Sorted(mapKeys(refused))
		if err := t.ix.AddRefusedKeywords(ctx, mb.ID, l); err != nil {
			return err
		}
		for _, x := range l {
			t.refused[mb.ID][x] = true
		}
		if t.res.Refused == nil {
			t.res.Refused = map[string][]string{}
		}
		t.res.Refused[mb.Name] = l
		t.r.log.Warn("the server refused keywords: their tags stay local, and are not sent again", "mailbox", mb.Name, "keywords", strings.Join(l, " "))
	}
	if err := t.ix.SaveTagBases(ctx, bases); err != nil {
		return err
	}
	if len(unconfirmed) > 0 {
		// The recorded revision stays, so the next sync tries again.
		return fmt.Errorf("the server kept keywords it was asked to remove from UIDs %v", unconfirmed)
	}
	_, err = t.advance(ctx, remote, mb)
	return err
}

// advance records the mailbox's state past this run's keyword STOREs
// when nothing else changed it meanwhile (see advanceOwnWrites), so that
// the next run need not select it to learn its own writes back.
//
// It returns the HIGHESTMODSEQ recorded, 0 when it recorded none.
func (t *tagRun) advance(ctx context.Context, remote Remote, mb mail.Mailbox) (mail.ModSeq, error) {
	now, ok, err := t.r.deps.Index.Mailbox(ctx, mb.Name)
	if err != nil || !ok || remote.Mode() == mail.ModeFull || now.HighestModSeq == 0 {
		return 0, err
	}
	before := mail.MailboxStatus{UIDValidity: now.UIDValidity, UIDNext: now.UIDNext, HighestModSeq: now.HighestModSeq, Messages: now.Messages}
	st, changed, ok, err := remote.StatusChanges(ctx, mb.Name, now.HighestModSeq)
	if err != nil || !ok {
		return 0, err
	}
	a := afterWrites{before: before, after: st, changed: changed, rows: map[mail.UID]mail.Message{}}
	want := make(map[mail.UID]bool, len(changed))
	for _, m := range changed {
		want[m.UID] = true
	}
	err = t.r.deps.Index.EachMessage(ctx, mb.ID, mb.UIDValidity, func(m mail.Message) error {
		if m.State.OnServer() {
			a.onServer++
		}
		if want[m.UID] {
			a.rows[m.UID] = m
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if _, why := a.decide(); why != "" {
		t.r.log.Debug("state kept as learned: the next sync looks again", "mailbox", mb.Name, "why", why)
		return 0, nil
	}
	now.HighestModSeq = st.HighestModSeq
	return now.HighestModSeq, t.r.deps.Index.SaveMailbox(ctx, now)
}

// selectRecorded selects mb on the session's connection, failing when
// the server numbers it otherwise than the index records.
func selectRecorded(ctx context.Context, s *session, mb mail.Mailbox) (Remote, mail.MailboxStatus, error) {
	remote, err := s.remote(ctx)
	if err != nil {
		return nil, mail.MailboxStatus{}, err
	}
	st, err := remote.Select(ctx, mb.Name)
	if err != nil {
		s.close()
		return nil, st, err
	}
	if st.UIDValidity != mb.UIDValidity {
		return nil, st, fmt.Errorf("%w in %q", ErrUIDValidityChanged, mb.Name)
	}
	return remote, st, nil
}
