package sync_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// TestApplyWhereLearned: with several connections, each mailbox is
// applied on the connection that learned it, where it is still selected:
// the sync after a change in every mailbox selects each of them once, and
// opens no connection for applying.
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
			for _, b := range boxes {
				srv.Append(srv.Name(b), msg("new in "+b), nil, day)
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
			for _, b := range boxes {
				if n := selects[strings.ToUpper(srv.Name(b))]; n != 1 {
					t.Errorf("%s selected %d times, want once: %v", b, n, selects)
				}
			}
			if n := strings.Count(e.trace.String(), "* PREAUTH"); n > len(boxes) {
				t.Errorf("%d connections for %d mailboxes", n, len(boxes))
			}
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
