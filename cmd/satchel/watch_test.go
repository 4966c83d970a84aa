package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/synctest"
	"github.com/satchel-mail/satchel/sync/watch"
)

// fastWatch shortens every timing of a watch so that a test sees a change
// synced within a second or two.
var fastWatch = watchTuning{
	Timing: watch.Timing{
		Debounce:   100 * time.Millisecond,
		MaxDelay:   time.Second,
		MaxIdle:    2 * time.Second,
		Poll:       500 * time.Millisecond,
		BackoffMin: 50 * time.Millisecond,
		BackoffMax: 500 * time.Millisecond,
	},
	timeout:  2 * time.Second,
	interval: time.Hour,
}

type cycleResult struct {
	only []string
	res  satsync.Result
	err  error
	at   time.Time
}

// watchRun is a watch running in-process.
type watchRun struct {
	stdout, stderr *synctest.Buffer
	resume         *watch.Broadcast
	cancel         context.CancelFunc
	done           chan int

	mu      gosync.Mutex
	cycles  []cycleResult
	running bool
}

// startWatch runs `satchel [globals] watch` for a's configuration on its own
// goroutine; the test's end stops it.
func startWatch(t *testing.T, a account, tune watchTuning, setup func(g *globals)) *watchRun {
	t.Helper()
	r := &watchRun{stdout: &synctest.Buffer{}, stderr: &synctest.Buffer{}, resume: watch.NewBroadcast(), done: make(chan int, 1)}
	g := &globals{config: a.config, stdout: r.stdout, stderr: r.stderr}
	if setup != nil {
		setup(g)
	}
	g.logOut = &switchWriter{w: r.stderr}
	g.log = newLogger(g)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	opts := watchOptions{tune: &tune, resume: r.resume}
	opts.onStart = func(string) {
		r.mu.Lock()
		r.running = true
		r.mu.Unlock()
	}
	opts.onCycle = func(_ string, c watch.Cycle) {
		r.mu.Lock()
		r.cycles = append(r.cycles, cycleResult{only: c.Only, res: c.Result, err: c.Err, at: time.Now()})
		r.running = false
		r.mu.Unlock()
	}
	go func() { r.done <- runWatch(ctx, g, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Errorf("watch did not stop")
		}
	})
	return r
}

// stop cancels the watch, as SIGINT does, and returns its exit code.
func (r *watchRun) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		return code
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not stop within 20 s of its cancellation")
		return -1
	}
}

func (r *watchRun) snapshot() []cycleResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cycles)
}

// waitFor polls cond until it holds, failing the test after 20 s.
func (r *watchRun) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("watch: %s did not happen; cycles %s; stderr:\n%s", what, describeCycles(r.snapshot()), r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle waits until no sync has run for a while, and fails if the watch
// keeps syncing: each cycle's own changes must not start cycles forever.
func (r *watchRun) settle(t *testing.T) {
	t.Helper()
	quiet := 5 * fastWatch.Debounce
	deadline := time.Now().Add(15 * time.Second)
	for {
		r.mu.Lock()
		running := r.running
		r.mu.Unlock()
		cs := r.snapshot()
		if !running && len(cs) > 0 && time.Since(cs[len(cs)-1].at) > quiet {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch keeps syncing: cycles %s", describeCycles(cs))
		}
		time.Sleep(quiet / 4)
	}
}

func describeCycles(cs []cycleResult) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString("[")
		if c.only == nil {
			b.WriteString("all")
		} else {
			b.WriteString(strings.Join(c.only, ","))
		}
		if c.err != nil {
			b.WriteString(" err=" + c.err.Error())
		}
		for _, m := range c.res.Mailboxes {
			if n := m.Downloaded + m.Uploaded + m.FlagsChanged + m.FlagsPushed + m.Removed + m.Deleted + m.Moved; n > 0 {
				fmt.Fprintf(&b, " %s:%d", m.Name, n)
			}
		}
		b.WriteString("] ")
	}
	return b.String()
}

// cycleOK reports whether a cycle after the first n succeeded and covered
// mailbox (or every mailbox, for "").
func (r *watchRun) cycleOK(n int, mailbox string) bool {
	for _, c := range r.snapshot()[n:] {
		if c.err == nil && (c.only == nil || slices.Contains(c.only, mailbox)) {
			return true
		}
	}
	return false
}

func watchAccount(t *testing.T, host string, port int, user, extra string) account {
	return writeConfig(t, host, port, user, "unused", extra)
}

func serverHasFlag(srv *imaptest.Server, mailbox, subject, flag string) bool {
	for _, m := range srv.Messages(mailbox) {
		if bytes.Contains(m.Body, []byte("Subject: "+subject+"\r\n")) {
			return slices.Contains(m.Flags, flag)
		}
	}
	return false
}

// TestWatchSyncsChanges: a watch syncs everything first, then a message
// appended on the server reaches the Maildir and a flag set in the Maildir
// reaches the server, each by a sync of that mailbox only; a stop exits 0
// and prints nothing when nothing failed.
func TestWatchSyncsChanges(t *testing.T) {
	t.Parallel()
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.CreateMailbox("Lists")
	srv.Append("INBOX", testMsg("one"), nil, testDate)
	a := watchAccount(t, srv.Host, srv.Port, srv.User, "")
	w := startWatch(t, a, fastWatch, nil)

	w.waitFor(t, "the first sync", func() bool { return len(w.snapshot()) > 0 && len(localFiles(t, a, "INBOX")) == 1 })
	if cs := w.snapshot(); cs[0].only != nil || cs[0].err != nil {
		t.Fatalf("first cycle: only %v, err %v; want every mailbox, no error", cs[0].only, cs[0].err)
	}
	w.settle(t)

	n := len(w.snapshot())
	srv.Append("INBOX", testMsg("two"), nil, testDate)
	w.waitFor(t, "the server's new message in the Maildir", func() bool { return len(localFiles(t, a, "INBOX")) == 2 })
	for _, c := range w.snapshot()[n:] {
		if c.only == nil || !slices.Equal(c.only, []string{"INBOX"}) {
			t.Errorf("a new message in INBOX made a sync of %v, want [INBOX]", c.only)
		}
	}
	w.settle(t)

	// mutt marks "one" read: new/ → cur/ with :2,S.
	n = len(w.snapshot())
	p := fileOf(t, a, "INBOX", "one")
	dst := filepath.Join(a.maildir, "INBOX", "cur", strings.SplitN(filepath.Base(p), ":", 2)[0]+":2,S")
	if err := os.Rename(p, dst); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, `\Seen on the server`, func() bool {
		return w.cycleOK(n, "INBOX") && serverHasFlag(srv, "INBOX", "one", `\Seen`)
	})
	w.settle(t)
	for _, c := range w.snapshot()[n:] {
		if slices.Contains(c.only, "Lists") {
			t.Errorf("a change in INBOX made a sync of %v", c.only)
		}
	}

	// A file put in another folder is uploaded there.
	msg := strings.ReplaceAll(string(testMsg("filed")), "\r\n", "\n")
	if err := os.WriteFile(filepath.Join(a.maildir, "Lists", "cur", "1700000000.filed.host:2,S"), []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, "the filed message on the server", func() bool { return len(srv.Messages("Lists")) == 1 })
	w.settle(t)

	// mutt saves "two" to Lists: both folders change, one sync covers
	// both, and the server moves the message rather than receiving a
	// copy.
	n = len(w.snapshot())
	p = fileOf(t, a, "INBOX", "two")
	if err := os.Rename(p, filepath.Join(a.maildir, "Lists", "cur", filepath.Base(p))); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, "the move on the server", func() bool {
		return w.cycleOK(n, "Lists") && len(srv.Messages("Lists")) == 2 && len(srv.Messages("INBOX")) == 1
	})
	moved := false
	for _, c := range w.snapshot()[n:] {
		for _, m := range c.res.Mailboxes {
			moved = moved || m.Moved > 0
		}
	}
	if !moved {
		t.Errorf("the local move was not synced as a move: %s", describeCycles(w.snapshot()[n:]))
	}
	w.settle(t)

	if code := w.stop(t); code != exitOK {
		t.Fatalf("watch stopped with exit %d, want 0; stderr:\n%s", code, w.stderr)
	}
	if w.stdout.String() != "" || w.stderr.String() != "" {
		t.Errorf("a watch with nothing failed printed, not on a terminal:\nstdout %q\nstderr %q", w.stdout, w.stderr)
	}
}

// TestWatchSurvivesLostConnection: the connection waiting in IDLE is cut,
// then the network stalls and heals; each time the watch reconnects and a
// change made meanwhile, and the next one, arrive.
func TestWatchSurvivesLostConnection(t *testing.T) {
	t.Parallel()
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	p := imaptest.NewProxy(t, srv.Addr)
	a := watchAccount(t, p.Host, p.Port, srv.User, "")
	tune := fastWatch
	tune.MaxIdle, tune.timeout = 500*time.Millisecond, 500*time.Millisecond
	w := startWatch(t, a, tune, nil)
	w.waitFor(t, "the first sync", func() bool { return len(w.snapshot()) > 0 })
	w.settle(t)

	// The server's next words (an EXISTS to the idle connection) cut it.
	conns := p.Conns()
	p.CutAfter(true, 0)
	srv.Append("INBOX", testMsg("during the cut"), nil, testDate)
	w.waitFor(t, "the message appended as the connection was cut", func() bool { return len(localFiles(t, a, "INBOX")) == 1 })
	if p.Conns() <= conns {
		t.Fatalf("no new connection after the cut")
	}
	w.settle(t)
	srv.Append("INBOX", testMsg("after the cut"), nil, testDate)
	w.waitFor(t, "a message appended after the reconnection", func() bool { return len(localFiles(t, a, "INBOX")) == 2 })
	w.settle(t)

	// A stall: IDLE ends without a reply to DONE, reconnecting hangs.
	// After the heal the stalled connection would deliver what it
	// held: only a new connection shows that the dead one was found.
	conns = p.Conns()
	p.Stall()
	srv.Append("INBOX", testMsg("during the stall"), nil, testDate)
	time.Sleep(2 * (tune.MaxIdle + tune.timeout))
	p.Heal()
	w.waitFor(t, "the message appended during the stall", func() bool { return len(localFiles(t, a, "INBOX")) == 3 })
	if p.Conns() <= conns {
		t.Fatalf("no new connection after the stall")
	}
	w.settle(t)
	srv.Append("INBOX", testMsg("after the stall"), nil, testDate)
	w.waitFor(t, "a message appended after the stall", func() bool { return len(localFiles(t, a, "INBOX")) == 4 })

	if code := w.stop(t); code != exitOK {
		t.Fatalf("watch stopped with exit %d, want 0; stderr:\n%s", code, w.stderr)
	}
}

// TestWatchLeavesLockFree: a sync from cron beside an idle watch runs
// (the lock is held only during the watch's own syncs); the watch goes on.
func TestWatchLeavesLockFree(t *testing.T) {
	t.Parallel()
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.Append("INBOX", testMsg("one"), nil, testDate)
	a := watchAccount(t, srv.Host, srv.Port, srv.User, "")
	w := startWatch(t, a, fastWatch, nil)
	w.waitFor(t, "the first sync", func() bool { return len(localFiles(t, a, "INBOX")) == 1 })
	w.settle(t)

	if code, _, errs := runCLI(t, "--config", a.config, "-q", "sync"); code != exitOK {
		t.Fatalf("sync beside the watch: exit %d, stderr %q", code, errs)
	}
	srv.Append("INBOX", testMsg("two"), nil, testDate)
	w.waitFor(t, "the next message", func() bool { return len(localFiles(t, a, "INBOX")) == 2 })
}

// TestWatchStopSendsDone: a stop ends IDLE with DONE and logs out.
func TestWatchStopSendsDone(t *testing.T) {
	t.Parallel()
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	a := watchAccount(t, srv.Host, srv.Port, srv.User, "")
	trace := filepath.Join(a.dir, "trace")
	w := startWatch(t, a, fastWatch, func(g *globals) { g.trace = trace })
	read := func() string {
		b, _ := os.ReadFile(trace)
		return string(b)
	}
	w.waitFor(t, "IDLE", func() bool { return strings.Contains(read(), "S: + idling") })
	if code := w.stop(t); code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	tr := read()
	i := strings.LastIndex(tr, "IDLE\n")
	if i < 0 || !strings.Contains(tr[i:], "C: DONE") || !strings.Contains(tr[i:], "LOGOUT") {
		t.Fatalf("no DONE and LOGOUT after the last IDLE; trace:\n%s", tr)
	}
}

// TestWatchResume: after a resume from suspend the watching connection is
// replaced and everything is synced.
func TestWatchResume(t *testing.T) {
	t.Parallel()
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	p := imaptest.NewProxy(t, srv.Addr)
	a := watchAccount(t, p.Host, p.Port, srv.User, "")
	w := startWatch(t, a, fastWatch, nil)
	w.waitFor(t, "the first sync", func() bool { return len(w.snapshot()) > 0 })
	w.settle(t)
	n, conns := len(w.snapshot()), p.Conns()
	w.resume.Fire()
	w.waitFor(t, "a sync of everything", func() bool {
		for _, c := range w.snapshot()[n:] {
			if c.only == nil && c.err == nil {
				return true
			}
		}
		return false
	})
	// The sync's own connection is one; the watching one is another.
	w.waitFor(t, "a new watching connection", func() bool { return p.Conns() >= conns+2 })
}

// TestWatchMissingMailbox: a watched mailbox the server does not have is
// reported once, however often the watch tries it again, and the rest of
// the account is watched as usual.
func TestWatchMissingMailbox(t *testing.T) {
	t.Parallel()
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	a := watchAccount(t, srv.Host, srv.Port, srv.User, "    watch: [INBOX, Nowhere]\n")
	w := startWatch(t, a, fastWatch, nil)
	w.waitFor(t, "the first sync", func() bool { return len(w.snapshot()) > 0 })
	w.settle(t)
	time.Sleep(4 * fastWatch.BackoffMax) // several attempts
	n := len(w.snapshot())
	srv.Append("INBOX", testMsg("one"), nil, testDate)
	w.waitFor(t, "the message", func() bool { return w.cycleOK(n, "INBOX") && len(localFiles(t, a, "INBOX")) == 1 })
	w.settle(t)
	if code := w.stop(t); code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	lines := strings.Split(strings.TrimSpace(w.stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "watch Nowhere: examine") {
		t.Fatalf("stderr %q, want one line about Nowhere", w.stderr)
	}
}

// TestWatchNeedsConnections: the watched mailboxes and one sync must fit
// in imap.connections.
func TestWatchNeedsConnections(t *testing.T) {
	t.Parallel()
	a := watchAccount(t, "127.0.0.1", 1, "me", "      connections: 2\n    watch: [INBOX, Sent]\n")
	w := startWatch(t, a, fastWatch, nil)
	select {
	case code := <-w.done:
		w.done <- code
		if code != exitUsage || !strings.Contains(w.stderr.String(), "imap.connections 2") {
			t.Fatalf("exit %d, stderr %q; want 2 and a word about imap.connections", code, w.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch started with too few connections")
	}
}

// TestWatchStopsOnFatalError: a password the server refuses stops the
// account's watch, with the error and the exit code of a failed sync.
func TestWatchStopsOnFatalError(t *testing.T) {
	t.Parallel()
	srv := imaptest.StartMemory(t)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "wrong", "")
	w := startWatch(t, a, fastWatch, nil)
	select {
	case code := <-w.done:
		w.done <- code
		if code != exitFailure || !strings.Contains(w.stderr.String(), "authentication failed") {
			t.Fatalf("exit %d, stderr %q; want 1 and the authentication error", code, w.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch goes on with a wrong password")
	}
}
