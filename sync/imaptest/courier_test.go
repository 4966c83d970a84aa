package imaptest

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// courierClient opens a connection of the test's own, apart from the
// harness's, closed in t.Cleanup.
func courierClient(t *testing.T, s *Server) *imapclient.Client {
	t.Helper()
	nc, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(nc, nil)
	t.Cleanup(func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	return c
}

func TestCourierPreauthAndNamespace(t *testing.T) {
	t.Parallel()
	s := StartCourier(t, CourierOptions{})
	if line := readGreeting(t, s); !strings.HasPrefix(line, "* PREAUTH ") {
		t.Errorf("greeting = %q, want PREAUTH (no LOGIN needed)", line)
	}

	c := courierClient(t, s)
	if c.State() != imap.ConnStateAuthenticated {
		t.Fatalf("state after greeting = %v, want authenticated", c.State())
	}
	ns, err := c.Namespace().Wait()
	if err != nil {
		t.Fatalf("namespace: %v", err)
	}
	// RFC 2342 §5: the personal namespace is the first list.
	if len(ns.Personal) != 1 || ns.Personal[0].Prefix != s.Prefix || ns.Personal[0].Delim != s.Delim {
		t.Errorf("personal namespaces = %+v, want one with prefix %q and delimiter %q", ns.Personal, s.Prefix, s.Delim)
	}
	if len(ns.Other) != 0 {
		t.Errorf("other users' namespaces = %+v, want none", ns.Other)
	}
	var shared []string
	for _, d := range ns.Shared {
		shared = append(shared, d.Prefix)
	}
	if want := []string{"#shared.", "shared."}; !slices.Equal(shared, want) {
		t.Errorf("shared namespaces = %q, want %q", shared, want)
	}

	// Outside the personal namespace nothing can be created.
	if err := c.Create("Elsewhere", nil).Wait(); err == nil {
		t.Error(`CREATE "Elsewhere" succeeded; want NO outside "INBOX."`)
	}
}

func TestCourierCapabilities(t *testing.T) {
	t.Parallel()
	caps := StartCourier(t, CourierOptions{}).Capabilities()
	for _, c := range []string{"IMAP4rev1", "UIDPLUS", "NAMESPACE", "IDLE", "CHILDREN", "ENABLE"} {
		if !slices.Contains(caps, c) {
			t.Errorf("CAPABILITY %q lacks %s", caps, c)
		}
	}
	for _, c := range []string{"CONDSTORE", "QRESYNC", "LIST-STATUS", "MOVE", "LITERAL+", "ESEARCH", "UNSELECT"} {
		if slices.Contains(caps, c) {
			t.Errorf("CAPABILITY %q has %s", caps, c)
		}
	}
}

func TestCourierMailboxRoundTrip(t *testing.T) {
	t.Parallel()
	s := StartCourier(t, CourierOptions{})
	s.CreateMailbox("INBOX.Archive.2024")
	s.CreateMailbox("INBOX.Archive.2024") // again: a no-op
	s.CreateMailbox("INBOX.Друзья")
	want := []string{"INBOX", "INBOX.Archive", "INBOX.Archive.2024", "INBOX.Друзья"}
	if got := s.Mailboxes(); !slices.Equal(got, want) {
		t.Errorf("Mailboxes() = %q, want %q (parents created selectable)", got, want)
	}

	const mbox = "INBOX.Archive.2024"
	date := time.Date(2024, 3, 1, 12, 30, 0, 0, time.UTC)
	bodies := [][]byte{
		crlf("Subject: one\n\n1\n"),
		crlf("Subject: two\n\n2\n"),
		crlf("Subject: three\n\n3\n"),
		crlf("Subject: four\n\n4\n"),
	}
	first := s.Append(mbox, bodies[0], []string{`\Seen`}, date)
	rest := s.AppendMany(mbox, []Message{{Body: bodies[1], Date: date}, {Body: bodies[2]}, {Body: bodies[3], Flags: []string{`\Deleted`}}})
	uids := append([]uint32{first}, rest...)
	for i := 1; i < len(uids); i++ {
		if uids[i] <= uids[i-1] {
			t.Fatalf("UIDs %v not ascending", uids)
		}
	}

	s.SetFlags(mbox, uids[0], `\Answered`, `\Flagged`)
	s.AddFlags(mbox, uids[1], `$Label1`)
	// The fourth message is \Deleted too: Expunge must remove only the
	// third (UID EXPUNGE, RFC 4315 §2.1).
	s.Expunge(mbox, uids[2])

	got := s.Messages(mbox)
	wantMsgs := []Message{
		{UID: uids[0], Flags: []string{`\Answered`, `\Flagged`}, Date: date, Body: bodies[0]},
		{UID: uids[1], Flags: []string{`$Label1`}, Date: date, Body: bodies[1]},
		{UID: uids[3], Flags: []string{`\Deleted`}, Body: bodies[3]},
	}
	if len(got) != len(wantMsgs) {
		t.Fatalf("Messages(%q) = %d messages %+v, want %d", mbox, len(got), got, len(wantMsgs))
	}
	for i, w := range wantMsgs {
		g := got[i]
		if g.UID != w.UID || !slices.Equal(g.Flags, w.Flags) || !bytes.Equal(g.Body, w.Body) || (!w.Date.IsZero() && !g.Date.Equal(w.Date)) {
			t.Errorf("message %d = UID %d flags %q date %v body %q\nwant UID %d flags %q date %v body %q",
				i, g.UID, g.Flags, g.Date, g.Body, w.UID, w.Flags, w.Date, w.Body)
		}
	}
}

// TestCourierRenameAndDelete documents how Courier treats a renamed
// mailbox: it keeps its messages but not its UIDVALIDITY, so a client must
// treat it like a new mailbox (RFC 3501 §2.3.1.1). Dovecot keeps it.
func TestCourierRenameAndDelete(t *testing.T) {
	t.Parallel()
	s := StartCourier(t, CourierOptions{})
	before := time.Now().Unix()
	s.CreateMailbox("INBOX.Old.Child")
	after := time.Now().Unix()
	body := crlf("Subject: kept\n\nkept\n")
	uid := s.Append("INBOX.Old", body, nil, time.Time{})
	deleted := crlf("Subject: deleted\n\nstill here\n")
	s.Append("INBOX.Old", deleted, []string{`\Deleted`}, time.Time{})
	// The harness now has INBOX.Old selected read-write; leaving it for
	// the RENAME must not expunge the \Deleted message (Courier has no
	// UNSELECT, and CLOSE expunges, RFC 3501 §6.4.2).
	s.SetFlags("INBOX.Old", uid, `\Seen`)

	old := s.UIDValidity("INBOX.Old")
	oldChild := s.UIDValidity("INBOX.Old.Child")
	// UIDVALIDITY is the creation time minus 10^9 seconds.
	if int64(old) < before-1e9 || int64(old) > after-1e9 {
		t.Errorf("UIDVALIDITY %d of a mailbox created between %d and %d: want the time minus 10^9", old, before, after)
	}

	s.RenameMailbox("INBOX.Old", "INBOX.New")
	if got, want := s.Mailboxes(), []string{"INBOX", "INBOX.New", "INBOX.New.Child"}; !slices.Equal(got, want) {
		t.Errorf("after RENAME, Mailboxes() = %q, want %q", got, want)
	}
	renewed := s.UIDValidity("INBOX.New")
	if renewed <= old {
		t.Errorf("UIDVALIDITY after RENAME = %d, before %d: want a new, larger one", renewed, old)
	}
	if child := s.UIDValidity("INBOX.New.Child"); child <= oldChild {
		t.Errorf("UIDVALIDITY of the renamed child = %d, before %d: want a new, larger one", child, oldChild)
	}
	msgs := s.Messages("INBOX.New")
	if len(msgs) != 2 || !bytes.Equal(msgs[0].Body, body) || !bytes.Equal(msgs[1].Body, deleted) {
		t.Errorf("Messages after RENAME = %+v, want both messages, the \\Deleted one too", msgs)
	}

	// RFC 3501 §6.3.4: a mailbox with inferiors is deleted by leaving it
	// \Noselect; the inferiors stay.
	s.DeleteMailbox("INBOX.New")
	if got, want := s.Mailboxes(), []string{"INBOX", "INBOX.New.Child"}; !slices.Equal(got, want) {
		t.Errorf("after DELETE, Mailboxes() = %q, want %q", got, want)
	}
}

// TestCourierCleanupStopsEverything leaves a connection open on purpose and
// checks that cleanup still ends every imapd process and goroutine. It is
// not parallel, so no other test's processes or goroutines are counted.
func TestCourierCleanupStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	var procs []*os.Process
	t.Run("courier", func(t *testing.T) {
		s, b := startCourier(t, CourierOptions{})
		s.Append("INBOX", crlf("Subject: x\n\nx\n"), nil, time.Time{})
		leaked, err := s.Dial()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { leaked.Close() })
		leaked.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := bufio.NewReader(leaked).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		b.mu.Lock()
		procs = slices.Clone(b.started)
		b.mu.Unlock()
	})

	if len(procs) < 2 {
		t.Errorf("courier started %d imapd processes, want at least 2 (harness, leaked)", len(procs))
	}
	for _, p := range procs {
		if err := p.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("imapd process %d not reaped after cleanup: signal: %v", p.Pid, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after cleanup, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
