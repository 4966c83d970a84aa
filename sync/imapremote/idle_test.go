package imapremote

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// waitForChange calls WaitChange until what it reports includes want,
// at most a few times: an expunge, say, comes after the FETCH that set
// \Deleted.
func waitForChange(t *testing.T, c *Client, mailbox string, want Change, maxIdle time.Duration) Change {
	t.Helper()
	var all Change
	for range 4 {
		got, err := c.WaitChange(t.Context(), mailbox, maxIdle)
		if err != nil {
			t.Fatalf("WaitChange: %v", err)
		}
		all |= got
		if all&want != 0 {
			return all
		}
	}
	t.Fatalf("WaitChange reported %b, never %b", all, want)
	return all
}

// startIdle runs WaitChange on its own goroutine and returns once the
// server has accepted IDLE, as the trace shows.
func startIdle(t *testing.T, ctx context.Context, c *Client, trace *traceBuffer, maxIdle time.Duration) <-chan error {
	t.Helper()
	before := strings.Count(trace.String(), "S: + ")
	done := make(chan error, 1)
	go func() {
		_, err := c.WaitChange(ctx, "INBOX", maxIdle)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(trace.String(), "S: + ") == before {
		if time.Now().After(deadline) {
			t.Fatalf("IDLE was not accepted; trace:\n%s", trace)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return done
}

// idleThroughProxy dials a Dovecot through a fault proxy, with timeout as
// Options.Timeout, and opens INBOX with a first WaitChange.
func idleThroughProxy(t *testing.T, timeout time.Duration) (*imaptest.Server, *imaptest.Proxy, *Client, *traceBuffer) {
	t.Helper()
	s := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	p := imaptest.NewProxy(t, s.Addr)
	trace := &traceBuffer{}
	opts := connectOptions(t, s, trace)
	opts.Host, opts.Port, opts.Timeout = p.Host, p.Port, timeout
	c := mustDial(t, opts)
	if _, err := c.WaitChange(t.Context(), "INBOX", time.Millisecond); err != nil {
		t.Fatalf("WaitChange: %v", err)
	}
	return s, p, c, trace
}

// TestIdleReportsServerChanges: another session appends, flags and
// expunges; the watching connection hears of each, whether expunges come
// as EXPUNGE or, with QRESYNC, as VANISHED. go-imap's in-memory server is
// left out: it sends nothing during IDLE, only in the reply to DONE.
func TestIdleReportsServerChanges(t *testing.T) {
	forEachServer(t, func(t *testing.T, s *imaptest.Server, mode mail.SyncMode) {
		if !strings.HasPrefix(s.String(), "dovecot") {
			t.Skip("the in-memory server does not report changes during IDLE")
		}
		uid := s.Append("INBOX", testMessage(1), nil, time.Time{})
		c := connect(t, s, nil)
		if !c.CanIdle() {
			t.Fatalf("%s does not offer IDLE", s)
		}
		// The first call opens INBOX; only what changes after that counts.
		if _, err := c.WaitChange(t.Context(), "INBOX", time.Millisecond); err != nil {
			t.Fatalf("WaitChange: %v", err)
		}
		s.Append("INBOX", testMessage(2), nil, time.Time{})
		waitForChange(t, c, "INBOX", ChangeExists, 10*time.Second)
		s.AddFlags("INBOX", uid, `\Flagged`)
		waitForChange(t, c, "INBOX", ChangeFlags, 10*time.Second)
		s.Expunge("INBOX", uid)
		waitForChange(t, c, "INBOX", ChangeExpunge, 10*time.Second)
		if mode == mail.ModeQResync && c.Mode() != mail.ModeQResync {
			t.Fatalf("QRESYNC was not enabled: the VANISHED path is untested")
		}
	})
}

// TestIdleExaminesOtherMailbox: watching a mailbox opens it read-only, and
// a change to another mailbox is not reported.
func TestIdleExaminesOtherMailbox(t *testing.T) {
	s := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	s.CreateMailbox("Lists")
	trace := &traceBuffer{}
	c := connect(t, s, trace)
	if _, err := c.WaitChange(t.Context(), "Lists", time.Millisecond); err != nil {
		t.Fatalf("WaitChange: %v", err)
	}
	if l := commandLine(trace.String(), "EXAMINE"); !strings.Contains(l, "Lists") {
		t.Fatalf("Lists was not opened with EXAMINE: %q", l)
	}
	s.Append("INBOX", testMessage(1), nil, time.Time{})
	got, err := c.WaitChange(t.Context(), "Lists", 300*time.Millisecond)
	if err != nil || got != 0 {
		t.Fatalf("WaitChange after a change to INBOX: %b, %v; want 0, nil", got, err)
	}
	s.Append("Lists", testMessage(2), nil, time.Time{})
	waitForChange(t, c, "Lists", ChangeExists, 10*time.Second)
}

// TestIdleCancelSendsDone: cancelling ends IDLE with DONE and leaves the
// connection usable.
func TestIdleCancelSendsDone(t *testing.T) {
	s := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	trace := &traceBuffer{}
	c := connect(t, s, trace)
	ctx, cancel := context.WithCancel(t.Context())
	done := startIdle(t, ctx, c, trace, time.Hour)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitChange after cancel: %v, want context.Canceled", err)
	}
	if !strings.Contains(trace.String(), "C: DONE") {
		t.Fatalf("no DONE sent; trace:\n%s", trace)
	}
	if _, err := c.List(t.Context()); err != nil {
		t.Fatalf("List after a cancelled WaitChange: %v", err)
	}
}

// TestIdleFindsDeadConnection: a connection that stops carrying anything
// during IDLE is found when DONE gets no reply: the error is a timeout,
// transient.
func TestIdleFindsDeadConnection(t *testing.T) {
	_, p, c, trace := idleThroughProxy(t, 300*time.Millisecond)
	done := startIdle(t, t.Context(), c, trace, 200*time.Millisecond)
	p.Stall()
	defer p.Heal()
	err := <-done
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, mail.ErrTransient) {
		t.Fatalf("WaitChange on a stalled connection: %v, want a transient ErrTimeout", err)
	}
}

// TestIdleDroppedConnection: a connection the server closes during IDLE
// ends WaitChange with a transient error.
func TestIdleDroppedConnection(t *testing.T) {
	s, p, c, trace := idleThroughProxy(t, 0)
	done := startIdle(t, t.Context(), c, trace, time.Hour)
	p.CutAfter(true, 0)
	defer p.Heal()
	s.Append("INBOX", testMessage(1), nil, time.Time{})
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, mail.ErrTransient) {
			t.Fatalf("WaitChange on a cut connection: %v, want a transient error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("WaitChange did not return after the connection was cut")
	}
}

// TestIdlePollsWithoutIdle: a server without IDLE is asked with NOOP.
func TestIdlePollsWithoutIdle(t *testing.T) {
	s := imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: "IMAP4rev1 LITERAL+"})
	trace := &traceBuffer{}
	c := connect(t, s, trace)
	if c.CanIdle() {
		t.Fatal("CanIdle is true for a server without IDLE")
	}
	if _, err := c.WaitChange(t.Context(), "INBOX", time.Millisecond); err != nil {
		t.Fatalf("WaitChange: %v", err)
	}
	s.Append("INBOX", testMessage(1), nil, time.Time{})
	waitForChange(t, c, "INBOX", ChangeExists, 100*time.Millisecond)
	if commandLine(trace.String(), "IDLE") != "" || commandLine(trace.String(), "NOOP") == "" {
		t.Fatalf("want NOOP and no IDLE; trace:\n%s", trace)
	}
}
