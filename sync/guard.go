package sync

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Errors of the safety guards, in MailboxResult.Safety.
var (
	// ErrTooManyDeletions: a mailbox's plan deletes more than
	// Options.MaxDelete allows; its deletions were held back.
	ErrTooManyDeletions = errors.New("too many deletions")
	// ErrTooManyUploads: the first sync of a mailbox would upload more
	// local messages than firstSyncUploads allows; nothing was done in it.
	ErrTooManyUploads = errors.New("too many uploads for a first sync")
)

// DeleteLimit caps the deletions of one run in one mailbox, on each side
// separately: at most Percent percent of the messages on that side, or Min
// messages if that is more.
type DeleteLimit struct {
	Percent float64
	Min     int
}

// allows is how many of size messages may go.
func (l DeleteLimit) allows(size int) int {
	return max(l.Min, int(math.Floor(l.Percent*float64(size)/100)))
}

// A first sync of a mailbox may upload this many messages, or
// firstSyncPercent of the server's messages if that is more. More looks
// like a Maildir that is not this account's copy, or files another tool
// left: uploading them could not be undone.
const (
	firstSyncUploads = 100
	firstSyncPercent = 10
)

// guardPlans applies the safety guards to the plans of one run, before
// anything is applied, and returns the boxes whose plans are to be
// applied. It does no I/O. Unless opts.Force:
//
//   - A mailbox never synced to the end (no LastSync) or without a single
//     row, whose plan uploads more than a first sync may, is left out:
//     nothing is done in it, so that the next run sees a first sync again.
//   - A mailbox whose plan deletes more than opts.MaxDelete allows on
//     either side (files removed because the server expunged them,
//     messages deleted on the server because their file was deleted)
//     deletes nothing; everything else in its plan is applied. A message
//     moved to another mailbox (MoveOut, Adopt) is not a deletion.
//
// What is held back is counted in MailboxResult.Held and explained in
// MailboxResult.Safety.
func guardPlans(boxes []*box, opts Options, log *slog.Logger) []*box {
	if opts.Force {
		return boxes
	}
	var stopped []*box
	for _, b := range boxes {
		if err := checkFirstSync(b); err != nil {
			stopped = append(stopped, b)
			b.res.Safety, b.res.Held = err, len(b.plan.Upload)
			log.Info("first sync held back", "mailbox", b.Name, "uploads", len(b.plan.Upload))
		}
	}
	var apply []*box
	for _, b := range boxes {
		if !slices.Contains(stopped, b) {
			apply = append(apply, b)
		}
	}
	for _, b := range stopped {
		unlinkStopped(b.plan, stopped)
		b.plan = &Plan{Mailbox: b.plan.Mailbox, Mode: b.plan.Mode, Status: b.plan.Status}
		b.res.Plan = b.plan
	}
	if opts.MaxDelete != nil {
		for _, b := range apply {
			holdDeletions(b, *opts.MaxDelete, log)
		}
	}
	return apply
}

// checkFirstSync refuses the mass upload of a first sync.
func checkFirstSync(b *box) error {
	// A mailbox re-created on the server after its deletion there gets
	// back the files of the folder it was synced with; a delta learned
	// from a few rows is no first sync.
	if b.recreated || b.delta || !b.mb.LastSync.IsZero() && b.known.len() > 0 {
		return nil
	}
	n := len(b.plan.Upload)
	allowed := max(firstSyncUploads, int(b.st.Messages)*firstSyncPercent/100)
	if n <= allowed {
		return nil
	}
	return fmt.Errorf("%w: this mailbox was never synced, and its first sync would upload %d local messages the server does not have (a first sync may upload %d); nothing is done in it. If the folder %s really holds mail for this account, run satchel sync --force",
		ErrTooManyUploads, n, allowed, b.rel)
}

// unlinkStopped undoes what the plans of applied mailboxes expected of a
// stopped one. The only such link is an adoption into it: the file stays
// where it is, and its row, whose server copy is gone, is held so that a
// later run decides again (the row's mailbox finishes this run, and a
// QRESYNC delta would not report the expunge twice).
func unlinkStopped(p *Plan, stopped []*box) {
	for _, a := range p.Adopt {
		if a.Row == nil || a.RowBox == nil || slices.Contains(stopped, a.RowBox) || a.Row.State == mail.StateLocalOnly {
			continue
		}
		row := *a.Row
		row.State = mail.StateHeld
		a.RowBox.plan.Rows = append(a.RowBox.plan.Rows, row)
	}
}

// holdDeletions drops a mailbox's deletions if there are more, on either
// side, than limit allows. A held removal (the server expunged the
// message) keeps its file and its row, as StateHeld; a held server
// deletion (the file was deleted) keeps its row as it is, so that both
// are planned again by the next run.
func holdDeletions(b *box, limit DeleteLimit, log *slog.Logger) {
	p := b.plan
	var over []string
	size := len(b.files)
	if b.delta {
		size = b.localFiles
	}
	if n := len(p.RemoveLocal); n > limit.allows(size) {
		over = append(over, fmt.Sprintf("%d of the %d local messages would be removed because they were expunged on the server (sync.max_delete allows %d)", n, size, limit.allows(size)))
	}
	if n, size := len(p.DeleteRemote), int(b.st.Messages); n > limit.allows(size) {
		over = append(over, fmt.Sprintf("%d of the %d messages on the server would be deleted there because their files were deleted (sync.max_delete allows %d)", n, size, limit.allows(size)))
	}
	if len(over) == 0 {
		return
	}
	for _, m := range p.RemoveLocal {
		m.State = mail.StateHeld
		p.Rows = append(p.Rows, m)
	}
	b.res.Held = len(p.RemoveLocal) + len(p.DeleteRemote)
	b.res.Safety = fmt.Errorf("%w: %s; nothing is deleted in this mailbox, the rest is synced. Check the Maildir (a folder emptied by mistake?) and the server; if the deletions are intended, run satchel sync --force",
		ErrTooManyDeletions, strings.Join(over, ", and "))
	log.Info("deletions held back", "mailbox", b.Name, "local", len(p.RemoveLocal), "server", len(p.DeleteRemote))
	p.RemoveLocal, p.DeleteRemote = nil, nil
}
