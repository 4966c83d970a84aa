package sync_test

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"testing"
	"time"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// metaSpy records the size of every Meta call, on every connection, and
// lets a test act before one of them.
type metaSpy struct {
	satsync.Remote
	mu     *gosync.Mutex
	calls  *[]int
	before func(call int) error
}

func (m metaSpy) Meta(ctx context.Context, uids []mail.UID) ([]mail.RemoteMessage, error) {
	m.mu.Lock()
	call := len(*m.calls)
	*m.calls = append(*m.calls, len(uids))
	m.mu.Unlock()
	if m.before != nil {
		if err := m.before(call); err != nil {
			return nil, err
		}
	}
	return m.Remote.Meta(ctx, uids)
}

// spyMeta wraps e's connections in a metaSpy and returns the calls it
// records.
func spyMeta(e *env, before func(call int) error) func() []int {
	var mu gosync.Mutex
	var calls []int
	e.wrap = func(r satsync.Remote) satsync.Remote {
		return metaSpy{Remote: r, mu: &mu, calls: &calls, before: before}
	}
	return func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), calls...)
	}
}

// streamSeed fills INBOX with n messages of assorted flags, with a few
// UIDs expunged, and a small mailbox beside it; it returns INBOX's UIDs.
func streamSeed(srv serverSeeder, n int) []uint32 {
	var uids []uint32
	for i := range n {
		var flags []string
		if i%2 == 0 {
			flags = append(flags, `\Seen`)
		}
		if i%7 == 0 {
			flags = append(flags, `\Flagged`)
		}
		uids = append(uids, srv.Append("INBOX", msg(fmt.Sprintf("streamed %d", i)), flags, day))
	}
	srv.Expunge("INBOX", uids[3], uids[40], uids[41])
	srv.CreateMailbox(srv.Name("Small"))
	for i := range 5 {
		srv.Append(srv.Name("Small"), msg(fmt.Sprintf("small %d", i)), nil, day)
	}
	return uids
}

type serverSeeder interface {
	Append(mailbox string, body []byte, flags []string, date time.Time) uint32
	Expunge(mailbox string, uids ...uint32)
	CreateMailbox(name string)
	Name(path string) string
}

// TestStreamedFirstSync: the first sync of a mailbox above the streaming
// threshold into an empty folder asks its metadata a window at a time
// over several connections, never the whole mailbox at once; a message
// expunged while the windows are walked is skipped. The Maildir then
// mirrors the server, and with CONDSTORE a sync with nothing new leaves
// every mailbox alone: the folder was found to agree with the index, by
// digest.
func TestStreamedFirstSync(t *testing.T) {
	satsync.SetStreamMin(t, 100)
	satsync.SetStreamWindow(t, 32)
	satsync.SetLeanAgreeMin(t, 1)
	for _, mode := range withCyrus([]serverMode{serverModes[0], serverModes[1], serverModes[3]}) {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			uids := streamSeed(srv, 200)
			e := newEnv(t, srv)
			e.opts.Connections = 3
			late := uids[len(uids)-2]
			calls := spyMeta(e, func(call int) error {
				if call == 2 {
					srv.Expunge("INBOX", late) // in a window not asked yet
				}
				return nil
			})
			res := e.mustSync()
			e.assertMirror(true)
			for _, m := range res.Mailboxes {
				if m.Name == "INBOX" && m.Downloaded != 200-4 {
					t.Errorf("INBOX: downloaded %d, want %d", m.Downloaded, 200-4)
				}
			}
			got := calls()
			if len(got) < (200-4)/32 {
				t.Errorf("metadata asked in %d calls %v, want a window of at most 32 each", len(got), got)
			}
			for _, n := range got {
				if n > 32 {
					t.Fatalf("metadata asked for %d messages at once (calls %v), want windows of at most 32", n, got)
				}
			}
			// The next sync learns of the expunge made during the
			// first, and has nothing to do; the one after that, with
			// CONDSTORE, selects nothing.
			for range 2 {
				res = e.mustSync()
				if down, flags, removed := totals(res); down+flags+removed != 0 {
					t.Errorf("a sync after: downloaded %d, changed %d flags, removed %d", down, flags, removed)
				}
			}
			if mode.name != "memory" {
				e.assertNoOp(res)
			}
			e.assertMirror(false)
		})
	}
}

// cutStreamedFirstSync runs a first sync of 197 messages, streamed in
// windows of 32 over two connections, that fails at the fourth window.
func cutStreamedFirstSync(t *testing.T) (*imaptest.Server, *env) {
	t.Helper()
	satsync.SetStreamMin(t, 100)
	satsync.SetStreamWindow(t, 32)
	srv := serverModes[0].start(t)
	streamSeed(srv, 200)
	e := newEnv(t, srv)
	e.opts.Connections = 2
	calls := spyMeta(e, func(call int) error {
		if call == 3 {
			return errors.New("connection cut")
		}
		return nil
	})
	e.sync()
	if n := len(calls()); n < 4 {
		t.Fatalf("the cut was not reached: %d Meta calls", n)
	}
	return srv, e
}

// TestStreamedFirstSyncCut: a streamed first sync that fails in the
// middle keeps what it downloaded, and the next sync completes it with
// no message twice.
func TestStreamedFirstSyncCut(t *testing.T) {
	_, e := cutStreamedFirstSync(t)
	e.wrap = nil
	e.mustSync()
	e.assertMirror(false)
	e.assertOneFilePerMessage()
}

// TestStreamedFirstSyncResumes: the run after a streamed first sync was cut
// goes on streaming (windows of metadata for the messages not downloaded
// yet, no whole listing), unless something since needs the whole plan: a
// downloaded message expunged on the server (its file goes), a file added
// to the folder (it is uploaded) or one deleted there (so is the message
// on the server).
func TestStreamedFirstSyncResumes(t *testing.T) {
	for _, since := range []string{"nothing", "expunged", "local file", "local deletion"} {
		t.Run(since, func(t *testing.T) {
			srv, e := cutStreamedFirstSync(t)
			before := len(e.rows("INBOX"))
			if before == 0 || before >= 197 {
				t.Fatalf("%d rows after the cut; want some of 197", before)
			}
			switch since {
			case "expunged":
				for u := range e.rows("INBOX") {
					srv.Expunge("INBOX", uint32(u))
					break
				}
			case "local file":
				e.writeLocal("INBOX", []byte("Subject: written meanwhile\n\nhello\n"), mail.NewFlags())
			case "local deletion":
				for _, r := range e.rows("INBOX") {
					if err := e.dir("INBOX").Remove(r.Key); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			calls := spyMeta(e, nil)
			res := e.mustSync()
			asked, biggest := 0, 0
			for _, c := range calls() {
				asked += c
				biggest = max(biggest, c)
			}
			streamed := biggest <= 32 && asked == 197-before
			if want := since == "nothing"; streamed != want {
				t.Errorf("resumed: metadata of %d messages asked, at most %d at a time, %d missing; streamed %v, want %v", asked, biggest, 197-before, streamed, want)
			}
			m := mailboxResult(t, res, "INBOX")
			if since == "local file" && m.Uploaded != 1 {
				t.Errorf("uploaded %d, want the local file", m.Uploaded)
			}
			if since == "local deletion" && m.Deleted != 1 {
				t.Errorf("deleted %d on the server, want the message deleted locally", m.Deleted)
			}
			e.assertMirror(false)
			e.assertOneFilePerMessage()
		})
	}
}

// TestLeanAgreeSeesLocalChange: a folder compared by digest (agreeLean)
// agrees when it holds what the index says, so that the mailbox is left
// alone, and disagrees on a flag changed locally, which is then pushed.
// Each comparison follows a sync of server changes, after which the index
// holds no trusted stamp of the folder.
func TestLeanAgreeSeesLocalChange(t *testing.T) {
	satsync.SetLeanAgreeMin(t, 1)
	srv := serverModes[0].start(t)
	var uids []uint32
	for i := range 10 {
		uids = append(uids, srv.Append("INBOX", msg(fmt.Sprintf("lean %d", i)), []string{`\Seen`}, day))
	}
	e := newEnv(t, srv)
	e.mustSync()
	settle := func() { time.Sleep(100 * time.Millisecond) } // past stampWait

	srv.AddFlags("INBOX", uids[0], `\Answered`)
	e.mustSync()
	settle()
	if m := mailboxResult(t, e.mustSync(), "INBOX"); !m.Unchanged {
		t.Errorf("INBOX not left alone although the folder holds what the index says: %+v", m)
	}

	srv.AddFlags("INBOX", uids[1], `\Answered`)
	e.mustSync()
	key := e.rows("INBOX")[mail.UID(uids[2])].Key
	if _, err := e.dir("INBOX").SetFlags(key, mail.NewFlags(`\Seen`, `\Flagged`)); err != nil {
		t.Fatal(err)
	}
	settle()
	if m := mailboxResult(t, e.mustSync(), "INBOX"); m.Unchanged || m.FlagsPushed != 1 {
		t.Errorf("after a local flag change: unchanged %v, pushed %d flags; want the flag pushed", m.Unchanged, m.FlagsPushed)
	}
	for _, m := range srv.Messages("INBOX") {
		if m.UID == uids[2] && !mail.NewFlags(m.Flags...).Has(mail.FlagFlagged) {
			t.Errorf("UID %d on the server: %v, want \\Flagged", m.UID, m.Flags)
		}
	}
}
