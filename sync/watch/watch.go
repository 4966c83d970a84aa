// Package watch keeps one account in sync as changes happen: it waits in
// IDLE (RFC 2177) on the watched mailboxes, one connection each, watches
// the Maildir folders for a mail reader's changes (inotify, through
// fsnotify), syncs everything at an interval and after a resume from
// suspend, and runs one sync at a time, once the changes have been quiet
// for a moment.
//
// Like the engine it works through what it is given: Deps.Dial opens a
// watching connection (the Conn interface below), Deps.Sync runs one sync
// of the account. cmd/satchel wires the IMAP adapter, the engine, hooks
// and output in. It must not import go-imap, the IMAP adapter, the index
// or the Maildir package, and it prints nothing: problems and cycles go
// to Deps.Report and Deps.Cycled.
package watch

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	gosync "sync"
	"time"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// Change is what a watching connection saw happen to its mailbox, as a
// set of bits; 0 when nothing.
type Change uint8

const (
	// ChangeExists: the message count changed (EXISTS, RFC 9051 §7.4.1).
	ChangeExists Change = 1 << iota
	// ChangeFlags: a message's flags changed (an unsolicited FETCH, RFC
	// 9051 §7.5.2).
	ChangeFlags
	// ChangeExpunge: messages went (EXPUNGE, RFC 9051 §7.5.1, or
	// VANISHED, RFC 7162 §3.2.10), perhaps moved to another mailbox.
	ChangeExpunge
)

// Conn is one watching connection, used by one goroutine. A method whose
// ctx ends closes the connection; after an error it is closed and
// another dialled.
type Conn interface {
	// Examine opens a mailbox read-only (RFC 9051 §6.3.3): watching
	// must not change \Recent or anything else.
	Examine(ctx context.Context, name string) (mail.MailboxStatus, error)
	// CanIdle reports whether the server has IDLE; without it
	// WaitChange polls.
	CanIdle() bool
	// WaitChange waits, at most maxIdle, for the server to report a
	// change to the examined mailbox, and returns what it reported (0
	// for nothing). When ctx ends it ends the wait (DONE) first.
	WaitChange(ctx context.Context, mailbox string, maxIdle time.Duration) (Change, error)
	// Close logs out.
	Close() error
}

// Timing holds the timings of a watch.
type Timing struct {
	// Debounce is the quiet time after a change before its sync starts,
	// so that a burst of changes (mutt saving a folder) is one sync;
	// MaxDelay bounds the wait in a burst that does not end.
	Debounce, MaxDelay time.Duration
	// MaxIdle is how long one IDLE lasts before it is re-issued, which
	// is also how soon a connection that died silently is found.
	MaxIdle time.Duration
	// Poll is the NOOP interval for a server without IDLE.
	Poll time.Duration
	// BackoffMin and BackoffMax bound the wait before a lost connection
	// is opened again, or a failed sync tried again.
	BackoffMin, BackoffMax time.Duration
}

// DefaultTiming is what satchel watch uses.
var DefaultTiming = Timing{
	Debounce:   2 * time.Second,
	MaxDelay:   30 * time.Second,
	MaxIdle:    10 * time.Minute,
	Poll:       2 * time.Minute,
	BackoffMin: time.Second,
	BackoffMax: 5 * time.Minute,
}

// Options are the choices of one account's watch.
type Options struct {
	Account string
	// Mailboxes are watched in IDLE, one connection each (no
	// duplicates).
	Mailboxes []string
	// Interval is how often everything is synced, changes or not.
	Interval time.Duration
	Timing   Timing
	Logger   *slog.Logger
}

// Deps are what a watch acts through. Sync, Dial, FolderDir, Fatal and
// Report are required.
type Deps struct {
	// Dial opens a watching connection to the account's server.
	Dial func(ctx context.Context) (Conn, error)
	// Sync syncs the mailboxes named, or every mailbox for nil; an error
	// means the account was not synced. One runs at a time.
	Sync func(ctx context.Context, only []string) (satsync.Result, error)
	// Before, when set, runs before each sync (hooks.pre); an error
	// fails the cycle and the sync does not run. After, when set, runs
	// after each sync that ran, with its outcome (hooks.post); its error
	// is reported (ProblemAfter) but fails nothing.
	Before func(ctx context.Context) error
	After  func(ctx context.Context, res satsync.Result, err error) error
	// FolderDir is the directory of a mailbox's folder (a path relative
	// to the Maildir root, as results give it), whose new/ and cur/ are
	// watched.
	FolderDir func(rel string) string
	// Resume fires after a resume from suspend: the watching connections
	// are replaced and everything is synced. nil: never.
	Resume *Broadcast
	// Fatal reports whether a failed sync needs the user (the
	// configuration, the password, the Maildir): the watch stops with
	// it. Anything else is tried again after a backoff.
	Fatal func(error) bool
	// Routine reports whether a watching connection's error is routine
	// (the server unreachable, the login refused: the syncs report
	// those), only logged; others are reported (ProblemWatch). nil: only
	// mail.ErrTransient is routine.
	Routine func(error) bool
	// Report is told of each problem when it starts, and again only once
	// it went away and came back: servers put timings in their error
	// texts, and a watch meets the same problem at every attempt. It is
	// called from several goroutines, one call at a time.
	Report func(Problem)
	// Started, when set, is called as each cycle starts; Cycled after it
	// ends, with what it did. Both on the watch's own goroutine.
	Started func()
	Cycled  func(Cycle)
}

// ProblemKind says what a problem is about.
type ProblemKind int

const (
	// ProblemAccount: a sync failed as a whole (Err).
	ProblemAccount ProblemKind = iota
	// ProblemMailbox: a mailbox failed in a sync.
	ProblemMailbox
	// ProblemHeld: a safety check held Mailbox back (Err is the reason).
	ProblemHeld
	// ProblemWatch: a watching connection cannot watch Mailbox.
	ProblemWatch
	// ProblemUnsynced: Mailbox is watched but not among the synced ones
	// (left out by the account's include or exclude rules).
	ProblemUnsynced
	// ProblemAfter: Deps.After failed.
	ProblemAfter
	// ProblemTags: the notmuch tag sync failed (Err) in a sync whose
	// mail was synced; the next sync tries it again.
	ProblemTags
)

// Problem is something that went wrong, for the user to hear once.
type Problem struct {
	Kind    ProblemKind
	Mailbox string // "" for the account
	Err     error
}

// Cycle is one sync of a watch.
type Cycle struct {
	// Only names the mailboxes synced; nil: every one.
	Only   []string
	Result satsync.Result
	// Err is the account's error (Before's, Sync's or Result.Err).
	Err error
	// Interrupted: the watch was stopped during the cycle; its outcome
	// says nothing.
	Interrupted bool
}

// Result is how a watch ended.
type Result struct {
	Account string
	// Err is the failed sync that stopped the watch (Deps.Fatal said
	// so), already reported; nil when ctx ended it.
	Err error
}

// Account watches one account until ctx ends, or a sync fails in a way
// only the user can fix.
func Account(ctx context.Context, opts Options, deps Deps) Result {
	w := &watcher{
		opts: opts, deps: deps,
		log:      opts.Logger.With("account", opts.Account),
		kick:     make(chan struct{}, 1),
		reported: map[problemKey]bool{},
	}
	if w.deps.Resume == nil {
		w.deps.Resume = NewBroadcast()
	}
	return Result{Account: opts.Account, Err: w.run(ctx)}
}

// watcher watches one account. Its sources (a goroutine per watched
// mailbox waiting in IDLE, one for the Maildir's inotify events, the
// interval and resume timers) only note what changed; the run loop alone
// syncs, one cycle at a time, once the changes have been quiet for the
// debounce time.
//
// A cycle's own writes are changes too: the files it delivers wake the
// Maildir watch, what it stores on the server wakes the IDLE
// connections. So a cycle that changed something is followed by one that
// finds nothing left to do, which changes nothing and wakes nobody.
// Telling its own changes from a mail reader's made at the same moment
// would risk missing the reader's.
type watcher struct {
	opts Options
	deps Deps
	log  *slog.Logger

	kick  chan struct{} // holds a value when something was noted
	local *localWatch   // nil without inotify; set by run before any cycle

	mu        gosync.Mutex
	full      bool     // the next cycle syncs every mailbox
	only      []string // else these
	reachable bool     // a watching connection opened since the last look
	// synced holds the mailboxes the last full sync covered; nil before
	// one succeeded.
	synced map[string]bool
	// reported holds the problems reported and not gone since.
	reported map[problemKey]bool
}

type problemKey struct {
	kind    ProblemKind
	mailbox string
}

// note asks for a sync of mailbox soon, or of every mailbox for "".
// Safe from any goroutine; it never blocks.
func (w *watcher) note(mailbox string) {
	w.mu.Lock()
	switch {
	case mailbox == "":
		w.full, w.only = true, nil
	case !w.full && !slices.Contains(w.only, mailbox):
		w.only = append(w.only, mailbox)
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// take returns and forgets what was noted.
func (w *watcher) take() (only []string, full bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	only, full = w.only, w.full
	w.only, w.full = nil, false
	return only, full
}

// takeReachable reports and forgets whether a watching connection opened.
func (w *watcher) takeReachable() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.reachable
	w.reachable = false
	return r
}

// noteOpened notes that a watching connection opened mailbox. The first
// time, the first sync may have read mailbox before; later, whatever
// happened while nobody watched, anywhere (a move out of mailbox
// included), is synced now.
func (w *watcher) noteOpened(mailbox string, first bool) {
	w.mu.Lock()
	w.reachable = true
	w.mu.Unlock()
	if first {
		w.noteServer(mailbox, ChangeExists)
	} else {
		w.note("")
	}
}

// noteServer notes what a watching connection reported about mailbox.
func (w *watcher) noteServer(mailbox string, got Change) {
	w.mu.Lock()
	ignored := w.synced != nil && !w.synced[mailbox]
	w.mu.Unlock()
	switch {
	case got == 0:
	case ignored:
		// A sync of it alone would fail, and one of everything would
		// not include it.
		w.reportOnce(ProblemUnsynced, mailbox, errors.New("not among the synced mailboxes"))
	case got&ChangeExpunge != 0:
		// An expunge may be a move to another mailbox: a sync of
		// both follows it without downloading it again.
		w.note("")
	default:
		w.note(mailbox)
	}
}

// setSynced records the mailboxes a full sync covered.
func (w *watcher) setSynced(res satsync.Result) {
	synced := map[string]bool{}
	for _, m := range res.Mailboxes {
		synced[m.Name] = true
	}
	w.mu.Lock()
	w.synced = synced
	w.mu.Unlock()
}

// run watches until ctx ends (nil) or a sync fails in a way only the
// user can fix (the error, already reported).
func (w *watcher) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg gosync.WaitGroup
	local, err := newLocalWatch(w.log, w.note)
	if err != nil {
		w.log.Warn("cannot watch the Maildir for changes; local changes wait for the next full sync", "err", err)
	} else {
		w.local = local
		wg.Go(func() { local.run(ctx) })
	}
	// The connections send DONE and LOGOUT before run returns.
	defer func() {
		cancel()
		wg.Wait()
		if local != nil {
			local.close()
		}
	}()
	for _, box := range w.opts.Mailboxes {
		wg.Go(func() { w.watchMailbox(ctx, box) })
	}

	t := w.opts.Timing
	w.note("") // the first sync: everything
	var (
		debounce  = time.NewTimer(0)
		armed     bool      // debounce runs
		first     time.Time // the first change since the last cycle
		notBefore time.Time // after a failed cycle: no cycle before this
		retry     = backoff{min: t.BackoffMin, max: t.BackoffMax}
		fullTimer = time.NewTimer(w.opts.Interval)
		resumed   = w.deps.Resume.Wait()
	)
	debounce.Stop()
	defer debounce.Stop()
	defer fullTimer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kick:
			now := time.Now()
			if !armed {
				armed, first = true, now
			}
			if w.takeReachable() {
				notBefore = time.Time{}
				retry.reset()
			}
			target := now.Add(t.Debounce)
			if limit := first.Add(t.MaxDelay); target.After(limit) {
				target = limit
			}
			if target.Before(notBefore) {
				target = notBefore
			}
			debounce.Reset(time.Until(target))
		case <-fullTimer.C:
			w.note("")
		case <-resumed:
			resumed = w.deps.Resume.Wait()
			// The watching connections reconnect; what happened during
			// the sleep is found by syncing everything.
			w.log.Info("resumed from suspend: syncing everything")
			w.note("")
		case <-debounce.C:
			armed = false
			full, err := w.cycle(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if full {
				fullTimer.Reset(w.opts.Interval)
			}
			switch {
			case err == nil:
				notBefore = time.Time{}
				retry.reset()
			case w.deps.Fatal(err):
				return err
			default:
				// Tried again, all of it: a mailbox named in the
				// failed cycle may be the reason.
				notBefore = time.Now().Add(retry.next())
				w.note("")
			}
		}
	}
}

// cycle runs one sync of what was noted and reports it; full says it
// covered every mailbox. The error is the account's, not a mailbox's.
func (w *watcher) cycle(ctx context.Context) (bool, error) {
	only, full := w.take()
	if w.deps.Started != nil {
		w.deps.Started()
	}
	c := Cycle{}
	if !full {
		c.Only = only
	}
	w.log.Debug("sync", "mailboxes", c.Only)
	if w.deps.Before != nil {
		c.Err = w.deps.Before(ctx)
	}
	if c.Err == nil {
		c.Result, c.Err = w.deps.Sync(ctx, c.Only)
		if c.Err == nil {
			c.Err = c.Result.Err
		}
		if w.deps.After != nil {
			w.reportOnce(ProblemAfter, "", w.deps.After(ctx, c.Result, c.Err))
		}
	}
	if w.deps.Cycled != nil {
		defer func() { w.deps.Cycled(c) }()
	}
	if ctx.Err() != nil {
		c.Interrupted = true
		return full, nil
	}
	w.report(c.Result, c.Err)
	if c.Err != nil {
		return full, c.Err
	}
	if w.local != nil {
		w.local.update(w.deps.FolderDir, c.Result, full)
	}
	if full {
		w.setSynced(c.Result)
	}
	return full, nil
}

// report reports the problems of a cycle that were not reported last
// time, and forgets those that went away.
func (w *watcher) report(res satsync.Result, err error) {
	w.reportOnce(ProblemAccount, "", err)
	if err != nil {
		return
	}
	for _, m := range res.Mailboxes {
		w.reportOnce(ProblemMailbox, m.Name, m.Err)
		w.reportOnce(ProblemHeld, m.Name, m.Safety)
	}
	if res.Tags != nil {
		w.reportOnce(ProblemTags, "", res.Tags.Err)
	}
}

// reportOnce reports a problem of kind about mailbox unless it was
// reported and has not gone away since; a nil err says it went away.
// Called from several goroutines.
func (w *watcher) reportOnce(kind ProblemKind, mailbox string, err error) {
	key := problemKey{kind, mailbox}
	if kind == ProblemUnsynced {
		// One problem with watching the mailbox: a connection that
		// opens it again clears both.
		key.kind = ProblemWatch
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		delete(w.reported, key)
		return
	}
	if w.reported[key] {
		return
	}
	w.reported[key] = true
	w.deps.Report(Problem{Kind: kind, Mailbox: mailbox, Err: err})
}
