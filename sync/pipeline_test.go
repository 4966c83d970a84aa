package sync_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// TestApplyWhereLearned: with several connections, each mailbox is
// applied on the connection that learned it, where it is still selected:
// the sync after a change in every mailbox selects each of them once, and
// opens no connection for applying. That needs learning to have spread
// the mailboxes one per connection; on a loaded machine an extra
// connection may come up only after the first one learned two mailboxes,
// and one of them is then selected again rightly. So the sync is tried
// up to three times, and one of them must select each mailbox once.
func TestApplyWhereLearned(t *testing.T) {
	for _, mode := range serverModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			boxes := []string{"INBOX", "A", "B", "C"}
			for _, b := range boxes[1:] {
				srv.CreateMailbox(srv.Name(b))
			}
			for _, b := range boxes {
				srv.Append(srv.Name(b), msg("old in "+b), nil, day)
			}
			e := newEnv(t, srv)
			e.opts.Connections = len(boxes)
			e.mustSync()
			var why []string
			for try := range 3 {
				for _, b := range boxes {
					srv.Append(srv.Name(b), msg(fmt.Sprintf("new in %s, %d", b, try)), nil, day)
				}
				res := e.mustSync()
				for _, m := range res.Mailboxes {
					if m.Downloaded != 1 {
						t.Fatalf("%s: downloaded %d, want 1", m.Name, m.Downloaded)
					}
				}
				selects := map[string]int{}
				for _, c := range e.clientCommands() {
					if name, ok := strings.CutPrefix(c, "SELECT "); ok {
						selects[strings.Trim(strings.Fields(name)[0], `"`)]++
					}
				}
				failed := ""
				for _, b := range boxes {
					if n := selects[strings.ToUpper(srv.Name(b))]; n != 1 {
						failed += fmt.Sprintf("%s selected %d times, want once: %v; ", b, n, selects)
					}
				}
				if n := strings.Count(e.trace.String(), "* PREAUTH"); n > len(boxes) {
					failed += fmt.Sprintf("%d connections for %d mailboxes", n, len(boxes))
				}
				if failed == "" {
					return
				}
				why = append(why, failed)
			}
			t.Errorf("in each of 3 syncs:\n%s", strings.Join(why, "\n"))
		})
	}
}

// writeOrder records when a mailbox's flag changes and expunge are sent
// and when their answers are waited for.
type writeOrder struct {
	satsync.Remote
	log *[]string
}

func (w writeOrder) StartStore(ctx context.Context, changes []mail.FlagChange) func() (map[mail.UID]mail.RemoteMessage, error) {
	*w.log = append(*w.log, "store sent")
	wait := w.Remote.StartStore(ctx, changes)
	return func() (map[mail.UID]mail.RemoteMessage, error) {
		*w.log = append(*w.log, "store awaited")
		return wait()
	}
}

func (w writeOrder) StartExpunge(ctx context.Context, uids []mail.UID) func() error {
	*w.log = append(*w.log, "expunge sent")
	wait := w.Remote.StartExpunge(ctx, uids)
	return func() error {
		*w.log = append(*w.log, "expunge awaited")
		return wait()
	}
}

func (w writeOrder) Store(ctx context.Context, changes []mail.FlagChange) (map[mail.UID]mail.RemoteMessage, error) {
	*w.log = append(*w.log, "store")
	return w.Remote.Store(ctx, changes)
}

func (w writeOrder) Expunge(ctx context.Context, uids []mail.UID) error {
	*w.log = append(*w.log, "expunge")
	return w.Remote.Expunge(ctx, uids)
}

// TestWritesInOneRoundTrip: after a mail reader's day (two new files, a
// flag changed, a file deleted), the sync sends the STORE and the
// expunge before it waits for either answer; the check of its own
// writes, after them, still vouches for them, so that the next sync is a
// no-op.
func TestWritesInOneRoundTrip(t *testing.T) {
	for _, mode := range serverModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			e := twoWayDay(t, mode.start(t))
			var log []string
			e.wrap = func(r satsync.Remote) satsync.Remote { return writeOrder{Remote: r, log: &log} }
			assertWrote(t, e.mustSync())
			if want := []string{"store sent", "expunge sent", "store awaited", "expunge awaited"}; !slices.Equal(log, want) {
				t.Errorf("writes %q, want %q", log, want)
			}
			e.wrap = nil
			e.assertNoOp(e.mustSync())
			e.assertMirror(false)
		})
	}
}

// selectOrder records the SELECTs apply sends and the APPENDs.
type selectOrder struct {
	satsync.Remote
	log *[]string
}

func (s selectOrder) StartSelect(ctx context.Context, name string) func() (mail.MailboxStatus, error) {
	*s.log = append(*s.log, "select "+name)
	wait := s.Remote.StartSelect(ctx, name)
	return func() (mail.MailboxStatus, error) {
		*s.log = append(*s.log, "selected "+name)
		return wait()
	}
}

func (s selectOrder) AppendBatch(ctx context.Context, mailbox string, msgs []mail.Outgoing) ([]mail.Appended, error) {
	*s.log = append(*s.log, "append "+mailbox)
	return s.Remote.AppendBatch(ctx, mailbox, msgs)
}

// TestSelectWithAppends: a mailbox that is not selected when its plan is
// applied, and whose plan starts with uploads, gets its new local message
// appended in the round trip of the SELECT, whose answer is awaited after
// the APPEND is sent. Both messages arrive, and the next sync is a no-op.
func TestSelectWithAppends(t *testing.T) {
	for _, mode := range serverModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			srv.CreateMailbox("A")
			srv.Append("INBOX", msg("old"), nil, day)
			srv.Append("A", msg("old in A"), nil, day)
			e := newEnv(t, srv)
			e.opts.Connections = 1
			e.mustSync()
			e.writeLocal("INBOX", msg("new"), mail.NewFlags())
			e.writeLocal("A", msg("new in A"), mail.NewFlags())
			var log []string
			e.wrap = func(r satsync.Remote) satsync.Remote { return selectOrder{Remote: r, log: &log} }
			e.mustSync()
			// Each mailbox: its SELECT, its APPEND, the SELECT's answer.
			ok := len(log) > 0 && len(log)%3 == 0
			for i := 0; ok && i < len(log); i += 3 {
				name, _ := strings.CutPrefix(log[i], "select ")
				ok = slices.Equal(log[i:i+3], []string{"select " + name, "append " + name, "selected " + name})
			}
			if !ok {
				t.Errorf("apply sent %q, want for each mailbox its SELECT, its APPEND, then the SELECT's answer", log)
			}
			for _, b := range []string{"INBOX", "A"} {
				if n := len(srv.Messages(b)); n != 2 {
					t.Errorf("%s holds %d messages on the server, want 2", b, n)
				}
			}
			e.wrap = nil
			e.assertNoOp(e.mustSync())
		})
	}
}

// TestSettleAfterDownloads: a run that downloaded sends a NOOP on the
// mailbox each connection still has open, once per mailbox, so that
// Dovecot's next session need not re-read the folder
// (imapremote.Client.Settle); a run that downloaded nothing sends none.
// The connections' clock moves a second at each reading, so that every
// download counts as long enough after its SELECT.
func TestSettleAfterDownloads(t *testing.T) {
	clock := func() func() time.Time {
		var mu gosync.Mutex
		now := time.Now()
		return func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			now = now.Add(time.Second)
			return now
		}
	}
	noops := func(e *env) int {
		n := 0
		for _, c := range e.clientCommands() {
			if c == "NOOP" {
				n++
			}
		}
		return n
	}
	t.Run("one connection", func(t *testing.T) {
		srv := serverModes[0].start(t)
		for _, b := range []string{"A", "B"} {
			srv.CreateMailbox(srv.Name(b))
		}
		for _, b := range []string{"INBOX", "A", "B"} {
			srv.Append(srv.Name(b), msg("in "+b), nil, day)
		}
		e := newEnv(t, srv)
		e.clock = clock()
		e.mustSync()
		// Only the mailbox the connection has open at the end.
		if n := noops(e); n != 1 {
			t.Errorf("a first sync sent %d NOOPs, want 1:\n%s", n, e.trace.String())
		}
		e.mustSync()
		if n := noops(e); n != 0 {
			t.Errorf("a sync with nothing to download sent %d NOOPs", n)
		}
		srv.Append(srv.Name("A"), msg("new in A"), nil, day)
		e.mustSync()
		if n := noops(e); n != 1 {
			t.Errorf("a sync that downloaded in one mailbox sent %d NOOPs, want 1", n)
		}
	})
	t.Run("a download split over connections", func(t *testing.T) {
		srv := serverModes[0].start(t)
		for i := range 600 {
			srv.Append("INBOX", msg(fmt.Sprintf("message %d", i)), nil, day)
		}
		e := newEnv(t, srv)
		e.opts.Connections = 3
		e.clock = clock()
		res := e.mustSync()
		if n := strings.Count(e.trace.String(), "* PREAUTH"); n < 2 {
			t.Fatalf("%d connections: the download was not split", n)
		}
		if res.Mailboxes[0].Downloaded != 600 {
			t.Fatalf("downloaded %d, want 600", res.Mailboxes[0].Downloaded)
		}
		// All have INBOX open; one NOOP settles it.
		if n := noops(e); n != 1 {
			t.Errorf("a first sync over several connections sent %d NOOPs, want 1", n)
		}
	})
}
