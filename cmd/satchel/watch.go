package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	gosync "sync"
	"time"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
)

// accountWatch watches one account. Its sources (a goroutine per watched
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
type accountWatch struct {
	g       *globals
	acc     config.Account // Watch deduplicated by checkWatchable
	tune    watchTuning
	trace   io.Writer
	resume  *broadcast
	log     *slog.Logger
	onStart func(account string)
	onCycle func(account string, only []string, res satsync.Result, err error)

	kick  chan struct{} // holds a value when something was noted
	local *localWatch   // nil without inotify; set by run before any cycle

	mu        gosync.Mutex
	full      bool     // the next cycle syncs every mailbox
	only      []string // else these
	reachable bool     // a watching connection opened since the last look
	// synced holds the mailboxes the last full sync covered; nil before
	// one succeeded.
	synced map[string]bool

	// reported holds the keys with a problem printed ("" for the
	// account, a mailbox name, "held "+name, "watch "+name, "hooks.post"):
	// a problem is printed when it starts, not at every cycle or attempt
	// that meets it again (servers put timings in their error texts), and
	// again only once it went away and came back.
	reported map[string]bool
}

func newAccountWatch(g *globals, acc config.Account, tune watchTuning, trace io.Writer, resume *broadcast) *accountWatch {
	return &accountWatch{
		g: g, acc: acc, tune: tune, trace: trace, resume: resume,
		log:      g.log.With("account", acc.Name),
		kick:     make(chan struct{}, 1),
		reported: map[string]bool{},
	}
}

// note asks for a sync of mailbox soon, or of every mailbox for "".
// Safe from any goroutine; it never blocks.
func (w *accountWatch) note(mailbox string) {
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
func (w *accountWatch) take() (only []string, full bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	only, full = w.only, w.full
	w.only, w.full = nil, false
	return only, full
}

// takeReachable reports and forgets whether a watching connection opened.
func (w *accountWatch) takeReachable() bool {
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
func (w *accountWatch) noteOpened(mailbox string, first bool) {
	w.mu.Lock()
	w.reachable = true
	w.mu.Unlock()
	if first {
		w.noteServer(mailbox, imapremote.ChangeExists)
	} else {
		w.note("")
	}
}

// noteServer notes what a watching connection reported about mailbox.
func (w *accountWatch) noteServer(mailbox string, got imapremote.Change) {
	w.mu.Lock()
	ignored := w.synced != nil && !w.synced[mailbox]
	w.mu.Unlock()
	switch {
	case got == 0:
	case ignored:
		// A sync of it alone would fail, and one of everything would
		// not include it.
		w.reportOnce("watch "+mailbox, fmt.Sprintf("satchel: %s: watch %s: not among the synced mailboxes (left out by mailboxes.include or exclude?); remove it from watch", w.acc.Name, mailbox))
	case got&imapremote.ChangeExpunge != 0:
		// An expunge may be a move to another mailbox: a sync of
		// both follows it without downloading it again.
		w.note("")
	default:
		w.note(mailbox)
	}
}

// setSynced records the mailboxes a full sync covered.
func (w *accountWatch) setSynced(res satsync.Result) {
	synced := map[string]bool{}
	for _, m := range res.Mailboxes {
		synced[m.Name] = true
	}
	w.mu.Lock()
	w.synced = synced
	w.mu.Unlock()
}

func (w *accountWatch) interval() time.Duration {
	if w.tune.interval > 0 {
		return w.tune.interval
	}
	return w.acc.WatchInterval
}

// run watches until ctx ends (nil) or a sync fails in a way only the
// user can fix (the error, already printed).
func (w *accountWatch) run(ctx context.Context) error {
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
	for _, box := range w.acc.Watch {
		wg.Go(func() { w.watchMailbox(ctx, box) })
	}

	w.note("") // the first sync: everything
	var (
		debounce  = time.NewTimer(0)
		armed     bool      // debounce runs
		first     time.Time // the first change since the last cycle
		notBefore time.Time // after a failed cycle: no cycle before this
		retry     = backoff{min: w.tune.backoffMin, max: w.tune.backoffMax}
		fullTimer = time.NewTimer(w.interval())
		resumed   = w.resume.wait()
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
			target := now.Add(w.tune.debounce)
			if limit := first.Add(w.tune.maxDelay); target.After(limit) {
				target = limit
			}
			if target.Before(notBefore) {
				target = notBefore
			}
			debounce.Reset(time.Until(target))
		case <-fullTimer.C:
			w.note("")
		case <-resumed:
			resumed = w.resume.wait()
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
				fullTimer.Reset(w.interval())
			}
			switch {
			case err == nil:
				notBefore = time.Time{}
				retry.reset()
			case watchFatal(err):
				fmt.Fprintf(w.g.stderr, "satchel: %s: watch stopped for this account\n", w.acc.Name)
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
func (w *accountWatch) cycle(ctx context.Context) (bool, error) {
	only, full := w.take()
	if w.onStart != nil {
		w.onStart(w.acc.Name)
	}
	acc := w.acc
	// The watching connections stay open while the sync runs: it has
	// the rest of imap.connections.
	acc.IMAP.Connections = max(1, acc.IMAP.Connections-len(acc.Watch))
	opts := syncOptions{wait: true}
	if !full {
		opts.mailboxes = only
	}
	w.log.Debug("sync", "mailboxes", opts.mailboxes)
	// No progress bars: several accounts may sync at once, and each
	// cycle that changes something says so in one line.
	quiet := *w.g
	quiet.terminal = false
	var res satsync.Result
	err := runPreHook(ctx, w.g, acc, false)
	if err == nil {
		res, err = syncAccount(ctx, &quiet, acc, opts, w.trace)
		if err == nil {
			err = res.Err
		}
		if herr := runPostHook(ctx, w.g, acc, false, res, err); herr != nil {
			w.reportOnce("hooks.post", fmt.Sprintf("satchel: %s: %v", acc.Name, herr))
		} else {
			w.reportOnce("hooks.post", "")
		}
	}
	if w.onCycle != nil {
		defer func() { w.onCycle(acc.Name, opts.mailboxes, res, err) }()
	}
	if ctx.Err() != nil {
		return full, nil
	}
	w.report(res, err)
	if err != nil {
		return full, err
	}
	if w.local != nil {
		w.local.update(w.acc.Maildir, res, full)
	}
	if full {
		w.setSynced(res)
	}
	if w.g.showSummary() {
		printCycle(w.g, res, time.Now())
	}
	return full, nil
}

// report prints the problems of a cycle that were not printed last time,
// in sync's format, and forgets those that went away.
func (w *accountWatch) report(res satsync.Result, err error) {
	if err != nil {
		w.reportOnce("", fmt.Sprintf("satchel: %s: %s", w.acc.Name, withHint(err)))
		return
	}
	w.reportOnce("", "")
	for _, m := range res.Mailboxes {
		line := ""
		if m.Err != nil {
			line = fmt.Sprintf("satchel: %s: %s: %s", w.acc.Name, m.Name, withHint(m.Err))
		}
		w.reportOnce(m.Name, line)
		line = ""
		if m.Safety != nil {
			line = fmt.Sprintf("satchel: %s: %s: %s", w.acc.Name, m.Name, m.Safety)
		}
		w.reportOnce("held "+m.Name, line)
	}
}

// reportOnce prints line unless a problem of key was printed and has not
// gone away since; "" says it went away. Called from several goroutines.
func (w *accountWatch) reportOnce(key, line string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if line == "" {
		delete(w.reported, key)
		return
	}
	if w.reported[key] {
		return
	}
	w.reported[key] = true
	fmt.Fprintln(w.g.stderr, line)
}

// watchFatal reports whether a failed sync needs the user: the
// configuration, the password or the Maildir is wrong, and trying again
// cannot help. Everything else (the network, the server) is tried again.
func watchFatal(err error) bool {
	switch exitCodeOf(err) {
	case exitUsage, exitSafety:
		return true
	}
	return errors.Is(err, imapremote.ErrAuth) || errors.Is(err, imapremote.ErrPlaintext) ||
		errors.Is(err, satsync.ErrNameCollision)
}
