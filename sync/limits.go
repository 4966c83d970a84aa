package sync

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// limited reports whether any partial-sync limit is set.
func (o Options) limited() bool {
	return !o.Since.IsZero() || o.MaxSize > 0 || o.MaxMessages > 0
}

// outsideLimits returns the server messages of b that the partial-sync
// limits keep on the server only: among the messages not downloaded yet
// (new ones, and rows skipped before), those received before
// Options.Since (by INTERNALDATE), larger than Options.MaxSize (by
// RFC822.SIZE), or not among the Options.MaxMessages newest of the
// mailbox (by UID: UIDs are assigned in order of arrival, RFC 9051
// §2.3.1.1). Messages already downloaded are never outside: a limit only
// decides what is fetched, never what is deleted. With FetchSkipped
// nothing is outside.
func (o Options) outsideLimits(b *box) map[mail.UID]bool {
	if !o.limited() || o.FetchSkipped {
		return nil
	}
	type cand struct {
		uid  mail.UID
		size int64
		date time.Time
	}
	var cands []cand
	var present []mail.UID
	for row := range b.known.all() {
		if !row.State.OnServer() || b.gone[row.UID] {
			continue
		}
		present = append(present, row.UID)
		if row.State == mail.StateSkipped {
			cands = append(cands, cand{row.UID, row.Size, row.InternalDate})
		}
	}
	for _, m := range b.changed {
		if b.known.has(m.UID) {
			continue
		}
		present = append(present, m.UID)
		cands = append(cands, cand{m.UID, m.Size, m.InternalDate})
	}
	newest := map[mail.UID]bool{}
	if o.MaxMessages > 0 {
		slices.SortFunc(present, func(a, b mail.UID) int { return cmp.Compare(b, a) })
		for _, u := range present[:min(len(present), o.MaxMessages)] {
			newest[u] = true
		}
	}
	out := map[mail.UID]bool{}
	for _, c := range cands {
		switch {
		case !o.Since.IsZero() && c.date.Before(o.Since),
			o.MaxSize > 0 && c.size > o.MaxSize,
			o.MaxMessages > 0 && !newest[c.uid]:
			out[c.uid] = true
		}
	}
	return out
}

// skippedRow is the index row of a server message a limit keeps from
// being downloaded. It has no file; its key, which the index needs unique
// within the mailbox, holds a ":" outside an info suffix, which no
// Maildir file name carries, so it is never taken for a file's.
func skippedRow(uv mail.UIDValidity, m mail.RemoteMessage) mail.Message {
	return mail.Message{UIDValidity: uv, UID: m.UID, Key: fmt.Sprintf("skipped:%d:%d", uv, m.UID),
		Flags: m.Flags, ModSeq: m.ModSeq, Size: m.Size, InternalDate: m.InternalDate, State: mail.StateSkipped}
}
