package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Account syncs one account in three phases over one connection: learn
// what changed on both sides of every selected mailbox, plan all of them
// together (so a message moved between folders is a move), then apply
// each mailbox's plan. One mailbox failing does not stop the others; its
// error is in its MailboxResult.
func Account(ctx context.Context, opts Options, deps Deps) (res Result) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Connections < 1 {
		opts.Connections = 1
	}
	start := opts.Now()
	res = Result{Account: opts.Account}
	// A named result: the deferred function sets what is returned.
	defer func() { res.Duration = opts.Now().Sub(start) }()

	r := &runner{opts: opts, deps: deps, log: opts.Logger.With("account", opts.Account),
		slots: make(chan struct{}, opts.Connections), limit: opts.Connections}
	// With notmuch (Options.Tags): the rows this run writes are noted
	// for the tag sync that ends it (tags.go).
	tags := r.startTags()
	first := &session{r: r}
	defer first.close()
	defer r.closeIdle()
	defer r.closeWatcher()
	remote, err := first.remote(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	r.capConnections(remote)
	// The listing carries each mailbox's status where the server can:
	// a mailbox unchanged on both sides is then not selected at all.
	list, err := remote.ListStatus(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	r.noteThrottle(remote)
	// Asked after the listing: the answer to an ENABLE sent with it
	// decides (imapremote), at no round trip of its own.
	res.Mode = remote.Mode()
	if err := r.loadNaming(ctx, remote, listDelim(list)); err != nil {
		res.Err = err
		return res
	}
	if err := r.loadOwners(ctx); err != nil {
		res.Err = err
		return res
	}
	entries, err := r.selectMailboxes(list)
	if err != nil {
		res.Err = err
		return res
	}
	var settled, refused []*MailboxResult
	if r.opts.GmailLabels == nil {
		var view *folderView
		list, entries, settled, view, err = r.lifecycle(ctx, remote, list, entries)
		if err != nil {
			res.Err = fmt.Errorf("follow renamed and deleted mailboxes: %w", err)
			return res
		}
		var created []mailboxEntry
		created, refused = r.createLocalFolders(ctx, remote, list, entries, view)
		entries = append(entries, created...)
	}
	results, err := r.pass(ctx, first, entries)
	results = append(append(settled, refused...), results...)
	if again := r.again; err == nil && len(again) > 0 {
		// Mailboxes re-created on the server after their deletion was
		// applied: their remaining files are uploaded now.
		r.again = nil
		var more []*MailboxResult
		more, err = r.pass(ctx, first, again)
		results = append(results, more...)
	}
	// Mailboxes whose connection failed under them (a session the server
	// ended) are synced again, from what the index now records.
	for err == nil {
		retry := r.retries(ctx)
		if len(retry) == 0 {
			break
		}
		_, err = r.pass(ctx, first, retry)
	}
	if stop := r.stopped(); stop != nil {
		// Over quota: the account stops here, with what each mailbox
		// did until then (see serverlimits.go).
		res.Err = stop
		for _, mr := range results {
			res.Mailboxes = append(res.Mailboxes, *mr)
		}
		return res
	}
	if err != nil && ctx.Err() == nil {
		res.Err = err
		return res
	}
	res.Tags = tags.finish(ctx, first, results)
	r.settleConns(ctx, first)
	for _, mr := range results {
		res.Mailboxes = append(res.Mailboxes, *mr)
	}
	if ctx.Err() != nil {
		res.Err = ctx.Err()
	}
	return res
}

// loadOwners records which folder the index syncs with which mailbox.
func (r *runner) loadOwners(ctx context.Context) error {
	mbs, err := r.deps.Index.Mailboxes(ctx)
	if err != nil {
		return err
	}
	r.owners = map[string]string{}
	for _, mb := range mbs {
		r.owners[strings.ToLower(mb.LocalPath)] = mb.Name
	}
	return nil
}

// listDelim is the hierarchy delimiter the listing shows (0: none).
func listDelim(list []mail.RemoteMailbox) rune {
	for _, m := range list {
		if m.Delim != 0 {
			return m.Delim
		}
	}
	return 0
}

// unchanged reports whether a mailbox can be left alone: its listed
// status (with HIGHESTMODSEQ: without CONDSTORE, equal counts do not prove
// that no flag changed) equals what the index recorded when both sides
// last agreed, its folder is as it was then, and nothing is pending.
func (r *runner) unchanged(ctx context.Context, b *box) bool {
	st := b.Status
	if r.opts.DryRun || r.opts.Reindex || r.opts.Force || r.opts.FetchSkipped || st == nil || st.HighestModSeq == 0 {
		return false
	}
	mb, ok, err := r.deps.Index.Mailbox(ctx, b.Name)
	if err != nil || !ok || mb.UIDValidity == 0 || mb.UIDValidity != st.UIDValidity ||
		mb.HighestModSeq != st.HighestModSeq || mb.UIDNext != st.UIDNext || mb.Messages != st.Messages {
		return false
	}
	if ins, err := r.deps.Index.Intents(ctx, mb.ID); err != nil || len(ins) > 0 {
		return false
	}
	stamp, _, err := r.deps.Folder(b.rel).Stamp()
	if err != nil {
		return false
	}
	if mb.LocalStamp == "" {
		// Not known to agree (a delta sync changed the folder, or it
		// changed too recently to trust): compared now, locally; the
		// server has nothing new for it.
		if mb.LocalPath != b.rel {
			return false
		}
		b.compared = true
		if stamp = r.agreedStamp(ctx, &box{mailboxEntry: b.mailboxEntry, mb: mb, folder: r.deps.Folder(b.rel)}); stamp == "" {
			return false
		}
		mb.LocalStamp = stamp
	}
	if stamp != mb.LocalStamp {
		return false
	}
	b.res.Mode = mb.Mode
	b.res.Unchanged = true
	if err := r.deps.Index.SaveMailbox(ctx, withLastSync(mb, r.opts.Now())); err != nil {
		r.log.Warn("cannot record the sync time", "mailbox", b.Name, "err", err)
	}
	return true
}

func withLastSync(mb mail.Mailbox, t time.Time) mail.Mailbox {
	mb.LastSync = t
	return mb
}

// applyGroups splits the mailboxes into groups that can be applied
// independently: a move or an adoption writes to two mailboxes, which
// must then be applied by one goroutine.
func applyGroups(boxes []*box) [][]*box {
	parent := map[*box]*box{}
	var find func(b *box) *box
	find = func(b *box) *box {
		if p, ok := parent[b]; ok && p != b {
			root := find(p)
			parent[b] = root
			return root
		}
		parent[b] = b
		return b
	}
	union := func(a, b *box) {
		if a != nil && b != nil {
			parent[find(a)] = find(b)
		}
	}
	for _, b := range boxes {
		find(b)
		for _, m := range b.plan.MoveOut {
			union(b, m.To)
		}
		for _, a := range b.plan.Adopt {
			union(b, a.From)
			union(b, a.RowBox)
		}
	}
	index := map[*box]int{}
	var groups [][]*box
	for _, b := range boxes {
		root := find(b)
		i, ok := index[root]
		if !ok {
			i = len(groups)
			index[root] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], b)
	}
	return groups
}

// parallel runs work(i) for i in [0, n) on up to r.connections()
// sessions: the first one given, then those an earlier call left open,
// then new ones; it leaves its sessions open for the next call (closeIdle
// ends them). A session takes first an item prefer (if set) finds for the
// mailbox it has selected, so that it need not select another; else the
// next in order. Nothing more is taken once the run has stopped
// (r.stopped: over quota).
func (r *runner) parallel(ctx context.Context, first *session, n int, prefer func(i int, selected string) bool, work func(ctx context.Context, s *session, i int)) {
	workers := min(r.connections(), n)
	r.mu.Lock()
	idle := r.idle
	r.idle = nil
	r.mu.Unlock()
	if workers <= 1 {
		for _, s := range idle {
			s.close()
		}
		for i := range n {
			if ctx.Err() != nil || r.stopped() != nil {
				return
			}
			work(ctx, first, i)
			r.noteThrottle(first.conn)
		}
		return
	}
	var (
		mu    gosync.Mutex
		taken = make([]bool, n)
		next  int // the lowest item not taken yet, or one below it
	)
	// reserved: the item each session prefers for the mailbox it has
	// selected now, set aside before any session starts, so that another
	// session that runs first does not take it in order.
	reserved := map[*session]int{}
	preferred := func(s *session) (int, bool) {
		if prefer == nil || s.conn == nil {
			return 0, false
		}
		if sel := s.conn.Selected(); sel != "" {
			for i := next; i < n; i++ {
				if !taken[i] && prefer(i, sel) {
					return i, true
				}
			}
		}
		return 0, false
	}
	pick := func(s *session) (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil || r.stopped() != nil {
			return 0, false
		}
		if i, ok := reserved[s]; ok {
			delete(reserved, s)
			return i, true
		}
		if i, ok := preferred(s); ok {
			taken[i] = true
			return i, true
		}
		for ; next < n; next++ {
			if !taken[next] {
				taken[next] = true
				return next, true
			}
		}
		return 0, false
	}
	sessions := []*session{first}
	for w := 1; w < workers; w++ {
		s := &session{r: r, extra: true}
		if len(idle) > 0 {
			s, idle = idle[0], idle[1:]
		}
		sessions = append(sessions, s)
	}
	for _, s := range idle {
		// More than this call needs: their slots may serve a download
		// split over connections (downloadSplit).
		s.close()
	}
	for _, s := range sessions {
		if i, ok := preferred(s); ok {
			taken[i] = true
			reserved[s] = i
		}
	}
	// giveBack returns an item an extra session took and cannot do.
	giveBack := func(i int) {
		mu.Lock()
		defer mu.Unlock()
		taken[i] = false
		next = min(next, i)
	}
	var wg gosync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() {
			for {
				i, ok := pick(s)
				if !ok {
					return
				}
				if s != first {
					// An extra connection that the server refuses, or
					// that a throttled run no longer wants, gives its
					// item back and leaves its share to the others.
					if r.slow.Load() || r.stopped() != nil {
						giveBack(i)
						return
					}
					if _, err := s.remote(ctx); err != nil {
						giveBack(i)
						return
					}
				}
				work(ctx, s, i)
				r.noteThrottle(s.conn)
			}
		})
	}
	wg.Wait()
	// Items given back after the others were done: on the first session.
	for i := range n {
		if taken[i] {
			continue
		}
		if ctx.Err() != nil || r.stopped() != nil {
			break
		}
		taken[i] = true
		work(ctx, first, i)
		r.noteThrottle(first.conn)
	}
	r.mu.Lock()
	r.idle = append(r.idle, sessions[1:]...)
	r.mu.Unlock()
}

// settleConns calls Settle on the open connections at the end of a run, one
// for each mailbox selected: those of different mailboxes at once, and
// for a mailbox several connections have selected, the next only when
// the one before sent nothing. A failure only loses what it would save.
func (r *runner) settleConns(ctx context.Context, first *session) {
	r.mu.Lock()
	sessions := append([]*session{first}, r.idle...)
	r.mu.Unlock()
	byMailbox := map[string][]Remote{}
	for _, s := range sessions {
		if s.conn != nil && s.conn.Selected() != "" {
			byMailbox[s.conn.Selected()] = append(byMailbox[s.conn.Selected()], s.conn)
		}
	}
	var wg gosync.WaitGroup
	for name, conns := range byMailbox {
		wg.Go(func() {
			for _, c := range conns {
				sent, err := c.Settle(ctx)
				if err != nil {
					r.log.Debug("settle", "mailbox", name, "err", err)
				}
				if sent {
					return
				}
			}
		})
	}
	wg.Wait()
}

// closeIdle closes the sessions parallel left open.
func (r *runner) closeIdle() {
	r.mu.Lock()
	idle := r.idle
	r.idle = nil
	r.mu.Unlock()
	for _, s := range idle {
		s.close()
	}
}

// session is one connection, used by one goroutine at a time.
type session struct {
	r    *runner
	conn Remote
	// extra: the connection is one of those parallel opens beside the
	// first; it is tried once, and given up when the server refuses it.
	extra bool
}

func (s *session) remote(ctx context.Context) (Remote, error) {
	if s.conn != nil {
		return s.conn, nil
	}
	select {
	case s.r.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var c Remote
	var err error
	if s.extra {
		c, err = s.r.deps.Connect(ctx)
	} else {
		c, err = s.r.connect(ctx)
	}
	if err != nil {
		if !(s.extra && errors.Is(err, mail.ErrTooManyConnections) && s.r.retire()) {
			s.r.releaseSlot()
		}
		return nil, err
	}
	s.conn = c
	return c, nil
}

func (s *session) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
		s.r.releaseSlot()
	}
}

// fail records a mailbox's error. Unless the error leaves the connection
// in a known state, the next mailbox starts on a fresh one.
func (s *session) fail(b *box, err error) {
	b.res.Err = err
	if s.r.halt(err) {
		// The account stops: Result.Err says so, once.
		s.r.log.Debug("mailbox stopped: over quota", "mailbox", b.Name, "err", err)
	} else {
		s.r.log.Error("mailbox failed", "mailbox", b.Name, "err", err)
	}
	if !errors.Is(err, ErrUIDValidityChanged) {
		s.close()
	}
}

// finish records the mailbox's server state as of the learn phase (or
// past this run's own writes, where advanceOwnWrites proved that nothing
// else changed), now that everything it covers is committed (RFC 7162
// §3.1: a later CHANGEDSINCE from an older value would otherwise miss
// what failed), and the folder's stamp if nothing touched the folder
// since it was listed.
func (r *runner) finish(ctx context.Context, b *box) error {
	queued := false
	defer func() {
		if b.watch != nil && !queued {
			b.watch.Close()
		}
	}()
	mb := b.mb
	mb.UIDNext = b.st.UIDNext
	mb.HighestModSeq = b.st.HighestModSeq
	mb.Messages = b.st.Messages
	mb.Mode = b.mode
	mb.LastSync = r.opts.Now()
	mb.LocalStamp = ""
	// What a guard held back leaves the folder and the index apart on
	// purpose: no stamp may say they agree, or a later run (a delta, or
	// one that skips the mailbox) would not plan it again.
	held := b.res.Safety != nil || b.res.Held > 0 || b.res.Deferred > 0
	if b.delta && !held {
		// The folder agreed with the index when it was learned. If
		// nothing touched it since, it still does; else the next run
		// checks the agreement (unchanged), here not worth a listing
		// of the whole folder and every row: this sync's cost follows
		// its changes.
		if now, _, err := b.folder.Stamp(); err == nil && now == b.stamp {
			mb.LocalStamp = now
		} else if b.watch != nil {
			// What changed in the folder since is known by name: the
			// stamp is kept if those messages are as the index records
			// them (watchedStamp, once the whole pass is applied).
			r.queueStamp(b, mb)
			queued = true
			return nil
		}
		return r.deps.Index.SaveMailbox(ctx, mb)
	}
	if b.plan.Empty() && len(b.plan.Rows)+len(b.plan.Forget) == 0 && b.stamp != "" && !held {
		if now, _, err := b.folder.Stamp(); err == nil && now == b.stamp {
			mb.LocalStamp = now
		}
	}
	if mb.LocalStamp == "" && !held && r.opts.pulls() {
		// The folder changed (by this run, at least) or changed too
		// recently to trust its stamp: the stamp is kept if the folder
		// now is what the index says, so that the next run need not list
		// it again (stampAll, once the whole pass is applied). What a
		// guard held back must be planned (and reported) again.
		r.queueStamp(b, mb)
		queued = true
		return nil
	}
	return r.deps.Index.SaveMailbox(ctx, mb)
}

// queueStamp leaves the recording of b's state, mb, to stampAll.
func (r *runner) queueStamp(b *box, mb mail.Mailbox) {
	r.mu.Lock()
	r.toStamp = append(r.toStamp, stampLater{b, mb})
	r.mu.Unlock()
}

// stampLater is a mailbox whose state finish left for stampAll to record.
type stampLater struct {
	b  *box
	mb mail.Mailbox
}

// stampAll records the state of the mailboxes finish left to it, each
// with its folder's stamp where the folder agrees with the index (see
// agreedStamp), in one transaction. The wait for the folders' last
// changes to be old enough to trust (stampWait) is paid once for all,
// and never longer than settleWait.
func (r *runner) stampAll(ctx context.Context) {
	r.mu.Lock()
	later := r.toStamp
	r.toStamp = nil
	r.mu.Unlock()
	if len(later) == 0 {
		return
	}
	var latests []time.Time
	for _, l := range later {
		if _, latest, err := l.b.folder.Stamp(); err == nil && !latest.IsZero() {
			latests = append(latests, latest)
		}
	}
	settleStamps(ctx, latests, settleWait)
	mbs := make([]mail.Mailbox, len(later))
	for i, l := range later {
		mbs[i] = l.mb
		if l.b.delta {
			mbs[i].LocalStamp = r.watchedStamp(ctx, l.b)
		} else {
			mbs[i].LocalStamp = r.agreedStamp(ctx, l.b)
		}
		if l.b.watch != nil {
			l.b.watch.Close()
		}
	}
	if err := r.deps.Index.SaveMailboxes(ctx, mbs); err != nil {
		for _, l := range later {
			l.b.res.Err = fmt.Errorf("record the state of %q: %w", l.b.Name, err)
		}
	}
}

// settleWait is the longest agreedStamp waits for a folder's last change
// to be old enough to trust its stamp.
const settleWait = 100 * time.Millisecond

// stampWait is how long to wait, after a folder's last change at latest,
// before its stamp can be trusted (0: it can be now): until then a later
// change could leave the directories' modification times as they are (the
// same clock tick). File systems with sub-second timestamps (ext4, XFS,
// Btrfs, tmpfs) take them from the kernel's coarse clock, which moves a
// tick (1 to 10 ms) at a time: once that clock is past latest (and a
// millisecond more, for file systems that keep microseconds), every later
// change is stamped later. Where that clock cannot be read, 50 ms. File
// systems with whole-second times (FAT at two) need 2 s.
func stampWait(latest time.Time) time.Duration {
	if latest.Nanosecond() == 0 {
		return max(0, 2*time.Second-time.Since(latest))
	}
	if now, tick, ok := coarseNow(); ok {
		past := latest.Add(time.Millisecond)
		if now.After(past) {
			return 0
		}
		// The coarse clock lags the real one by up to a tick.
		return past.Sub(now) + tick + time.Millisecond
	}
	return max(0, 50*time.Millisecond-time.Since(latest))
}

// settleStamps waits until the stamps of folders last changed at latests
// can all be trusted (stampWait), and reports whether they can; it waits
// no longer than limit, and not at all when that would not be enough.
// stampWait's estimate is asked again after each wait: the coarse clock
// can fall behind by more than its tick on a loaded machine.
func settleStamps(ctx context.Context, latests []time.Time, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		var wait time.Duration
		for _, l := range latests {
			wait = max(wait, stampWait(l))
		}
		if wait == 0 {
			return true
		}
		if time.Now().Add(wait).After(deadline) {
			return false
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
	}
}

// errDisagree stops a comparison at the first difference.
var errDisagree = errors.New("the folder and the index disagree")

// agreedStamp returns the folder's stamp if it is old enough to trust
// (stampWait), the folder holds exactly the files the index records for
// it, with the flags it records for synced messages, and nothing changed
// while it was compared; "" otherwise.
func (r *runner) agreedStamp(ctx context.Context, b *box) string {
	before, latest, err := b.folder.Stamp()
	if err != nil || before == "" || stampWait(latest) > 0 {
		return ""
	}
	if !r.folderAgrees(ctx, b) {
		return ""
	}
	if after, _, err := b.folder.Stamp(); err != nil || after != before {
		return ""
	}
	return before
}

// folderAgrees reports whether b's folder holds exactly the files the
// index records for it, with the flags it records for synced messages:
// by digest for a large folder where that can decide (agreeLean), else
// by a map of the folder's files. A row a safety check held back never
// agrees: the folder and the index are apart on purpose, and a stamp
// would let a later run skip the mailbox or learn it as a delta, and
// neither report nor (forced) carry out what was held.
func (r *runner) folderAgrees(ctx context.Context, b *box) bool {
	if _, n, err := r.deps.Index.CountRows(ctx, b.mb.ID, b.mb.UIDValidity); err == nil && n >= leanAgreeMin {
		if agree, decided := r.agreeLean(ctx, b); decided {
			return agree
		}
	}
	files, err := b.folder.ScanShared(nil)
	if err != nil {
		return false
	}
	check := func(m mail.Message) error {
		f, ok := files[m.Key]
		if err := keyAgrees(m, true, f, ok); err != nil {
			return err
		}
		delete(files, m.Key)
		return nil
	}
	for _, uidv := range []mail.UIDValidity{b.mb.UIDValidity, limbo} {
		if err := r.deps.Index.EachMessage(ctx, b.mb.ID, uidv, check); err != nil {
			return false
		}
	}
	return len(files) == 0
}

type runner struct {
	opts Options
	deps Deps
	log  *slog.Logger
	// again holds the mailboxes re-created on the server while a pass
	// was applied, to be synced by another pass; toStamp those whose
	// state stampAll records. mu guards them and idle.
	mu      gosync.Mutex
	again   []mailboxEntry
	toStamp []stampLater
	// idle holds the sessions parallel left open (guarded by mu): the
	// apply phase goes on with the connections learning opened, each
	// where it may still have a mailbox selected.
	idle []*session
	// owners maps each folder (lower-cased) to the mailbox the index
	// syncs with it, for selectMailboxes.
	owners map[string]string
	// names translates mailbox names and folder levels (nil before the
	// account's namespaces are known: names are then taken as they are).
	names *naming
	// slots holds one token per open connection: never more than
	// opts.Connections at once (servers limit them per user: Dovecot
	// to 10 by default). Slots given up for the server's limits keep
	// their tokens for good; limit is how many are left (under mu).
	slots chan struct{}
	limit int
	// slow: a server asked the run to slow down (serverlimits.go).
	slow atomic.Bool
	// stop is what stopped the account (over quota); retry holds the
	// mailboxes to sync again after a transient failure, attempts how
	// often each was. Under mu.
	stop     error
	retry    []mailboxEntry
	attempts map[*MailboxResult]retryState
	// gmail is where the run's Gmail messages are on disk (gmail.go);
	// nil until a download from Gmail needs it. Set under mu.
	gmail *gmailFiles
	// gmailRoles maps the mailboxes of Gmail's label mode to their role
	// (gmailAll, gmailTrash, gmailSpam); set by selectMailboxes.
	gmailRoles map[string]string
	// gmailSeen is the HIGHESTMODSEQ the listing gave those mailboxes.
	gmailSeen map[string]mail.ModSeq
	// watcher follows the folders of delta syncs (watchstamp.go); set
	// by the first watchFolder that needs it, under mu.
	watcher    Watcher
	watchTried bool
}

// takeSlots takes up to n connection slots without waiting and returns
// how many it got.
func (r *runner) takeSlots(n int) int {
	got := 0
	for got < n {
		select {
		case r.slots <- struct{}{}:
			got++
		default:
			return got
		}
	}
	return got
}

func (r *runner) releaseSlot() { <-r.slots }

// mailboxEntry is a listed mailbox with its local folder, or the reason
// it cannot have one.
type mailboxEntry struct {
	mail.RemoteMailbox
	rel string
	err error
	// created: the mailbox was created on the server in this run, for a
	// local folder, or again after its deletion there (recreated: its
	// first sync may upload any number of files).
	created, recreated bool
	// vanished: deleted on the server, synced as a server that expunged
	// everything; folderGone: its folder was deleted locally. Both with
	// sync.remove_folders; see lifecycle.go.
	vanished, folderGone bool
	// event is what lifecycle found of the mailbox as a whole; res the
	// result an earlier pass of this run started.
	event *FolderEvent
	res   *MailboxResult
}

// selectMailboxes filters the listing by the include, exclude and only
// rules and maps each mailbox to its local folder. Two mailboxes that
// would share a folder fail one of them, naming both: the folder stays
// with INBOX, else with the mailbox the index syncs with it (r.owners),
// else with the first by name. Mailboxes of other users' and shared
// namespaces are selected only where an include pattern names them.
func (r *runner) selectMailboxes(list []mail.RemoteMailbox) ([]mailboxEntry, error) {
	if r.opts.GmailLabels != nil {
		var err error
		if list, err = r.gmailMailboxes(list); err != nil {
			return nil, err
		}
	}
	patterns, excluded := r.opts.Include, r.opts.Exclude
	if r.opts.GmailLabels != nil {
		// The three mailboxes are the account: patterns do not apply.
		patterns, excluded = []string{"*"}, nil
	}
	include, err := compileGlobs(patterns)
	if err != nil {
		return nil, err
	}
	exclude, err := compileGlobs(excluded)
	if err != nil {
		return nil, err
	}
	var out []mailboxEntry
	for _, m := range list {
		if !matchAny(include, m) || matchAny(exclude, m) {
			continue
		}
		if r.names.isForeign(m.Name) && !named(include, m) {
			continue
		}
		if len(r.opts.Only) > 0 && !slices.ContainsFunc(r.opts.Only, func(n string) bool { return sameMailbox(n, m.Name) }) {
			continue
		}
		if slices.ContainsFunc(out, func(e mailboxEntry) bool { return e.Name == m.Name }) {
			continue // listed twice: one mailbox
		}
		rel, err := r.folderOf(m)
		if err != nil {
			// That mailbox fails, not the account. The name is cut: it
			// may be thousands of bytes long.
			out = append(out, mailboxEntry{RemoteMailbox: m, err: fmt.Errorf("mailbox %.80q (%d bytes): %w", m.Name, len(m.Name), err)})
			continue
		}
		out = append(out, mailboxEntry{RemoteMailbox: m, rel: rel})
	}
	for _, n := range r.opts.Only {
		if !slices.ContainsFunc(out, func(e mailboxEntry) bool { return sameMailbox(n, e.Name) }) {
			return nil, fmt.Errorf("mailbox %q: not on the server (or excluded by the configuration)", n)
		}
	}
	slices.SortFunc(out, func(a, b mailboxEntry) int { return strings.Compare(a.Name, b.Name) })
	// Who keeps a folder two mailboxes map to. Compared
	// case-insensitively: the Maildir may live on a case-insensitive file
	// system.
	rank := func(e mailboxEntry) int {
		switch {
		case e.Name == "INBOX":
			return 0
		case r.owners[strings.ToLower(e.rel)] == e.Name:
			return 1
		}
		return 2
	}
	order := make([]int, 0, len(out))
	for i := range out {
		if out[i].err == nil {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return rank(out[a]) - rank(out[b]) })
	byLocal := map[string]string{}
	for _, i := range order {
		e := &out[i]
		other, ok := byLocal[strings.ToLower(e.rel)]
		if !ok {
			byLocal[strings.ToLower(e.rel)] = e.Name
			continue
		}
		e.err = fmt.Errorf("%w: %q and %q (%s); this one is not synced: exclude one of them, or give one another name in mailboxes.map", ErrNameCollision, other, e.Name, e.rel)
	}
	return out, nil
}

// folderOf is the folder a listed mailbox syncs with: its levels (INBOX
// as one, the personal namespace's prefix left out: see namespace.go), or the local name mailboxes.map gives it, placed by
// Deps.LocalPath.
func (r *runner) folderOf(m mail.RemoteMailbox) (string, error) {
	levels := r.names.levels(m)
	if local, ok := r.opts.mapped(m); ok {
		levels = strings.Split(local, "/")
	}
	return r.deps.LocalPath(levels)
}

func sameMailbox(a, b string) bool { return canonMailbox(a) == canonMailbox(b) }

// canonMailbox is a mailbox name as a key: INBOX in any case is INBOX
// (RFC 9051 §5.1).
func canonMailbox(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

type glob struct {
	re *regexp.Regexp
	// delimiter-dependent patterns compile per delimiter
	pattern string
}

func compileGlobs(pats []string) ([]glob, error) {
	var out []glob
	for _, p := range pats {
		if _, err := globRegexp(p, '/'); err != nil {
			return nil, fmt.Errorf("mailbox pattern %q: %w", p, err)
		}
		out = append(out, glob{pattern: p})
	}
	return out, nil
}

// globRegexp turns a mailbox pattern into a regular expression: "*" is any
// run of characters, "%" any run within one hierarchy level (as in LIST,
// RFC 9051 §6.3.9), "?" one character; everything else is literal.
func globRegexp(p string, delim rune) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for _, c := range p {
		switch c {
		case '*':
			b.WriteString(".*")
		case '%':
			if delim == 0 {
				b.WriteString(".*")
			} else {
				b.WriteString("[^" + regexp.QuoteMeta(string(delim)) + "]*")
			}
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// mapped returns the local name Options.Map gives a mailbox: by its name,
// else by one of its special-use attributes (RFC 6154 §2).
func (o Options) mapped(m mail.RemoteMailbox) (string, bool) {
	if local, ok := o.Map[m.Name]; ok {
		return local, true
	}
	for _, a := range m.Attrs {
		for key, local := range o.Map {
			if isSpecialUse(key) && strings.EqualFold(key, a) {
				return local, true
			}
		}
	}
	return "", false
}

// isSpecialUse reports whether s names a special-use attribute of RFC
// 6154 §2, in any case.
func isSpecialUse(s string) bool {
	for _, a := range []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`} {
		if strings.EqualFold(s, a) {
			return true
		}
	}
	return false
}

// matchAny reports whether a pattern matches the mailbox. A pattern that
// is a special-use attribute (RFC 6154 §2, such as `\All`) matches the
// mailbox that has it, whatever its name.
func matchAny(gs []glob, m mail.RemoteMailbox) bool {
	for _, g := range gs {
		if isSpecialUse(g.pattern) {
			if m.HasAttr(g.pattern) {
				return true
			}
			continue
		}
		re, err := globRegexp(g.pattern, m.Delim)
		if err != nil {
			continue
		}
		if re.MatchString(m.Name) || m.Name == "INBOX" && strings.EqualFold(g.pattern, "INBOX") {
			return true
		}
	}
	return false
}

// pass learns, plans and applies the given mailboxes and returns the
// results of those that had none yet. An error stops the account.
func (r *runner) pass(ctx context.Context, first *session, entries []mailboxEntry) ([]*MailboxResult, error) {
	opts := r.opts
	// Learn, over up to opts.Connections connections.
	var todo []*box
	results := make([]*MailboxResult, 0, len(entries))
	for _, e := range entries {
		mr := e.res
		if mr == nil {
			mr = &MailboxResult{Name: e.Name, Local: e.rel, Created: e.created, Folder: e.event}
			results = append(results, mr)
		}
		mr.Created = mr.Created || e.created
		if e.err != nil {
			mr.Err = e.err
			continue
		}
		if e.NoSelect {
			if !opts.DryRun && opts.pulls() {
				if err := r.deps.MkdirAll(e.rel); err != nil {
					mr.Err = err
				}
			}
			if mr.Err == nil && e.res == nil {
				results = results[:len(results)-1]
			}
			continue
		}
		b := &box{mailboxEntry: e, res: mr}
		if r.unchanged(ctx, b) {
			continue
		}
		todo = append(todo, b)
	}
	var mu gosync.Mutex
	var boxes, failed []*box
	r.parallel(ctx, first, len(todo), nil, func(ctx context.Context, s *session, i int) {
		b := todo[i]
		var err error
		if b.vanished {
			err = r.learnVanished(ctx, b)
		} else {
			var remote Remote
			remote, err = s.remote(ctx)
			if err == nil {
				err = r.learn(ctx, remote, b)
			}
		}
		b.res.Mode = b.mode
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			s.fail(b, err)
			r.retryLater(b, err)
			if r.learnLocal(ctx, b) == nil {
				failed = append(failed, b)
			}
			return
		}
		boxes = append(boxes, b)
	})
	if ctx.Err() != nil {
		return results, ctx.Err()
	}
	if r.stopped() != nil {
		// Over quota: nothing learned is applied; the next run learns
		// it again.
		return results, nil
	}
	byName := func(l []*box) {
		slices.SortFunc(l, func(a, b *box) int { return strings.Compare(a.Name, b.Name) })
	}
	byName(boxes)
	byName(failed)

	// Plan.
	pl := &planner{opts: opts, log: r.log, info: map[*box]map[string]mail.LocalInfo{}}
	if err := pl.planAll(boxes, failed); err != nil {
		return results, err
	}
	boxes = guardPlans(boxes, opts, r.log)

	// Apply: mailboxes a move or an adoption ties together go to one
	// connection, one after the other; the groups run in parallel.
	for _, b := range boxes {
		b.res.Plan = b.plan
	}
	if !opts.DryRun {
		groups := applyGroups(boxes)
		// A group whose first mailbox a session still has selected from
		// learning goes to that session: no SELECT again.
		prefer := func(i int, selected string) bool { return groups[i][0].Name == selected }
		r.parallel(ctx, first, len(groups), prefer, func(ctx context.Context, s *session, i int) {
			// A mailbox's server state is recorded only once every
			// mailbox of its group is applied: an adoption in another
			// mailbox settles the fate of one of its rows, and a state
			// recorded before that could hide an expunge from the next
			// run (QRESYNC reports only what came after it).
			var applied []*box
			failed := false
			for _, b := range groups[i] {
				if ctx.Err() != nil || r.stopped() != nil {
					return
				}
				var err error
				if b.vanished {
					// Deleted on the server: only the local side changes.
					err = r.applyLocal(ctx, b)
				} else {
					var remote Remote
					remote, err = s.remote(ctx)
					if err == nil {
						err = r.apply(ctx, remote, b)
					}
				}
				if err != nil {
					s.fail(b, err)
					if len(groups[i]) == 1 {
						// Alone in its group: synced again by itself,
						// it is what the next run would do.
						r.retryLater(b, err)
					}
					failed = true
					continue
				}
				applied = append(applied, b)
			}
			if failed && len(groups[i]) > 1 {
				// The next run learns the group again from the old state.
				return
			}
			for _, b := range applied {
				if err := r.settle(ctx, s, b); err != nil {
					s.fail(b, err)
				}
			}
		})
		r.stampAll(ctx)
	}
	return results, nil
}

// settle ends an applied mailbox: records its state (finish), or, for a
// mailbox deleted on one side, decides about the mailbox as a whole.
func (r *runner) settle(ctx context.Context, s *session, b *box) error {
	if !b.vanished && !b.folderGone {
		return r.finish(ctx, b)
	}
	remote, err := s.remote(ctx)
	if err != nil {
		return err
	}
	if b.vanished {
		again, err := r.settleVanished(ctx, remote, b)
		if again != nil {
			r.mu.Lock()
			r.again = append(r.again, *again)
			r.mu.Unlock()
		}
		return err
	}
	keep, err := r.settleFolderGone(ctx, remote, b)
	if err != nil || !keep {
		return err
	}
	return r.finish(ctx, b)
}
