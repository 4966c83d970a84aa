package watch

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	gosync "sync"
	"testing"
	"time"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// fakeConn is a watching connection whose server reports what the test
// sends on changes.
type fakeConn struct{ changes chan Change }

func (c fakeConn) Examine(context.Context, string) (mail.MailboxStatus, error) {
	return mail.MailboxStatus{}, nil
}
func (c fakeConn) CanIdle() bool { return true }
func (c fakeConn) Close() error  { return nil }

func (c fakeConn) WaitChange(ctx context.Context, _ string, maxIdle time.Duration) (Change, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case got := <-c.changes:
		return got, nil
	case <-time.After(maxIdle):
		return 0, nil
	}
}

var fast = Timing{
	Debounce: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, MaxIdle: time.Second, Poll: time.Second,
	BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
}

// TestWatchCycles: a watch syncs everything first; a new message in the
// watched mailbox syncs that mailbox alone, an expunge (perhaps a move)
// everything; a mailbox that fails at every cycle is reported once; a
// sync that fails in a way only the user can fix stops the watch with
// its error.
func TestWatchCycles(t *testing.T) {
	changes := make(chan Change)
	fatal := errors.New("wrong password")
	var (
		mu       gosync.Mutex
		cycles   [][]string
		problems []Problem
		fail     error
	)
	synced := make(chan struct{}, 10)
	deps := Deps{
		Dial: func(context.Context) (Conn, error) { return fakeConn{changes}, nil },
		Sync: func(_ context.Context, only []string) (satsync.Result, error) {
			mu.Lock()
			defer mu.Unlock()
			cycles = append(cycles, only)
			res := satsync.Result{Account: "personal", Mailboxes: []satsync.MailboxResult{
				{Name: "INBOX"}, {Name: "Junk", Err: errors.New("refused")},
			}}
			return res, fail
		},
		FolderDir: func(rel string) string { return t.TempDir() },
		Fatal:     func(err error) bool { return errors.Is(err, fatal) },
		Report: func(p Problem) {
			mu.Lock()
			defer mu.Unlock()
			problems = append(problems, p)
		},
		Cycled: func(Cycle) { synced <- struct{}{} },
	}
	done := make(chan Result, 1)
	go func() {
		done <- Account(t.Context(), Options{Account: "personal", Mailboxes: []string{"INBOX"}, Interval: time.Hour, Timing: fast, Logger: slog.New(slog.DiscardHandler)}, deps)
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-synced:
		case <-time.After(10 * time.Second):
			t.Fatalf("no cycle after %s", what)
		}
	}
	wait("the start")
	// Opening the watching connection asks for a sync of its mailbox,
	// unless the first one was still to come: wait until all is quiet.
	for quiet := false; !quiet; {
		select {
		case <-synced:
		case <-time.After(10 * fast.Debounce):
			quiet = true
		}
	}
	mu.Lock()
	if cycles[0] != nil {
		t.Errorf("the first cycle synced %q, want everything", cycles[0])
	}
	cycles = nil
	mu.Unlock()
	changes <- ChangeExists
	wait("a new message")
	changes <- ChangeExpunge
	wait("an expunge")
	mu.Lock()
	got := slices.Clone(cycles)
	fail = fatal
	mu.Unlock()
	want := [][]string{{"INBOX"}, nil}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("cycles %q, want %q", got, want)
	}
	changes <- ChangeFlags
	select {
	case res := <-done:
		if !errors.Is(res.Err, fatal) || res.Account != "personal" {
			t.Errorf("watch ended with %+v, want the fatal error", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch goes on after a fatal error")
	}
	mu.Lock()
	defer mu.Unlock()
	kinds := map[ProblemKind]int{}
	for _, p := range problems {
		kinds[p.Kind]++
	}
	if kinds[ProblemMailbox] != 1 || kinds[ProblemAccount] != 1 || len(problems) != 2 {
		t.Errorf("problems %+v: want Junk's failure once and the fatal error once", problems)
	}
}

func TestSlept(t *testing.T) {
	tick := 30 * time.Second
	for _, c := range []struct {
		wall, mono time.Duration
		want       bool
	}{
		{30 * time.Second, 30 * time.Second, false},
		{31 * time.Second, 30 * time.Second, false}, // the wall clock slewed
		{2 * time.Hour, 30 * time.Second, true},     // a suspend
		{29 * time.Second, 30 * time.Second, false}, // set back
	} {
		if got := slept(c.wall, c.mono, tick); got != c.want {
			t.Errorf("slept(%v, %v) = %v, want %v", c.wall, c.mono, got, c.want)
		}
	}
}

// TestBackoff: waits double from min to max, within ±20%, and start over
// after a reset.
func TestBackoff(t *testing.T) {
	b := backoff{min: time.Second, max: 4 * time.Second}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		if got := b.next(); got < want*8/10 || got > want*12/10 {
			t.Errorf("wait %d = %v, want %v ± 20%%", i, got, want)
		}
	}
	b.reset()
	if got := b.next(); got > 1200*time.Millisecond {
		t.Errorf("after a reset: %v, want about a second", got)
	}
}
