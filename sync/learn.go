package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	gosync "sync"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// box is one mailbox through the three phases of a sync: what was learned
// of both sides (learn), what will be done (plan), what was done (apply).
type box struct {
	// mu guards known and res while a download runs over several
	// connections at once.
	mu gosync.Mutex
	mailboxEntry
	mb     mail.Mailbox
	st     mail.MailboxStatus
	mode   mail.SyncMode
	folder Folder
	// known holds the index's rows under the server's UIDVALIDITY as
	// learned; apply does not change it (see added).
	known *rows
	// changed holds server messages that changed or are new (new ones
	// with complete metadata), by ascending UID; gone the known UIDs the
	// server expunged. Both are dropped once the mailbox is planned.
	changed []mail.RemoteMessage
	gone    map[mail.UID]bool
	// files holds the folder's files, key → flags; a key that is also a
	// row's is the row's string.
	files map[string]mail.Flags
	// limbo holds local messages kept without a server counterpart
	// (see rebase); their files are neither uploaded nor deleted.
	limbo *rows
	// added holds the UIDs at or above st.UIDNext whose rows apply
	// recorded: a later search for an appended or moved message must
	// not take one of them for its own (see claimed).
	added map[mail.UID]bool
	// stamp is the folder's stamp before it was listed, "" if untrusted.
	stamp string
	// delta: learned from the changed messages' rows alone (delta.go);
	// files then holds theirs only, and localFiles counts the folder's.
	delta      bool
	localFiles int
	// changes: what a delta learn that gave up had already asked the
	// server (CONDSTORE's CHANGEDSINCE), for remoteDelta.
	changes []mail.RemoteMessage
	// watch follows the folder from before deltaReady took its stamp
	// (watchstamp.go); nil when the run cannot watch.
	watch FolderWatch
	// compared: unchanged compared the folder with the index in this run
	// (agreedStamp) and they did not agree.
	compared bool
	// stream: the UIDs of a first sync streamed in windows (stream.go),
	// until the plan takes them over; resumed: the first sync streams on
	// from where an interrupted one stopped (resumable), its rows and
	// files not read.
	stream  []mail.UID
	resumed bool
	plan    *Plan
	res     *MailboxResult
}

// learn selects a mailbox, asks the server what changed since the index's
// state, and lists the local folder. It changes nothing on the server.
// Locally it creates a missing folder, records the UIDVALIDITY of a
// mailbox seen for the first time, and brings the index up to date with
// the server's numbering: it completes steps a crash interrupted,
// re-associates a renumbered mailbox's messages, and adopts the files of
// a folder synced for the first time.
func (r *runner) learn(ctx context.Context, remote Remote, b *box) error {
	ix := r.deps.Index
	mb, err := ix.EnsureMailbox(ctx, b.Name, b.rel)
	if err != nil {
		return err
	}
	if mb.LocalPath != b.rel && !r.opts.DryRun {
		// Moved by the user to where the configuration now places it:
		// the index follows.
		oldStamp, _, err1 := r.deps.Folder(mb.LocalPath).Stamp()
		newStamp, _, err2 := r.deps.Folder(b.rel).Stamp()
		if err1 == nil && err2 == nil && oldStamp == "" && newStamp != "" {
			mb.LocalPath = b.rel
			if err := ix.SaveMailbox(ctx, mb); err != nil {
				return err
			}
		}
	}
	if mb.LocalPath != b.rel {
		// The layout or mailboxes.map changed since the mailbox was last
		// synced: its files are elsewhere, and reading the new place as
		// empty would delete every message on the server.
		if r.migratedAlready(b.RemoteMailbox, mb.LocalPath) {
			// A migration to prefix-free names cut short moves the rest.
			return fmt.Errorf("%w: %q is in folder %q, where satchel migrate-folders put it; run satchel migrate-folders again to move the other folders too",
				ErrFolderMoved, b.Name, mb.LocalPath)
		}
		return fmt.Errorf("%w: %q was synced into folder %q, the configuration now places it in %q; move the folder there (or restore the old layout or mailboxes.map) and sync again",
			ErrFolderMoved, b.Name, mb.LocalPath, b.rel)
	}
	first := mb.UIDValidity == 0
	if !first {
		if first, err = r.firstCutShort(ctx, mb); err != nil {
			return err
		}
	}
	if !first {
		if b.resumed, err = r.resumable(ctx, b, mb); err != nil {
			return err
		}
	}
	delta := !first && !b.resumed && r.deltaReady(ctx, remote, b, mb)
	if b.resumed {
		b.known = rowsOf(mb.UIDValidity) // none read: see resumable
	} else if !first && !delta {
		if b.known, err = loadRows(ctx, ix, mb.ID, mb.UIDValidity); err != nil {
			return err
		}
	}
	var st mail.MailboxStatus
	var qchanged []mail.RemoteMessage
	var qgone []mail.UID
	qresync := remote.Mode() == mail.ModeQResync && !first && mb.HighestModSeq != 0
	if qresync {
		st, qchanged, qgone, err = remote.SelectChanges(ctx, b.Name, mb.UIDValidity, mb.HighestModSeq, onServerUIDs(b.known))
	} else {
		st, err = remote.Select(ctx, b.Name)
	}
	if err != nil {
		return err
	}
	b.folder = r.deps.Folder(b.rel)
	if st.MailboxID == "" && b.Status != nil {
		st.MailboxID = b.Status.MailboxID
	}
	if st.MailboxID != "" {
		mb.MailboxID = st.MailboxID // RFC 8474: recorded with the state
	}
	b.mb, b.st = mb, st
	// Compared before anything else: a server given a stale UIDVALIDITY
	// with QRESYNC answers as to a plain SELECT, with no changes.
	renumbered := !first && st.UIDValidity != mb.UIDValidity
	delta = delta && !renumbered
	b.resumed = b.resumed && !renumbered
	// The rows read above are those of the server's numbering unless the
	// mailbox is new or renumbered; rebase and adoptExisting change them.
	reload := first || renumbered
	if r.opts.DryRun {
		if renumbered {
			return fmt.Errorf("%w in %q (was %d, now %d): a sync will re-associate its messages; a dry run cannot show how",
				ErrUIDValidityChanged, b.Name, mb.UIDValidity, st.UIDValidity)
		}
	} else {
		// A folder deleted with sync.remove_folders stays deleted unless
		// mail is downloaded into it (apply).
		if r.opts.Direction != "push" && !b.folderGone {
			if err := b.folder.Init(); err != nil {
				return fmt.Errorf("create folder %s: %w", b.rel, err)
			}
			if err := b.folder.CleanTmp(nil, time.Now()); err != nil {
				r.log.Warn("cannot clean tmp/", "folder", b.rel, "err", err)
			}
		}
		switch {
		case renumbered:
			b.known = nil // rows of the old numbering, which rebase reads itself
			n, err := r.rebase(ctx, remote, b, st)
			if err != nil {
				return fmt.Errorf("re-associate the messages of renumbered %q: %w", b.Name, err)
			}
			b.res.Reassociated = n
			qresync = false
			r.gmailBackfill(ctx, remote, b)
		case first:
			// Record UIDVALIDITY before the first message, so that rows
			// written by an interrupted first sync are never read under
			// another numbering.
			b.mb.UIDValidity = st.UIDValidity
			if err := ix.SaveMailbox(ctx, b.mb); err != nil {
				return err
			}
			if _, err := r.adoptExisting(ctx, remote, b, r.opts.Reindex); err != nil {
				return fmt.Errorf("adopt the existing messages of %s: %w", b.rel, err)
			}
			r.gmailBackfill(ctx, remote, b)
		}
		// Steps a crash interrupted are completed or undone first, while
		// the mailbox is selected: a message appended before the crash
		// is then known, not taken for new mail.
		recovered, err := r.recover(ctx, remote, b)
		if err != nil {
			return err
		}
		// The rows are read again only if something above changed them
		// (a resumed stream reads none: it skips the UIDs they hold).
		reload = reload || recovered && !b.resumed
	}
	b.mb.UIDValidity = st.UIDValidity
	if reload {
		b.known = nil // not held twice
		if b.known, err = loadRows(ctx, ix, mb.ID, st.UIDValidity); err != nil {
			return err
		}
	}
	if b.limbo, err = loadRows(ctx, ix, mb.ID, limbo); err != nil {
		return err
	}
	if delta {
		ok, err := r.learnDelta(ctx, remote, b, qresync, qchanged, qgone)
		if err != nil || ok {
			b.delta = ok
			return err
		}
		// The answer needs every row after all.
		b.stamp = ""
		if b.known, err = loadRows(ctx, ix, mb.ID, st.UIDValidity); err != nil {
			return err
		}
	}
	stream := b.resumed
	if first {
		if stream, err = r.streamable(b); err != nil {
			return fmt.Errorf("count the files of folder %s: %w", b.rel, err)
		}
	}
	if stream {
		err = r.learnStream(ctx, remote, b)
		if err == nil && b.resumed {
			stream, err = r.resumeStream(ctx, b)
		}
	}
	if err == nil && !stream {
		if qresync && st.HighestModSeq != 0 && st.HighestModSeq >= mb.HighestModSeq {
			err = r.qresyncDelta(ctx, remote, b, qchanged, qgone)
		} else {
			// Not QRESYNC, or NOMODSEQ, or a HIGHESTMODSEQ lower than the
			// index's (a restored server): ask the slower ways.
			err = r.remoteDelta(ctx, remote, b)
		}
	}
	if err != nil {
		return err
	}
	if b.resumed {
		// Its files are those of its rows (resumable counted them):
		// nothing to upload, nothing to pair, and no listing of a folder
		// that may hold a million files.
		b.files = map[string]mail.Flags{}
		return nil
	}
	// The folder's stamp, taken before it is listed; one that changed
	// too recently (stampWait) could hide a change in the same clock
	// tick and is not kept.
	stamp, latest, err := b.folder.Stamp()
	if err == nil && stampWait(latest) == 0 {
		b.stamp = stamp
	}
	if b.files, err = b.folder.ScanShared(b.known.sameKey); err != nil {
		return fmt.Errorf("list folder %s: %w", b.rel, err)
	}
	return nil
}

// firstCutShort reports whether mb's first sync was cut short before it
// recorded anything but the UIDVALIDITY: no sync of it ever completed,
// and the index holds no row and no intent for it. Such a mailbox is
// learned as a first sync again, so that the files of its folder are
// paired with the server's messages (adoptExisting), not uploaded beside
// them while the server's copies are downloaded.
func (r *runner) firstCutShort(ctx context.Context, mb mail.Mailbox) (bool, error) {
	if mb.UIDNext != 0 || mb.HighestModSeq != 0 || !mb.LastSync.IsZero() {
		return false, nil
	}
	ix := r.deps.Index
	for _, uidv := range []mail.UIDValidity{mb.UIDValidity, limbo} {
		onServer, onLocal, err := ix.CountRows(ctx, mb.ID, uidv)
		if err != nil || onServer+onLocal > 0 {
			return false, err
		}
	}
	ins, err := ix.Intents(ctx, mb.ID)
	return err == nil && len(ins) == 0, err
}

// interruptedFiles finds the files of the interrupted downloads and
// adoptions among ins, together, by key: a download cut short leaves a
// batch of intents (up to one per message of each connection's batch),
// most without a file, and looking each up alone would list a large
// folder for each.
func interruptedFiles(f Folder, ins []mail.Intent) (map[string]mail.Flags, error) {
	want := map[string]mail.Flags{}
	for _, in := range ins {
		if in.Kind == mail.IntentDownload || in.Kind == mail.IntentAdopt {
			want[in.Key] = in.Row.Flags.System()
		}
	}
	return f.FindAll(want)
}

// qresyncDelta takes the server's changes as QRESYNC reported them during
// SELECT: no UID list, no flag scan.
func (r *runner) qresyncDelta(ctx context.Context, remote Remote, b *box, changed []mail.RemoteMessage, gone []mail.UID) error {
	b.mode = mail.ModeQResync
	b.gone = map[mail.UID]bool{}
	for _, u := range gone {
		b.gone[u] = true
	}
	if b.st.UIDNext > b.mb.UIDNext && b.mb.UIDNext != 0 {
		// known-uids limits QRESYNC's report to known messages; new ones
		// are above the last UIDNEXT.
		news, err := remote.Since(ctx, b.mb.UIDNext)
		if err != nil {
			return err
		}
		changed = append(changed, news...)
	}
	return r.completeNew(ctx, remote, b, changed)
}

// onServer counts the known messages that exist on the server.
func onServer(known *rows) int {
	n := 0
	for m := range known.all() {
		if m.State.OnServer() {
			n++
		}
	}
	return n
}

// remoteDelta learns the server's changes as cheaply as its capabilities
// allow and completes the metadata of new messages.
func (r *runner) remoteDelta(ctx context.Context, remote Remote, b *box) error {
	mb, st, known := b.mb, b.st, b.known
	b.changed = nil
	b.gone = map[mail.UID]bool{}
	b.mode = remote.Mode()
	incremental := b.mode != mail.ModeFull && mb.HighestModSeq != 0 && st.HighestModSeq != 0 &&
		st.HighestModSeq >= mb.HighestModSeq
	if b.mode != mail.ModeFull && !incremental {
		// First sync, NOMODSEQ, or a HIGHESTMODSEQ that went backwards
		// (a restored server): nothing to compare against.
		b.mode = mail.ModeFull
	}
	var changed []mail.RemoteMessage
	if incremental {
		present := onServer(known)
		if st.HighestModSeq == mb.HighestModSeq && int(st.Messages) == present {
			// No message changed or arrived since the last sync (both
			// raise HIGHESTMODSEQ, RFC 7162 §3.1.1) and none was
			// expunged: the count still matches.
			return nil
		}
		changed, b.changes = b.changes, nil
		if changed == nil {
			var err error
			if changed, err = remote.Changes(ctx, mb.HighestModSeq); err != nil {
				return err
			}
		}
		news := 0
		for _, m := range changed {
			if k, ok := known.get(m.UID); !ok || !k.State.OnServer() {
				news++
			}
		}
		// With CONDSTORE alone an expunge need not raise HIGHESTMODSEQ;
		// the message count tells whether there were any.
		if int(st.Messages) != present+news {
			uids, err := remote.UIDs(ctx)
			if err != nil {
				return err
			}
			for _, u := range goneUIDs(known, uids) {
				b.gone[u] = true
			}
		}
	} else {
		all, err := remote.Scan(ctx)
		if err != nil {
			return err
		}
		changed = all
		uids := make([]mail.UID, len(all))
		for i, m := range all {
			uids[i] = m.UID
		}
		for _, u := range goneUIDs(known, uids) {
			b.gone[u] = true
		}
	}
	return r.completeNew(ctx, remote, b, changed)
}

// completeNew files the changed messages, asking the server for the size
// and INTERNALDATE of new ones. A known message reported with the flags
// and MODSEQ its row holds (a full scan reports every message) is left
// out: there is nothing to plan for it. It reuses changed's array: on a
// first sync that is every message of the mailbox.
func (r *runner) completeNew(ctx context.Context, remote Remote, b *box, changed []mail.RemoteMessage) error {
	var news []mail.UID
	kept := changed[:0]
	for _, m := range changed {
		if b.gone[m.UID] {
			continue
		}
		if row, ok := b.known.get(m.UID); ok {
			if !m.Flags.Equal(row.Flags) || m.ModSeq != row.ModSeq {
				kept = append(kept, m)
			}
		} else if !m.InternalDate.IsZero() {
			kept = append(kept, m)
		} else {
			news = append(news, m.UID)
		}
	}
	if len(news) > 0 {
		if len(kept) < cap(kept)/2 {
			// Most were new (all of them on a first sync): changed's
			// array is let go before the answer below fills another.
			// (An empty slice of it would still hold it.)
			kept = append([]mail.RemoteMessage(nil), kept...)
		}
		// New messages need size and INTERNALDATE as well as flags; one
		// that is missing from the answer was expunged meanwhile.
		meta, err := remote.Meta(ctx, news)
		if err != nil {
			return err
		}
		if len(kept) == 0 {
			kept = meta
		} else {
			kept = append(kept, meta...)
		}
	}
	b.changed = byUIDLast(kept)
	return nil
}

// byUIDLast sorts server messages by UID, in place, keeping of a UID
// reported twice the later report.
func byUIDLast(msgs []mail.RemoteMessage) []mail.RemoteMessage {
	slices.SortStableFunc(msgs, func(a, b mail.RemoteMessage) int { return cmp.Compare(a.UID, b.UID) })
	out := msgs[:0]
	for i, m := range msgs {
		if i+1 < len(msgs) && msgs[i+1].UID == m.UID {
			continue
		}
		out = append(out, m)
	}
	return out
}

// remoteChange returns what the server reported of uid, if anything.
func (b *box) remoteChange(uid mail.UID) (mail.RemoteMessage, bool) {
	i, ok := slices.BinarySearchFunc(b.changed, uid, func(m mail.RemoteMessage, u mail.UID) int { return cmp.Compare(m.UID, u) })
	if !ok {
		return mail.RemoteMessage{}, false
	}
	return b.changed[i], true
}

// learnLocal reads what the index and the folder say of a mailbox whose
// server side could not be learned, so that files moved out of it are not
// taken for new mail elsewhere.
func (r *runner) learnLocal(ctx context.Context, b *box) error {
	mb, ok, err := r.deps.Index.Mailbox(ctx, b.Name)
	if err != nil || !ok {
		return fmt.Errorf("no index row for %q", b.Name)
	}
	b.mb = mb
	if b.known, err = loadRows(ctx, r.deps.Index, mb.ID, mb.UIDValidity); err != nil {
		return err
	}
	b.folder = r.deps.Folder(b.rel)
	b.files, err = b.folder.ScanShared(b.known.sameKey)
	return err
}

// recover completes or undoes the steps a crash left recorded as intents
// for this mailbox, and reports whether it changed the index.
//
//   - download, adopt: the file under the chosen key is in the folder →
//     record its row; else the step did not happen → forget it.
//   - upload, move: a message with the recorded size and header at or
//     above the recorded UIDNEXT → record its row (and remove the row it
//     replaces); else the server never got it → forget the intent, and
//     the file is handled like any other.
func (r *runner) recover(ctx context.Context, remote Remote, b *box) (bool, error) {
	ix := r.deps.Index
	ins, err := ix.Intents(ctx, b.mb.ID)
	if err != nil || len(ins) == 0 {
		return false, err
	}
	// The rows' UIDs a search for an appended message could meet: those
	// from the lowest UIDNEXT an upload or a move recorded.
	exclude := map[mail.UID]bool{}
	searches := false
	from := mail.UID(0)
	for _, in := range ins {
		if in.Kind == mail.IntentUpload || in.Kind == mail.IntentMove {
			if !searches || in.UIDNext < from {
				from = in.UIDNext
			}
			searches = true
		}
	}
	if searches {
		exclude = b.known.uidsFrom(from)
	}
	present, err := interruptedFiles(b.folder, ins)
	if err != nil {
		return false, err
	}
	for _, in := range ins {
		row := in.Row
		found := false
		switch in.Kind {
		case mail.IntentDownload, mail.IntentAdopt:
			_, ok := present[in.Key]
			found = ok && in.Row.UIDValidity == b.st.UIDValidity
			if found && row.MessageID == "" {
				if info, err := b.folder.Info(in.Key, in.Row.Flags.System()); err == nil {
					row.MessageID = info.MessageID
				}
			}
		case mail.IntentUpload, mail.IntentMove:
			if in.Row.UIDValidity != b.st.UIDValidity {
				break
			}
			uid, err := findAppended(ctx, remote, in.UIDNext, in.Size, in.HeaderHash, exclude)
			if err != nil && !errors.Is(err, errNotFound) {
				return false, err
			}
			if uid != 0 {
				found = true
				row.UID = uid
				exclude[uid] = true
			}
		}
		if !found {
			r.log.Info("interrupted step did not happen; forgotten", "mailbox", b.Name, "step", in.Kind, "key", in.Key)
			if in.Kind == mail.IntentDownload {
				// Its half-written file, if any, is this program's own.
				if err := b.folder.CleanTmp([]string{in.Key}, time.Now()); err != nil {
					r.log.Warn("cannot clean tmp/", "folder", b.rel, "err", err)
				}
			}
			if err := ix.DropIntent(ctx, in.ID); err != nil {
				return false, err
			}
			continue
		}
		changes := []mail.RowChange{{MailboxID: b.mb.ID, Row: row}}
		dropSource := in.From != 0
		if in.Kind == mail.IntentMove && in.From != 0 {
			// The source copy goes first: until it is gone its row must
			// stay, or it would come back as new mail.
			gone, err := r.finishMoveSource(ctx, remote, b, in)
			if err != nil {
				return false, err
			}
			dropSource = gone
		}
		if dropSource {
			changes = append(changes, mail.RowChange{MailboxID: in.From, Delete: true,
				Row: mail.Message{UIDValidity: in.FromUIDValidity, UID: in.FromUID}})
		}
		r.log.Info("completed an interrupted step", "mailbox", b.Name, "step", in.Kind, "uid", row.UID, "key", in.Key)
		if err := ix.CompleteIntent(ctx, in.ID, changes); err != nil {
			return false, err
		}
		if in.Kind == mail.IntentAdopt && in.FromFolder != "" && in.FromFolder != b.rel {
			// A power cut inside the move can leave the file in both
			// folders: the source's copy is stale.
			if err := r.deps.Folder(in.FromFolder).Remove(in.Key); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// finishMoveSource removes the source copy of a move a crash interrupted:
// without MOVE a move is a COPY and an expunge, and a crash between the
// two leaves the message in both mailboxes. It reports whether the source
// copy is gone; one left flagged \Deleted (a plain EXPUNGE would take
// other messages with it) keeps its row, so that the next sync deletes it
// again rather than take it for new mail. Afterwards the target mailbox
// is selected again.
func (r *runner) finishMoveSource(ctx context.Context, remote Remote, b *box, in mail.Intent) (bool, error) {
	mbs, err := r.deps.Index.Mailboxes(ctx)
	if err != nil {
		return false, err
	}
	gone := true
	for _, m := range mbs {
		if m.ID != in.From {
			continue
		}
		st, err := remote.Select(ctx, m.Name)
		if err != nil {
			return false, err
		}
		if st.UIDValidity == in.FromUIDValidity {
			err := remote.Expunge(ctx, []mail.UID{in.FromUID})
			if errors.Is(err, mail.ErrExpungeDeferred) {
				r.log.Warn("source of an interrupted move left flagged \\Deleted", "mailbox", m.Name, "uid", in.FromUID)
				gone = false
			} else if err != nil {
				return false, err
			}
		}
		break
	}
	_, err = remote.Select(ctx, b.Name)
	return gone, err
}
