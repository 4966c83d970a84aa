package restore

import (
	"context"
	"fmt"

	"github.com/satchel-mail/satchel/sync/mail"
)

// keywords gives the messages a restore uploaded the keywords ($Junk,
// $label1, ...) that the source's index records for their files: a
// Maildir name cannot carry them, so the upload could not. A message is
// matched by its file, which has the same name in both Maildirs. Each
// mailbox's keywords are stored on the server, then recorded in the
// target's index as the new base, so that the next sync sees nothing to
// do; a crash between the two only makes the next restore (or sync)
// store them again. Keywords the server cannot store (not in
// PERMANENTFLAGS) are left out. It returns how many messages got
// keywords.
func (r *restorer) keywords(ctx context.Context, folders []*Folder) (int, error) {
	unlock, err := r.deps.Lock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	srcIx, ok, err := r.deps.ReadIndex(ctx, Source)
	if err != nil || !ok {
		return 0, err // a Maildir without an index: no keywords known
	}
	defer srcIx.Close()
	dstIx, err := r.deps.OpenIndex(ctx)
	if err != nil {
		return 0, err
	}
	defer dstIx.Close()
	srcBoxes, err := srcIx.Mailboxes(ctx)
	if err != nil {
		return 0, err
	}

	var remote Remote
	defer func() {
		if remote != nil {
			remote.Close()
		}
	}()
	total := 0
	for _, f := range folders {
		if f.Err != nil || f.Mailbox == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
		// The source's rows of this folder, by file.
		want := map[string]mail.Flags{}
		for _, mb := range srcBoxes {
			if mb.LocalPath != f.From || mb.UIDValidity == 0 {
				continue
			}
			rows, err := srcIx.Messages(ctx, mb.ID, mb.UIDValidity)
			if err != nil {
				return total, err
			}
			for _, r := range rows {
				if kw := r.Flags.Keywords(); kw.Len() > 0 && r.State.OnLocal() {
					want[r.Key] = kw
				}
			}
		}
		if len(want) == 0 {
			continue
		}
		mb, ok, err := dstIx.Mailbox(ctx, f.Mailbox)
		if err != nil {
			return total, err
		}
		if !ok || mb.UIDValidity == 0 {
			continue
		}
		rows, err := dstIx.Messages(ctx, mb.ID, mb.UIDValidity)
		if err != nil {
			return total, err
		}
		var changes []mail.FlagChange
		for _, r := range rows {
			if kw, ok := want[r.Key]; ok && r.State == mail.StateSynced {
				if add := kw.Minus(r.Flags); add.Len() > 0 {
					changes = append(changes, mail.FlagChange{UID: r.UID, Add: add})
				}
			}
		}
		if len(changes) == 0 {
			continue
		}
		if remote == nil {
			if remote, err = r.deps.Connect(ctx); err != nil {
				return total, err
			}
		}
		st, err := remote.Select(ctx, f.Mailbox)
		if err != nil {
			return total, err
		}
		if st.UIDValidity != mb.UIDValidity {
			return total, fmt.Errorf("restore the keywords of %q: the mailbox was renumbered meanwhile; sync, then restore again", f.Mailbox)
		}
		changes = storableChanges(st, changes)
		if len(changes) == 0 {
			continue
		}
		done, err := remote.Store(ctx, changes)
		if err != nil {
			return total, fmt.Errorf("restore the keywords of %q: %w", f.Mailbox, err)
		}
		var put []mail.Message
		for _, r := range rows {
			if got, ok := done[r.UID]; ok {
				r.Flags = r.Flags.Union(got.Flags.Keywords())
				r.ModSeq = got.ModSeq
				put = append(put, r)
			}
		}
		if err := dstIx.PutMessages(ctx, mb.ID, put); err != nil {
			return total, err
		}
		total += len(put)
		r.log.Info("restored keywords", "mailbox", f.Mailbox, "messages", len(put))
	}
	return total, nil
}

// storableChanges keeps of each change the keywords the mailbox can
// store: those PERMANENTFLAGS lists, or any when it lists \* (RFC 9051
// §7.1).
func storableChanges(st mail.MailboxStatus, changes []mail.FlagChange) []mail.FlagChange {
	var out []mail.FlagChange
	for _, ch := range changes {
		var keep []string
		for _, k := range ch.Add.List() {
			if st.CanCreateKeywords || st.PermanentFlags.Has(k) {
				keep = append(keep, k)
			}
		}
		if len(keep) > 0 {
			ch.Add = mail.NewFlags(keep...)
			out = append(out, ch)
		}
	}
	return out
}
