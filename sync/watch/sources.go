package watch

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	gosync "sync"
	"time"

	"github.com/fsnotify/fsnotify"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// errResumed ends a watching connection after a resume from suspend: it
// is most likely dead, and is replaced at once.
var errResumed = errors.New("resumed from suspend")

// watchMailbox keeps one connection waiting for changes to mailbox until
// ctx ends, opening a new one, after a backoff, whenever it is lost.
func (w *watcher) watchMailbox(ctx context.Context, mailbox string) {
	log := w.log.With("mailbox", mailbox)
	b := backoff{min: w.opts.Timing.BackoffMin, max: w.opts.Timing.BackoffMax}
	opened := false
	for {
		resumed := w.deps.Resume.Wait()
		err := w.idleSession(ctx, mailbox, resumed, func() {
			w.reportOnce(ProblemWatch, mailbox, nil)
			w.noteOpened(mailbox, !opened)
			opened = true
		}, b.reset)
		if ctx.Err() != nil {
			return
		}
		wait := b.next()
		switch {
		case errors.Is(err, errResumed):
			wait = 0
			log.Info("reconnecting after a resume from suspend")
		case w.routine(err):
			// The syncs report an unreachable server or a refused
			// password; a lost connection is routine.
			log.Info("watching connection lost; opening another", "err", err, "in", wait)
		default:
			log.Info("cannot watch; trying again", "err", err, "in", wait)
			w.reportOnce(ProblemWatch, mailbox, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-resumed:
			t.Stop()
		case <-t.C:
		}
	}
}

// routine reports whether a watching connection's error is only logged.
func (w *watcher) routine(err error) bool {
	return errors.Is(err, mail.ErrTransient) || w.deps.Routine != nil && w.deps.Routine(err)
}

// idleSession opens a connection, examines mailbox, calls opened, and
// notes every change the server reports, calling healthy after each
// completed wait, until the connection fails, ctx ends or resumed fires.
func (w *watcher) idleSession(ctx context.Context, mailbox string, resumed <-chan struct{}, opened, healthy func()) error {
	c, err := w.deps.Dial(ctx)
	if err != nil {
		return err
	}
	// After ctx ended, WaitChange has sent DONE: this logs out.
	defer c.Close()
	if _, err := c.Examine(ctx, mailbox); err != nil {
		return err
	}
	opened()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-resumed:
			cancel()
		case <-sctx.Done():
		}
	}()
	maxIdle := w.opts.Timing.MaxIdle
	if !c.CanIdle() {
		maxIdle = w.opts.Timing.Poll
	}
	for {
		got, err := c.WaitChange(sctx, mailbox, maxIdle)
		if err != nil {
			if ctx.Err() == nil && sctx.Err() != nil {
				return errResumed
			}
			return err
		}
		healthy()
		w.noteServer(mailbox, got)
	}
}

// localWatch turns inotify events in the new/ and cur/ directories of the
// synced folders into notes of their mailboxes. Delivery, a flag change
// (a rename), a deletion and a move all show there; tmp/ does not matter.
type localWatch struct {
	fs   *fsnotify.Watcher
	log  *slog.Logger
	note func(mailbox string)

	mu     gosync.Mutex
	dirs   map[string]string // watched directory → mailbox
	warned bool              // a directory could not be watched
}

func newLocalWatch(log *slog.Logger, note func(string)) (*localWatch, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &localWatch{fs: fw, log: log, note: note, dirs: map[string]string{}}, nil
}

func (l *localWatch) close() { l.fs.Close() }

// run passes events on until ctx ends or the watcher is closed.
func (l *localWatch) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-l.fs.Events:
			if !ok {
				return
			}
			l.event(ev)
		case err, ok := <-l.fs.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: which folders changed is unknown.
				l.note("")
				continue
			}
			l.log.Warn("watching the Maildir", "err", err)
		}
	}
}

func (l *localWatch) event(ev fsnotify.Event) {
	if ev.Op == fsnotify.Chmod {
		return // mode and times: not mail
	}
	l.mu.Lock()
	box, ok := l.dirs[filepath.Dir(ev.Name)]
	if !ok {
		// The watched directory itself went away (its watch with it).
		if box, ok = l.dirs[ev.Name]; ok && ev.Has(fsnotify.Remove|fsnotify.Rename) {
			delete(l.dirs, ev.Name)
		}
	}
	l.mu.Unlock()
	if ok {
		l.note(box)
	}
}

// update watches the folders of the mailboxes a sync covered, folderDir
// giving each folder's directory; after a sync of every mailbox, it stops
// watching folders of mailboxes no longer synced.
func (l *localWatch) update(folderDir func(rel string) string, res satsync.Result, full bool) {
	want := map[string]string{}
	for _, m := range res.Mailboxes {
		if m.Local == "" {
			continue
		}
		dir := folderDir(m.Local)
		want[filepath.Join(dir, "new")] = m.Name
		want[filepath.Join(dir, "cur")] = m.Name
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if full {
		for d := range l.dirs {
			if _, ok := want[d]; !ok {
				l.fs.Remove(d)
				delete(l.dirs, d)
			}
		}
	}
	for d, box := range want {
		if _, ok := l.dirs[d]; ok {
			continue
		}
		if err := l.fs.Add(d); err != nil {
			// A folder that failed may not exist yet; the next sync
			// tries again. A full inotify table is worth a warning.
			if !l.warned && !errors.Is(err, fs.ErrNotExist) {
				l.warned = true
				l.log.Warn("cannot watch a Maildir folder; its changes wait for the next full sync", "dir", d, "err", err)
			}
			continue
		}
		l.dirs[d] = box
	}
}

// Broadcast wakes every waiter at once, as often as it fires. Safe for
// concurrent use.
type Broadcast struct {
	mu gosync.Mutex
	ch chan struct{}
}

// NewBroadcast returns a Broadcast that has not fired.
func NewBroadcast() *Broadcast { return &Broadcast{ch: make(chan struct{})} }

// Wait returns a channel closed at the next Fire.
func (b *Broadcast) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

// Fire wakes everyone waiting.
func (b *Broadcast) Fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}

// Clock calls resumed whenever the machine has slept, until ctx ends.
// Go's timers and monotonic clock stand still during a suspend and the
// wall clock does not, so a tick that finds the wall clock far ahead of
// the monotonic one comes after a resume. (A wall clock set forward
// looks the same, and costs a reconnection and a sync.) A tick of 0 or
// less watches nothing.
func Clock(ctx context.Context, tick time.Duration, resumed func()) {
	if tick <= 0 {
		return
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if slept(now.Round(0).Sub(last.Round(0)), now.Sub(last), tick) {
			resumed()
		}
		last = now
	}
}

// slept reports whether wall time ran ahead of monotonic time by more
// than a tick between two readings.
func slept(wall, mono, tick time.Duration) bool { return wall-mono > tick }

// backoff is an exponential backoff with jitter, from min to max.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	// ±20%, so that connections lost together do not return together.
	spread := b.cur * 2 / 5
	return b.cur - spread/2 + rand.N(spread+1)
}

func (b *backoff) reset() { b.cur = 0 }
