package sync

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/satchel-mail/satchel/sync/mail"
)

// The first sync of a huge mailbox into an empty folder is streamed: its
// messages' metadata is asked a window at a time, each window downloaded
// before the next is asked, so that memory follows the window and not the
// mailbox (about 300 bytes a message otherwise, from the listing to the
// end of the downloads: 300 MB for a million messages).

// streamMin is the smallest mailbox whose first sync is streamed.
var streamMin uint32 = 50_000

// streamWindow is how many messages a window holds: its metadata is one
// UID FETCH, and the connections take windows in turn.
var streamWindow = 4096

// streamable reports whether b, learned for the first time, can be
// streamed: nothing local to pair with its messages (no rows, no files),
// nothing that needs the whole listing to decide (a dry run's plan, the
// download limits that keep the newest messages, Gmail's label mode),
// and mail to pull.
func (r *runner) streamable(b *box) (bool, error) {
	if !r.mayStream(b) || b.st.Messages < streamMin || b.known.len() > 0 || b.limbo.len() > 0 {
		return false, nil
	}
	n, err := b.folder.Count()
	return n == 0, err
}

// resumable reports whether mb, whose first sync did not complete, can go
// on streaming from where it stopped instead of being learned whole: the
// listing shows a mailbox of streamMin messages or more under the
// recorded UIDVALIDITY; the options allow streaming (as for streamable);
// every row is a synced message with its file, and the folder holds as
// many files as the index has rows (nothing added or deleted locally
// since: counted, not listed); and no upload or move is pending. Its
// rows are then never held: the UIDs downloaded are skipped as the index
// lists them (resumeStream), and the folder is compared with the index,
// in constant memory, when the sync ends (agreedStamp).
func (r *runner) resumable(ctx context.Context, b *box, mb mail.Mailbox) (bool, error) {
	o := r.opts
	st := b.Status
	if !r.mayStream(b) || b.vanished || o.Reindex || o.Force || o.FetchSkipped ||
		mb.UIDValidity == 0 || mb.UIDNext != 0 || mb.HighestModSeq != 0 || !mb.LastSync.IsZero() || mb.LocalPath != b.rel ||
		st == nil || st.Messages < streamMin || st.UIDValidity != mb.UIDValidity {
		return false, nil
	}
	ix := r.deps.Index
	if onServer, onLocal, err := ix.CountRows(ctx, mb.ID, limbo); err != nil || onServer+onLocal > 0 {
		return false, err
	}
	ins, err := ix.Intents(ctx, mb.ID)
	if err != nil {
		return false, err
	}
	for _, in := range ins {
		if in.Kind != mail.IntentDownload {
			return false, nil
		}
	}
	onServer, onLocal, err := ix.CountRows(ctx, mb.ID, mb.UIDValidity)
	if err != nil || onServer == 0 || onServer != onLocal {
		return false, err
	}
	files, err := r.deps.Folder(b.rel).Count()
	if err != nil {
		return false, fmt.Errorf("count the files of folder %s: %w", b.rel, err)
	}
	// The downloads an interrupted batch left have files without rows;
	// recover decides about them before the rows are counted again. A
	// file deleted locally beside one of those goes unseen here; the
	// comparison at the end of the sync (agreedStamp) then fails, and
	// the next run reads the folder whole and carries the deletion out.
	return files >= onLocal && files <= onLocal+len(ins), nil
}

// resumeStream takes from a resumed mailbox's UIDs those the index has rows
// for, reading the rows one at a time, and reports whether the sync still
// streams: a row whose UID the server no longer has (expunged since the
// interruption) needs the whole plan to decide about its file, and the
// mailbox is then learned as any other, its rows loaded.
func (r *runner) resumeStream(ctx context.Context, b *box) (bool, error) {
	uids := b.stream
	slices.Sort(uids)
	out := uids[:0] // in place: out never passes the UID being read
	i := 0
	errGone := errors.New("a row's message is gone from the server")
	err := r.deps.Index.EachMessage(ctx, b.mb.ID, b.mb.UIDValidity, func(m mail.Message) error {
		for i < len(uids) && uids[i] < m.UID {
			out = append(out, uids[i])
			i++
		}
		if i < len(uids) && uids[i] == m.UID {
			i++
			return nil
		}
		return errGone
	})
	switch {
	case errors.Is(err, errGone):
		r.log.Info("interrupted first sync learned whole: messages were expunged since", "mailbox", b.Name)
		b.resumed, b.stream = false, nil
		b.known, err = loadRows(ctx, r.deps.Index, b.mb.ID, b.mb.UIDValidity)
		return false, err
	case err != nil:
		return false, err
	}
	b.stream = append(out, uids[i:]...)
	return true, nil
}

// mayStream reports whether the run's options and b's folder let its
// first sync be streamed: nothing needs the whole listing to decide (a dry
// run's plan, the download limits that keep the newest messages, Gmail's
// label mode), there is mail to pull and a folder to pull it into.
func (r *runner) mayStream(b *box) bool {
	o := r.opts
	return !o.DryRun && o.pulls() && !b.folderGone &&
		o.Since.IsZero() && o.MaxSize <= 0 && o.MaxMessages <= 0 && o.GmailLabels == nil
}

// learnStream learns a streamed mailbox: only its UIDs, which the plan
// carries as Plan.Stream.
func (r *runner) learnStream(ctx context.Context, remote Remote, b *box) error {
	uids, err := remote.UIDs(ctx)
	if err != nil {
		return err
	}
	b.mode, b.gone, b.changed, b.stream = mail.ModeFull, map[mail.UID]bool{}, nil, uids
	return nil
}

// downloadStream downloads a streamed mailbox's messages a window at a
// time, on remote and on the connections no other mailbox is using
// (within imap.connections), each taking the next window when done with
// its last. A message expunged since the UIDs were listed is missing from
// its window's metadata and skipped. The first failure stops the others
// taking more windows; what was downloaded is committed, and the next
// run goes on from there.
func (r *runner) downloadStream(ctx context.Context, remote Remote, b *box, uids []mail.UID, log *slog.Logger) error {
	if len(uids) == 0 {
		return nil
	}
	windows := (len(uids) + streamWindow - 1) / streamWindow
	var (
		next   atomic.Int64
		failed atomic.Bool
	)
	return r.withExtra(ctx, remote, b, min(r.connections()-1, windows-1), log, func(c Remote, _, _ int) error {
		for !failed.Load() {
			i := int(next.Add(1) - 1)
			if i >= windows {
				return nil
			}
			window := uids[i*streamWindow : min((i+1)*streamWindow, len(uids))]
			msgs, err := c.Meta(ctx, window)
			if err == nil {
				err = r.download(ctx, c, b, msgs, log)
			}
			if err != nil {
				failed.Store(true)
				return err
			}
		}
		return nil
	})
}

// leanAgreeMin is the number of rows with a file from which folderAgrees
// compares the folder with the index by agreeLean rather than by a map of
// the folder's files (about 100 bytes a file).
var leanAgreeMin = 50_000

// agreeLean is folderAgrees's comparison in constant memory: the folder
// agrees with the index when it holds as many files as the index has rows
// with a file, and the same set of (key, system flags): compared as sums
// of keyed hashes, two of 64 bits, of each side's pairs, the folder's
// listed a directory block at a time and the rows read one at a time.
// Only synced rows say which flags their file has: with any other row
// with a file, it cannot decide (decided false), and the caller compares
// the map way.
func (r *runner) agreeLean(ctx context.Context, b *box) (agree, decided bool) {
	rows, files := newSetDigest(), newSetDigest()
	errUndecided := errors.New("a row with a file is not synced")
	add := func(m mail.Message) error {
		switch {
		case !m.State.OnLocal():
			return nil
		case m.State != mail.StateSynced:
			return errUndecided
		}
		rows.add(m.Key, m.Flags.System())
		return nil
	}
	for _, uidv := range []mail.UIDValidity{b.mb.UIDValidity, limbo} {
		if err := r.deps.Index.EachMessage(ctx, b.mb.ID, uidv, add); err != nil {
			return false, !errors.Is(err, errUndecided)
		}
	}
	if err := b.folder.EachFile(func(key string, flags mail.Flags) { files.add(key, flags.System()) }); err != nil {
		return false, true
	}
	return rows.equal(files), true
}

// setDigest sums keyed hashes of (key, flags) pairs: equal sets give
// equal digests, whatever their order.
type setDigest struct {
	n    int
	sum  [2]uint64
	seed [2]maphash.Seed
	h    maphash.Hash
}

// digestSeeds are the keys of every setDigest of a process: two digests
// compare only with the same keys.
var digestSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func newSetDigest() *setDigest { return &setDigest{seed: digestSeeds} }

func (d *setDigest) add(key string, flags mail.Flags) {
	d.n++
	for i, s := range d.seed {
		d.h.SetSeed(s)
		d.h.WriteString(key)
		d.h.WriteByte(0)
		d.h.WriteString(flags.String())
		d.sum[i] += d.h.Sum64()
	}
}

func (d *setDigest) equal(o *setDigest) bool { return d.n == o.n && d.sum == o.sum }
