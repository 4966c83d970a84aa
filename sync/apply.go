package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	gosync "sync"
	"time"

	"github.com/satchel-mail/satchel/conflict"
	"github.com/satchel-mail/satchel/sync/mail"
)

// Download batches: one UID FETCH streams up to this many messages or
// about this many bytes, so that a failure costs little and memory stays
// flat (bodies are streamed to files, never held).
const (
	batchMessages = 64
	batchBytes    = 16 << 20
)

// storeRounds bounds how often a conditional STORE refused because the
// server's copy changed meanwhile is merged again and retried.
const storeRounds = 3

// apply carries out one mailbox's plan. Each step is committed to the
// index right after the change it records is durable on its side. The
// mailbox's HIGHESTMODSEQ in the index advances only when every step
// succeeded, past this run's own writes where advanceOwnWrites proves
// that nothing else changed.
func (r *runner) apply(ctx context.Context, remote Remote, b *box) error {
	p, res, log := b.plan, b.res, r.log.With("mailbox", b.Name)
	selected := func() error { return nil }
	if !p.Empty() && remote.Selected() != b.Name {
		// Learning selected other mailboxes since (or did so on another
		// connection): select this one again. Left selected, it needs
		// no second SELECT: the run's own writes follow what it learned.
		wait := remote.StartSelect(ctx, b.Name)
		selected = gosync.OnceValue(func() error {
			st, err := wait()
			if err != nil {
				return err
			}
			if st.UIDValidity != b.st.UIDValidity {
				return fmt.Errorf("%w in %q during the sync", ErrUIDValidityChanged, b.Name)
			}
			return nil
		})
		defer selected()
		// An APPEND does not depend on the selected mailbox: when the
		// uploads come first, they ride in the SELECT's round trip, and
		// the SELECT's answer is checked before theirs are read.
		if len(p.Upload) == 0 || len(p.Download)+len(p.Adopt) > 0 {
			if err := selected(); err != nil {
				return err
			}
		}
	}
	if b.folderGone && len(p.Download)+len(p.Adopt) > 0 {
		if err := b.folder.Init(); err != nil {
			return fmt.Errorf("create folder %s: %w", b.rel, err)
		}
	}
	if err := r.downloadSplit(ctx, remote, b, p.Download, log); err != nil {
		return err
	}
	if err := r.downloadStream(ctx, remote, b, p.Stream, log); err != nil {
		return err
	}
	if err := r.adopt(ctx, remote, b, log); err != nil {
		return err
	}
	if len(p.Upload) > 0 && len(p.DeleteRemote) > 0 && r.bursts(b) && remote.Selected() == b.Name {
		// The mailbox is open: the \Deleted STORE of the expunge rides
		// with the APPENDs, and the UID EXPUNGE, which must wait for it,
		// with the flag STOREs (writeBurst).
		remote.FlagDeleted(ctx, uidsOf(p.DeleteRemote))
	}
	if err := r.upload(ctx, remote, b, selected, log); err != nil {
		return err
	}
	if err := selected(); err != nil {
		return err
	}
	sent := r.writeBurst(ctx, remote, b)
	if err := r.pushFlags(ctx, remote, b, log, sent); err != nil {
		return err
	}
	for _, f := range p.LocalFlags {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.folder.SetFlagsLazy(f.Key, f.Local, f.Flags); err != nil {
			return fmt.Errorf("set flags of UID %d: %w", f.UID, err)
		}
		res.FlagsChanged++
	}
	movedOut, err := r.moveOut(ctx, remote, b, log)
	if err != nil {
		return err
	}
	deleted, err := r.deleteRemote(ctx, remote, b, log, sent)
	if err != nil {
		return err
	}
	if err := r.applyLocal(ctx, b); err != nil {
		return err
	}
	res.Conflicts = len(p.Conflicts)
	return r.advanceOwnWrites(ctx, remote, b, movedOut+deleted)
}

// burst is the answers to a mailbox's writes sent together: the first
// round of flag changes and the expunge of what the user deleted.
type burst struct {
	stored   map[mail.UID]mail.RemoteMessage
	storeErr error
	// expunged: the expunge was sent, and expungeErr is its answer.
	expunged   bool
	expungeErr error
}

// writeBurst sends a mailbox's flag changes and its expunge's \Deleted
// STORE in one round trip, the UID EXPUNGE once that STORE is answered,
// and reads the answers; nil when the plan moves messages out or
// deletes to the trash, which go on as they did, one command after
// another. Only the sending is moved earlier: the answers are processed
// in the order the writes were made. The check of the state after them
// (advanceOwnWrites) waits for their answers: a server may run a STATUS
// or a FETCH sent with them before them.
func (r *runner) writeBurst(ctx context.Context, remote Remote, b *box) *burst {
	p := b.plan
	if !r.bursts(b) {
		return nil
	}
	var (
		out     burst
		stored  func() (map[mail.UID]mail.RemoteMessage, error)
		expunge func() error
	)
	if len(p.RemoteFlags) > 0 {
		changes, _ := r.flagChanges(b, p.RemoteFlags)
		stored = remote.StartStore(ctx, changes)
	}
	if len(p.DeleteRemote) > 0 {
		expunge = remote.StartExpunge(ctx, uidsOf(p.DeleteRemote))
	}
	if stored != nil {
		out.stored, out.storeErr = stored()
	}
	if expunge != nil {
		out.expunged, out.expungeErr = true, expunge()
	}
	return &out
}

// bursts reports whether writeBurst sends b's writes together.
func (r *runner) bursts(b *box) bool {
	p := b.plan
	return len(p.MoveOut) == 0 && (len(p.DeleteRemote) == 0 || !r.trashes(b))
}

// trashes reports whether deleteRemote moves b's deleted messages to the
// trash rather than expunge them.
func (r *runner) trashes(b *box) bool {
	return r.opts.Trash != "" && !sameMailbox(r.opts.Trash, b.Name)
}

// uidsOf lists the UIDs of msgs, in order.
func uidsOf(msgs []mail.Message) []mail.UID {
	uids := make([]mail.UID, len(msgs))
	for i, m := range msgs {
		uids[i] = m.UID
	}
	return uids
}

// applyLocal ends a plan on the local side: the files of messages the
// server expunged are removed, then the index drops their rows and those
// to forget, and records the rows that changed. The removals and the
// flag renames before them are made durable together, by one fsync of
// new/ and cur/, before the index records any of them.
func (r *runner) applyLocal(ctx context.Context, b *box) error {
	p, ix := b.plan, r.deps.Index
	var removed []mail.UID
	for _, m := range p.RemoveLocal {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.folder.RemoveLazy(m.Key, b.files[m.Key]); err != nil {
			return fmt.Errorf("remove UID %d: %w", m.UID, err)
		}
		removed = append(removed, m.UID)
		b.res.Removed++
	}
	if len(removed)+len(p.LocalFlags) > 0 {
		if err := b.folder.SyncDirs(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// One transaction for all of it, deletions first.
	var changes []mail.RowChange
	for _, u := range append(removed, p.Forget...) {
		changes = append(changes, mail.RowChange{MailboxID: b.mb.ID, Delete: true, Row: mail.Message{UIDValidity: b.mb.UIDValidity, UID: u}})
	}
	for _, row := range p.Rows {
		changes = append(changes, mail.RowChange{MailboxID: b.mb.ID, Row: row})
	}
	if len(changes) == 0 {
		return nil
	}
	return ix.Apply(ctx, changes)
}

// commitParallel is how many downloaded files are fsynced at once.
const commitParallel = 8

// download fetches messages in batches, each streamed from the socket
// into its file. Each batch's intents (UID and chosen key) are recorded
// first, so that a file a crash left without its index row is recognised
// on the next run; a message's row is committed, and its intent
// forgotten, once its file is durable.
func (r *runner) download(ctx context.Context, remote Remote, b *box, msgs []mail.RemoteMessage, log *slog.Logger) error {
	ix := r.deps.Index
	b.mu.Lock()
	r.opts.planProgress(b.Name, len(msgs), totalSize(msgs))
	b.mu.Unlock()
	// On Gmail, a message held in another folder is linked, not
	// downloaded again (gmail.go); one another folder is downloading is
	// linked once all of this download's own are delivered.
	gr, gm := r.gmailFor(remote, b)
	var later []gmailLink
	var plans []*gmailPlan
	defer func() {
		for _, p := range plans {
			gm.release(p)
		}
	}()
	for start := 0; start < len(msgs); {
		end, bytes := start, int64(0)
		for end < len(msgs) && end-start < batchMessages && (end == start || bytes+msgs[end].Size <= batchBytes) {
			bytes += msgs[end].Size
			end++
		}
		batch := msgs[start:end]
		start = end
		var plan *gmailPlan
		if gm != nil {
			var err error
			if plan, err = gm.sort(ctx, gr, batch, log); err != nil {
				return err
			}
			plans = append(plans, plan)
			missing, err := r.link(ctx, b, plan.link, log)
			if err != nil {
				return err
			}
			later = append(later, plan.later...)
			batch = append(plan.fetch, missing...)
			if len(batch) == 0 {
				continue
			}
		}
		ins := make([]mail.Intent, len(batch))
		for i, m := range batch {
			row := mail.Message{UIDValidity: b.mb.UIDValidity, UID: m.UID, Key: b.folder.NewKey(), Flags: m.Flags,
				ModSeq: m.ModSeq, Size: m.Size, InternalDate: m.InternalDate}
			if plan != nil {
				row.GmailID = plan.ids[m.UID]
			}
			if old, ok := b.known.get(m.UID); ok {
				// A restore: the same message, with a new file.
				row.LocalOnlyFlags, row.MessageID = old.LocalOnlyFlags, old.MessageID
			}
			ins[i] = mail.Intent{MailboxID: b.mb.ID, Kind: mail.IntentDownload, UID: m.UID, Key: row.Key, Row: row}
		}
		ids, err := ix.AddIntents(ctx, ins)
		if err != nil {
			return err
		}
		pending := make(map[mail.UID]int, len(batch))
		for i, m := range batch {
			pending[m.UID] = i
		}
		// Group commit: each file is written to tmp/ as it streams in and
		// fsynced and moved in place by one of up to commitParallel
		// goroutines while the next one streams (the file system commits
		// concurrent fsyncs together); the directories are fsynced once
		// for the batch, and then the batch's rows committed in one
		// transaction. A crash before the commit leaves intents that the
		// next run completes or forgets.
		var (
			mu       gosync.Mutex // guards pending, doneIDs, doneRows, failed
			doneIDs  []int64
			doneRows []mail.RowChange
			commits  gosync.WaitGroup
			slots    = make(chan struct{}, commitParallel)
			failed   error
		)
		err = remote.FetchBodies(ctx, batch, func(uid mail.UID, size int64, body io.Reader) error {
			mu.Lock()
			i, ok := pending[uid]
			failure := failed
			mu.Unlock()
			if failure != nil {
				return failure
			}
			if !ok {
				_, err := io.Copy(io.Discard, body)
				return err
			}
			row := ins[i].Row
			staged, msgID, err := b.folder.Stage(ctx, row.Key, body, row.Flags.System(), row.InternalDate)
			if err != nil {
				return fmt.Errorf("download UID %d: %w", uid, err)
			}
			if msgID != "" {
				row.MessageID = msgID
			}
			slots <- struct{}{}
			commits.Add(1)
			go func() {
				defer commits.Done()
				defer func() { <-slots }()
				if err := staged.Commit(); err != nil {
					mu.Lock()
					failed = cmp.Or(failed, fmt.Errorf("download UID %d: %w", uid, err))
					mu.Unlock()
					return
				}
				mu.Lock()
				delete(pending, uid)
				doneIDs = append(doneIDs, ids[i])
				doneRows = append(doneRows, mail.RowChange{MailboxID: b.mb.ID, Row: row})
				mu.Unlock()
				b.mu.Lock()
				r.opts.advanceProgress(b.Name, row.Size)
				b.mu.Unlock()
				log.Debug("downloaded", "uid", uid, "size", row.Size)
			}()
			return nil
		})
		commits.Wait()
		err = cmp.Or(err, failed)
		if len(doneRows) > 0 {
			cerr := b.folder.SyncDirs()
			if cerr == nil {
				cerr = ix.CompleteIntents(ctx, doneIDs, doneRows)
			}
			if cerr != nil {
				// The intents stay: the next run finds the files or not.
				return errors.Join(err, cerr)
			}
			b.mu.Lock()
			for _, c := range doneRows {
				b.recorded(c.Row.UID)
				b.res.Downloaded++
				b.res.Bytes += c.Row.Size
			}
			b.mu.Unlock()
			if plan != nil {
				r.gmailDelivered(b, gm, plan, doneRows)
			}
		}
		if plan != nil {
			gm.release(plan)
		}
		r.noteThrottle(remote)
		// What was not delivered left no file: forget its intent.
		var dropped []int64
		for _, i := range pending {
			dropped = append(dropped, ids[i])
		}
		if len(dropped) > 0 {
			if derr := ix.CompleteIntents(ctx, dropped, nil); derr != nil && err == nil {
				err = derr
			}
		}
		if err != nil {
			return err
		}
	}
	if len(later) > 0 {
		fetch, err := r.waitLinks(ctx, b, later, log)
		if err != nil {
			return err
		}
		if len(fetch) > 0 {
			return r.download(ctx, remote, b, fetch, log)
		}
	}
	return nil
}

// recorded notes that apply recorded a row of uid in b. Only a UID at or
// above the UIDNEXT learned can be mistaken by a later search for an
// appended or moved message (see claimed); the others are not kept, so
// that the first sync of a large mailbox does not hold a UID per message.
// Downloads running in parallel call it with b.mu held.
func (b *box) recorded(uid mail.UID) {
	if uid < b.st.UIDNext {
		return
	}
	if b.added == nil {
		b.added = map[mail.UID]bool{}
	}
	b.added[uid] = true
}

// claimed returns the UIDs at or above from of the messages b's index
// rows record: the learned rows and those apply recorded since. A search
// for a message appended or copied at or above from skips them.
func (b *box) claimed(from mail.UID) map[mail.UID]bool {
	out := b.known.uidsFrom(from)
	for u := range b.added {
		if u >= from {
			out[u] = true
		}
	}
	return out
}

// splitMin is the smallest download that is spread over idle
// connections: below it, the extra SELECTs cost more than they save.
const splitMin = 256

// downloadSplit downloads msgs, spread by UID range over the connections
// no other mailbox is using (within imap.connections): the initial
// download of one huge mailbox then runs on all of them. An extra
// connection that cannot be opened (the server refuses more) leaves its
// share to the others.
func (r *runner) downloadSplit(ctx context.Context, remote Remote, b *box, msgs []mail.RemoteMessage, log *slog.Logger) error {
	extra := 0
	if len(msgs) >= splitMin {
		extra = min(r.connections()-1, len(msgs)/splitMin)
	}
	return r.withExtra(ctx, remote, b, extra, log, func(c Remote, i, parts int) error {
		return r.download(ctx, c, b, msgs[i*len(msgs)/parts:(i+1)*len(msgs)/parts], log)
	})
}

// withExtra runs work on remote and on up to extra more connections that
// no other mailbox is using (within imap.connections), b selected on
// each, at once: work gets its connection, its index (remote's is 0) and
// how many there are. The extra connections are closed at the end; the
// errors are joined.
func (r *runner) withExtra(ctx context.Context, remote Remote, b *box, extra int, log *slog.Logger, work func(c Remote, i, n int) error) error {
	conns, err := r.openExtra(ctx, b, r.takeSlots(extra), log)
	if err != nil {
		return err
	}
	n := len(conns) + 1
	errs := make([]error, n)
	var wg gosync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			defer r.releaseSlot()
			defer c.Close()
			errs[i+1] = work(c, i+1, n)
		})
	}
	errs[0] = work(remote, 0, n)
	wg.Wait()
	return errors.Join(errs...)
}

// openExtra opens n connections, for which the caller holds slots, with
// b selected on each, and returns those that opened; the slots of the
// others are released, or given up for the run when the server refused
// them (retire). A renumbered mailbox is an error.
func (r *runner) openExtra(ctx context.Context, b *box, n int, log *slog.Logger) ([]Remote, error) {
	opened := make([]Remote, n)
	errs := make([]error, n)
	var wg gosync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := r.deps.Connect(ctx)
			if err == nil {
				var st mail.MailboxStatus
				st, err = c.Select(ctx, b.Name)
				if err == nil && st.UIDValidity != b.mb.UIDValidity {
					errs[i] = fmt.Errorf("%w in %q during the sync", ErrUIDValidityChanged, b.Name)
				}
				if err != nil || errs[i] != nil {
					c.Close()
					c = nil
				}
			}
			if c == nil {
				if !(errors.Is(err, mail.ErrTooManyConnections) && r.retire()) {
					r.releaseSlot()
				}
				if err != nil {
					log.Debug("no extra connection for the download", "err", err)
				}
				return
			}
			opened[i] = c
		}()
	}
	wg.Wait()
	var out []Remote
	for _, c := range opened {
		if c != nil {
			out = append(out, c)
		}
	}
	if err := errors.Join(errs...); err != nil {
		for _, c := range out {
			c.Close()
			r.releaseSlot()
		}
		return nil, err
	}
	return out, nil
}

// adopt moves local files into this folder for new server messages that
// are mail the server moved here, after checking the server's copy has
// the same header; otherwise the message is downloaded.
func (r *runner) adopt(ctx context.Context, remote Remote, b *box, log *slog.Logger) error {
	var fallback []mail.RemoteMessage
	for _, a := range b.plan.Adopt {
		in, err := a.From.folder.Info(a.Key, a.From.files[a.Key])
		var uid mail.UID
		if err == nil {
			if uid, err = remote.FindNew(ctx, a.Remote.UID, a.Remote.Size, in.HeaderHash, nil); err != nil {
				return err
			}
		}
		if uid != a.Remote.UID {
			log.Info("moved message does not match the local copy; downloading", "uid", a.Remote.UID)
			fallback = append(fallback, a.Remote)
			if a.Row != nil {
				if a.From == a.RowBox {
					// The file's own server copy is gone: so goes the file.
					if err := a.From.folder.Remove(a.Key); err != nil {
						return err
					}
				}
				if err := r.deps.Index.DeleteMessages(ctx, a.RowBox.mb.ID, a.Row.UIDValidity, []mail.UID{a.Row.UID}); err != nil {
					return err
				}
			}
			continue
		}
		row := mail.Message{UIDValidity: b.mb.UIDValidity, UID: uid, Key: a.Key, Flags: a.Remote.Flags, ModSeq: a.Remote.ModSeq,
			Size: a.Remote.Size, InternalDate: a.Remote.InternalDate, MessageID: in.MessageID}
		intent := mail.Intent{MailboxID: b.mb.ID, Kind: mail.IntentAdopt, UID: uid, Key: a.Key, Row: row, FromFolder: a.FromRel}
		changes := []mail.RowChange{{MailboxID: b.mb.ID, Row: row}}
		if a.Row != nil {
			intent.From, intent.FromUIDValidity, intent.FromUID = a.RowBox.mb.ID, a.Row.UIDValidity, a.Row.UID
			changes = append(changes, mail.RowChange{MailboxID: a.RowBox.mb.ID, Row: *a.Row, Delete: true})
		}
		ids, err := r.deps.Index.AddIntents(ctx, []mail.Intent{intent})
		if err != nil {
			return err
		}
		if err := r.deps.MoveFile(a.FromRel, b.rel, a.Key); err != nil {
			return fmt.Errorf("move local copy of UID %d: %w", uid, err)
		}
		if err := b.folder.SetFlags(a.Key, a.Remote.Flags.System()); err != nil {
			return err
		}
		if err := r.deps.Index.CompleteIntent(ctx, ids[0], changes); err != nil {
			return err
		}
		b.recorded(uid)
		b.res.Moved++
	}
	return r.download(ctx, remote, b, fallback, log)
}

// uploadBatch is how many uploads share one transaction for their
// intents and one for their results.
const uploadBatch = 64

// upload appends new local files (and restores of messages the server
// expunged) to the mailbox, a batch at a time: the batch's intents are
// recorded together before the first APPEND, and the rows of those that
// completed replace their intents together after the last. A crash in
// between leaves intents that the next run resolves one by one
// (recover): each holds the UIDNEXT seen before, the size and the header
// hash, so a message the server took is found, and never uploaded twice.
func (r *runner) upload(ctx context.Context, remote Remote, b *box, selected func() error, log *slog.Logger) error {
	claimed := b.claimed(b.st.UIDNext)
	r.opts.planProgress(b.Name, len(b.plan.Upload), 0)
	var nextLimbo mail.UID
	for start := 0; start < len(b.plan.Upload); start += uploadBatch {
		batch := b.plan.Upload[start:min(start+uploadBatch, len(b.plan.Upload))]
		if err := r.uploadBatch(ctx, remote, b, batch, claimed, &nextLimbo, selected, log); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) uploadBatch(ctx context.Context, remote Remote, b *box, batch []Upload, claimed map[mail.UID]bool, nextLimbo *mail.UID, selected func() error, log *slog.Logger) error {
	type step struct {
		up    Upload
		info  mail.LocalInfo
		flags mail.Flags
		row   mail.Message
	}
	steps := make([]step, len(batch))
	intents := make([]mail.Intent, len(batch))
	for i, up := range batch {
		in, err := b.folder.Info(up.Key, b.files[up.Key])
		if err != nil {
			return fmt.Errorf("upload %s: %w", up.Key, err)
		}
		flags := in.Flags.System()
		if up.Replaces != nil {
			// A restore brings back the keywords the server lost with it.
			flags = flags.Union(up.Replaces.Flags.Keywords())
		}
		row := mail.Message{UIDValidity: b.mb.UIDValidity, Key: up.Key, Flags: flags,
			Size: in.Size, InternalDate: in.ModTime.Truncate(time.Second), MessageID: in.MessageID}
		intents[i] = mail.Intent{MailboxID: b.mb.ID, Kind: mail.IntentUpload, Key: up.Key, UIDNext: b.st.UIDNext,
			Size: in.Size, HeaderHash: in.HeaderHash, Row: row}
		if up.Replaces != nil {
			intents[i].From, intents[i].FromUIDValidity, intents[i].FromUID = b.mb.ID, up.Replaces.UIDValidity, up.Replaces.UID
		}
		steps[i] = step{up, in, flags, row}
	}
	ids, err := r.deps.Index.AddIntents(ctx, intents)
	if err != nil {
		return err
	}
	var doneIDs []int64
	var changes []mail.RowChange
	var uploaded []mail.Message
	var bytes []int64
	commit := func() error {
		if len(doneIDs) == 0 {
			return nil
		}
		if err := r.deps.Index.CompleteIntents(ctx, doneIDs, changes); err != nil {
			return err
		}
		for _, row := range uploaded {
			b.recorded(row.UID)
			b.res.Uploaded++
		}
		for _, n := range bytes {
			r.opts.advanceProgress(b.Name, n)
		}
		return nil
	}
	outs := make([]mail.Outgoing, len(steps))
	for i, st := range steps {
		key := st.up.Key
		outs[i] = mail.Outgoing{Flags: st.flags, Date: st.info.ModTime, Size: st.info.Size,
			Open: func() (io.ReadCloser, error) { return b.folder.OpenCRLF(key, st.info.Flags) }}
	}
	results, sendErr := remote.AppendBatch(ctx, b.Name, outs)
	if err := selected(); err != nil {
		// The mailbox to look in for the new messages, and to write
		// to next, is not the one learned: the intents stay for the
		// next run, as after a crash.
		return errors.Join(sendErr, err)
	}
	var failed error
	var drop []int64
	for i, st := range steps {
		res := results[i]
		if !res.Done {
			if res.Err != nil {
				// Not appended: the file stays as it is, planned again
				// by the next run; the mailbox reports why.
				failed = errors.Join(failed, fmt.Errorf("upload %s: %w", st.up.Key, res.Err))
				drop = append(drop, ids[i])
			}
			// Else in doubt: the intent stays for the next run to look
			// for the message.
			continue
		}
		row := st.row
		uid := res.UID
		if uid == 0 || res.UIDValidity != b.mb.UIDValidity {
			// No APPENDUID: the new message is at or above the UIDNEXT
			// seen before, with this size and header; or, since some
			// servers change a message as they store it (Dovecot drops a
			// CR at its very end), with this header whatever its size.
			var err error
			uid, err = findAppended(ctx, remote, b.st.UIDNext, st.info.Size, st.info.HeaderHash, claimed)
			if err != nil && !errors.Is(err, errNotFound) {
				return errors.Join(err, commit(), r.dropIntents(ctx, drop))
			}
		}
		if uid != 0 && uid < b.st.UIDNext {
			// A UID from before this run's appends: the server kept a
			// message it already had instead (Gmail drops an APPEND of a
			// message it has, and answers with the old one's UID). The
			// file waits in limbo, never appended again; the old
			// message keeps its own row and file.
			log.Warn("the server already had this message and kept its copy; the file is kept locally and not uploaded again", "key", st.up.Key, "uid", uid)
			uid = 0
		} else if uid == 0 {
			// Appended, but not to be found: the file waits in limbo so
			// that it is never appended again; the server's copy will be
			// downloaded as a message of its own.
			log.Warn("uploaded message cannot be found on the server; kept locally and not uploaded again", "key", st.up.Key)
		}
		if uid == 0 {
			if *nextLimbo == 0 {
				var err error
				if *nextLimbo, err = r.nextLimboUID(ctx, b.mb.ID); err != nil {
					return errors.Join(err, commit(), r.dropIntents(ctx, drop))
				}
			}
			row.UIDValidity, row.UID, row.State = limbo, *nextLimbo, mail.StateLocalOnly
			*nextLimbo++
		} else {
			claimed[uid] = true
			row.UID = uid
			uploaded = append(uploaded, row)
			log.Debug("uploaded", "key", st.up.Key, "uid", uid)
		}
		if st.up.Replaces != nil {
			changes = append(changes, mail.RowChange{MailboxID: b.mb.ID, Row: *st.up.Replaces, Delete: true})
		}
		changes = append(changes, mail.RowChange{MailboxID: b.mb.ID, Row: row})
		doneIDs = append(doneIDs, ids[i])
		bytes = append(bytes, st.info.Size)
	}
	return errors.Join(sendErr, failed, commit(), r.dropIntents(ctx, drop))
}

// dropIntents forgets the intents of steps that were never started.
func (r *runner) dropIntents(ctx context.Context, ids []int64) error {
	for _, id := range ids {
		if err := r.deps.Index.DropIntent(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// errNotFound: the server accepted a message that cannot be found again.
var errNotFound = errors.New("the server accepted the message but it cannot be found")

// findAppended finds a message satchel appended or copied.
func findAppended(ctx context.Context, remote Remote, from mail.UID, size int64, hash [32]byte, exclude map[mail.UID]bool) (mail.UID, error) {
	for _, sz := range []int64{size, -1} {
		uid, err := remote.FindNew(ctx, from, sz, hash, exclude)
		if err != nil || uid != 0 {
			return uid, err
		}
	}
	return 0, errNotFound
}

// pushFlags stores merged flags on the server, conditionally on the
// server's copy being unchanged since it was read; a refused change is
// merged again with the server's new flags and retried.
func (r *runner) pushFlags(ctx context.Context, remote Remote, b *box, log *slog.Logger, sent *burst) error {
	pending := b.plan.RemoteFlags
	for round := 0; len(pending) > 0; round++ {
		changes, byUID := r.flagChanges(b, pending)
		var done map[mail.UID]mail.RemoteMessage
		var err error
		if round == 0 && sent != nil {
			done, err = sent.stored, sent.storeErr
		} else {
			done, err = remote.Store(ctx, changes)
		}
		if err != nil {
			return err
		}
		var rows []mail.Message
		var refused []mail.UID
		renamed := false
		for _, f := range pending {
			got, ok := done[f.UID]
			if !ok {
				refused = append(refused, f.UID)
				continue
			}
			row := f.Base
			row.Flags = r.opts.baseAfter(f.Flags, b.files[f.Key], got.Flags)
			row.LocalOnlyFlags = f.Flags.Minus(storableFlags(b.st, f.Flags))
			row.ModSeq = got.ModSeq
			rows = append(rows, row)
			b.res.FlagsPushed++
			if lf, ok := b.files[f.Key]; ok && !f.Flags.System().Equal(lf.System()) && r.opts.pulls() {
				if err := b.folder.SetFlagsLazy(f.Key, lf, f.Flags); err != nil {
					return fmt.Errorf("set flags of UID %d: %w", f.UID, err)
				}
				b.files[f.Key] = f.Flags.System()
				b.res.FlagsChanged++
				renamed = true
			}
		}
		// The renames are durable before the rows that take their flags
		// as the base: a base ahead of the file would read as a local
		// change and undo the server's.
		if renamed {
			if err := b.folder.SyncDirs(); err != nil {
				return err
			}
		}
		if len(rows) > 0 {
			if err := r.deps.Index.PutMessages(ctx, b.mb.ID, rows); err != nil {
				return err
			}
		}
		if len(refused) == 0 {
			return nil
		}
		if round+1 >= storeRounds {
			log.Warn("server flags keep changing; left for the next sync", "uids", len(refused))
			return nil
		}
		// The server's copies changed since they were read: read them
		// again and merge once more.
		now, err := remote.Meta(ctx, refused)
		if err != nil {
			return err
		}
		pending = pending[:0]
		for _, m := range now {
			f := byUID[m.UID]
			local := conflict.State{Present: true, Flags: b.files[f.Key].Union(f.Base.Flags.Keywords())}
			merged := conflict.MergeFlags(f.Base.Flags, local.Flags, m.Flags.Union(f.Base.LocalOnlyFlags))
			log.Info("server changed flags meanwhile; merged again", "uid", m.UID, "server", m.Flags.String(), "merged", merged.String())
			f.Flags, f.Remote, f.ModSeq = merged, m.Flags, m.ModSeq
			if storableFlags(b.st, merged).Equal(storableFlags(b.st, m.Flags)) {
				row := f.Base
				row.Flags, row.ModSeq = r.opts.baseAfter(merged, b.files[f.Key], m.Flags), m.ModSeq
				row.LocalOnlyFlags = merged.Minus(storableFlags(b.st, merged))
				if err := r.deps.Index.PutMessages(ctx, b.mb.ID, []mail.Message{row}); err != nil {
					return err
				}
				if lf, ok := b.files[f.Key]; ok && !merged.System().Equal(lf.System()) && r.opts.pulls() {
					if err := b.folder.SetFlags(f.Key, merged); err != nil {
						return err
					}
					b.res.FlagsChanged++
				}
				continue
			}
			pending = append(pending, f)
		}
	}
	return nil
}

// flagChanges is what pushFlags stores for pending, and pending by UID.
func (r *runner) flagChanges(b *box, pending []FlagUpdate) ([]mail.FlagChange, map[mail.UID]FlagUpdate) {
	changes := make([]mail.FlagChange, 0, len(pending))
	byUID := make(map[mail.UID]FlagUpdate, len(pending))
	for _, f := range pending {
		want := storableFlags(b.st, f.Flags)
		have := storableFlags(b.st, f.Remote)
		ch := mail.FlagChange{UID: f.UID, Add: want.Minus(have), Remove: have.Minus(want)}
		if b.mode != mail.ModeFull {
			ch.UnchangedSince = f.ModSeq
		}
		changes = append(changes, ch)
		byUID[f.UID] = f
	}
	return changes, byUID
}

// moveOut carries out the user's moves from this mailbox: UID MOVE
// (RFC 6851), or UID COPY and the deletion rule without MOVE — never a
// deletion and an upload. The intent, recorded in the target mailbox,
// lets the next run find the moved message after a crash. It returns how
// many messages left this mailbox on the server.
func (r *runner) moveOut(ctx context.Context, remote Remote, b *box, log *slog.Logger) (int, error) {
	gone := 0
	for _, mv := range b.plan.MoveOut {
		if err := ctx.Err(); err != nil {
			return gone, err
		}
		in, err := mv.To.folder.Info(mv.ToKey, mv.To.files[mv.ToKey])
		if err != nil {
			return gone, err
		}
		row := mv.Row
		row.UIDValidity, row.UID, row.Key = mv.To.mb.UIDValidity, 0, mv.ToKey
		row.Flags = in.Flags.Union(mv.Row.Flags.Keywords())
		row.ModSeq = 0
		intent := mail.Intent{MailboxID: mv.To.mb.ID, Kind: mail.IntentMove, UID: 0, Key: mv.ToKey, UIDNext: mv.To.st.UIDNext,
			Size: mv.Row.Size, HeaderHash: in.HeaderHash, Row: row, From: b.mb.ID, FromUIDValidity: mv.Row.UIDValidity, FromUID: mv.Row.UID}
		ids, err := r.deps.Index.AddIntents(ctx, []mail.Intent{intent})
		if err != nil {
			return gone, err
		}
		uids := []mail.UID{mv.Row.UID}
		// sourceStays: the source copy is still on the server, flagged
		// \Deleted; its row stays so that the next sync deletes it again
		// rather than take it for new mail.
		sourceStays := false
		newUIDs, err := remote.Move(ctx, uids, mv.To.Name)
		if errors.Is(err, mail.ErrNoMove) {
			newUIDs, err = remote.Copy(ctx, uids, mv.To.Name)
			if err == nil {
				err = remote.Expunge(ctx, uids)
				if errors.Is(err, mail.ErrExpungeDeferred) {
					b.res.Deferred++
					log.Warn("moved message left flagged \\Deleted in the source", "uid", mv.Row.UID)
					sourceStays = true
					err = nil
				}
			}
		}
		if err != nil {
			return gone, fmt.Errorf("move UID %d to %q: %w", mv.Row.UID, mv.To.Name, err)
		}
		if !sourceStays {
			gone++
		}
		uid := newUIDs[mv.Row.UID]
		if uid == 0 {
			// No COPYUID: find the copy in the target by size and header.
			if _, err := remote.Select(ctx, mv.To.Name); err != nil {
				return gone, err
			}
			exclude := mv.To.claimed(mv.To.st.UIDNext)
			uid, err = remote.FindNew(ctx, mv.To.st.UIDNext, mv.Row.Size, in.HeaderHash, exclude)
			if err != nil {
				return gone, err
			}
			if _, err := remote.Select(ctx, b.Name); err != nil {
				return gone, err
			}
		}
		b.res.Moved++
		if uid == 0 {
			// The intent stays: the next run looks for it again.
			log.Warn("moved message not found in the target; the next sync will look again", "uid", mv.Row.UID, "to", mv.To.Name)
			continue
		}
		row.UID = uid
		changes := []mail.RowChange{{MailboxID: mv.To.mb.ID, Row: row}}
		if !sourceStays {
			changes = append(changes, mail.RowChange{MailboxID: b.mb.ID, Row: mv.Row, Delete: true})
		}
		err = r.deps.Index.CompleteIntent(ctx, ids[0], changes)
		if err != nil {
			return gone, err
		}
		mv.To.recorded(uid)
	}
	return gone, nil
}

// deleteRemote removes from the server what the user deleted locally: to
// the trash when sync.trash is set, else expunged. It returns how many
// messages left the mailbox on the server.
func (r *runner) deleteRemote(ctx context.Context, remote Remote, b *box, log *slog.Logger, sent *burst) (int, error) {
	if len(b.plan.DeleteRemote) == 0 {
		return 0, nil
	}
	uids := uidsOf(b.plan.DeleteRemote)
	var err error
	if sent != nil && sent.expunged {
		err = sent.expungeErr
	} else if r.trashes(b) {
		_, err = remote.Move(ctx, uids, r.opts.Trash)
		if errors.Is(err, mail.ErrNoMove) {
			if _, err = remote.Copy(ctx, uids, r.opts.Trash); err == nil {
				err = remote.Expunge(ctx, uids)
			}
		}
	} else {
		err = remote.Expunge(ctx, uids)
	}
	if errors.Is(err, mail.ErrExpungeDeferred) {
		// The rows stay: the next sync tries again.
		b.res.Deferred += len(uids)
		log.Warn("deleted messages left flagged \\Deleted on the server: other messages there are flagged \\Deleted and the server has no UIDPLUS", "count", len(uids))
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("delete on the server: %w", err)
	}
	if err := r.deps.Index.DeleteMessages(ctx, b.mb.ID, b.mb.UIDValidity, uids); err != nil {
		return len(uids), err
	}
	b.res.Deleted += len(uids)
	return len(uids), nil
}
