package sync_test

import (
	"context"
	"strings"
	"testing"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// twoWayDay seeds INBOX with four messages (a to d) and syncs, then, as a
// mail reader would, writes two new messages, flags a and deletes c in
// the Maildir. The sync after it uploads, stores and expunges.
func twoWayDay(t *testing.T, srv *imaptest.Server) *env {
	t.Helper()
	for _, s := range []string{"a", "b", "c", "d"} {
		srv.Append("INBOX", msg(s), nil, day)
	}
	e := newEnv(t, srv)
	e.mustSync()
	e.writeLocal("INBOX", msg("new one"), mail.NewFlags(mail.FlagSeen))
	e.writeLocal("INBOX", msg("new two"), mail.NewFlags())
	d := e.dir("INBOX")
	if _, err := d.SetFlags(e.keyOf("INBOX", "a"), mail.NewFlags(mail.FlagSeen, mail.FlagFlagged)); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(e.keyOf("INBOX", "c")); err != nil {
		t.Fatal(err)
	}
	e.backdate()
	return e
}

// assertWrote checks the INBOX result of the sync twoWayDay prepares.
func assertWrote(t *testing.T, res satsync.Result) {
	t.Helper()
	for _, m := range res.Mailboxes {
		if m.Name == "INBOX" && (m.Uploaded != 2 || m.FlagsPushed != 1 || m.Deleted != 1) {
			t.Fatalf("INBOX: uploaded %d, pushed %d flags, deleted %d; want 2, 1, 1", m.Uploaded, m.FlagsPushed, m.Deleted)
		}
	}
}

// assertNoOp checks that the last sync left every mailbox alone and asked
// the server for nothing but the listing.
func (e *env) assertNoOp(res satsync.Result) {
	e.t.Helper()
	for _, c := range e.clientCommands() {
		for _, w := range []string{"SELECT", "EXAMINE", "FETCH", "STATUS ", "SEARCH"} {
			if strings.HasPrefix(c, w) || strings.Contains(c, " "+w) {
				e.t.Fatalf("the sync after a two-way sync sent %q", c)
			}
		}
	}
	for _, m := range res.Mailboxes {
		if !m.Unchanged {
			e.t.Fatalf("%s: not left alone after a sync of its own writes", m.Name)
		}
	}
}

// TestNoOpAfterOwnWrites: a sync that uploaded, stored flags and expunged
// records the server's state past its own writes, checked in one round
// trip without selecting again, so the sync after it selects nothing and
// fetches nothing back. Both sides are still each other's mirror.
func TestNoOpAfterOwnWrites(t *testing.T) {
	for _, mode := range withCyrus(serverModes[:2:2]) {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			e := twoWayDay(t, srv)
			assertWrote(t, e.mustSync())
			var selects, statuses, checks int
			for _, c := range e.clientCommands() {
				switch {
				case strings.HasPrefix(c, "SELECT INBOX"):
					selects++
				case strings.HasPrefix(c, "STATUS INBOX"):
					statuses++
				case strings.Contains(c, "FETCH 1:*") && strings.Contains(c, "CHANGEDSINCE"):
					checks++
				}
			}
			// One SELECT: INBOX, the only mailbox that changed, is still
			// selected when its plan is applied; the check adds one
			// STATUS and one FETCH.
			if selects != 1 || statuses != 1 || checks < 1 {
				t.Fatalf("INBOX: %d SELECTs, %d STATUS, %d CHANGEDSINCE FETCHes; want 1, 1 and at least 1", selects, statuses, checks)
			}
			e.assertNoOp(e.mustSync())
			e.assertMirror(false)

			// The next change is still seen.
			m, _ := serverMsg(srv, "INBOX", "b")
			srv.AddFlags("INBOX", m.UID, `\Answered`)
			res := e.mustSync()
			if res.Mailboxes[0].Unchanged || res.Mailboxes[0].FlagsChanged != 1 {
				t.Fatalf("INBOX after a change on the server: %+v", res.Mailboxes[0])
			}
			e.assertMirror(false)
		})
	}
}

// serverMode is an element of serverModes and otherServers.
type serverMode = struct {
	name  string
	start func(t *testing.T) *imaptest.Server
}

// withCyrus is modes and Cyrus, a server with CONDSTORE and QRESYNC other
// than Dovecot; its tests skip where it is not installed.
func withCyrus(modes []serverMode) []serverMode {
	for _, o := range otherServers {
		if o.name == "cyrus" {
			return append(modes[:len(modes):len(modes)], o)
		}
	}
	panic("no cyrus among otherServers")
}

// afterAppend runs fn once, right after the first AppendBatch of a
// sync, as another client acting while satchel writes.
type afterAppend struct {
	satsync.Remote
	fn func()
}

func (a *afterAppend) AppendBatch(ctx context.Context, mailbox string, msgs []mail.Outgoing) ([]mail.Appended, error) {
	got, err := a.Remote.AppendBatch(ctx, mailbox, msgs)
	if a.fn != nil {
		a.fn()
		a.fn = nil
	}
	return got, err
}

// TestOwnWritesKeepOthers: another client delivers a message, flips a
// flag or expunges a message while satchel writes to the same mailbox.
// The state satchel records must not hide it: the next sync downloads
// the message, sets the flag on the local file, removes the local copy.
func TestOwnWritesKeepOthers(t *testing.T) {
	cases := []struct {
		name   string
		other  func(srv *imaptest.Server)
		expect func(t *testing.T, e *env, res satsync.Result)
	}{
		{"deliver and flag", func(srv *imaptest.Server) {
			srv.Append("INBOX", msg("foreign"), nil, day)
			m, _ := serverMsg(srv, "INBOX", "b")
			srv.AddFlags("INBOX", m.UID, `\Flagged`)
		}, func(t *testing.T, e *env, res satsync.Result) {
			if down, flags, _ := totals(res); down != 1 || flags != 1 {
				t.Fatalf("downloaded %d, changed flags of %d files; want 1 and 1", down, flags)
			}
			f, ok, err := e.dir("INBOX").Find(e.keyOf("INBOX", "b"))
			if err != nil || !ok || !f.Flags.Has(mail.FlagFlagged) {
				t.Fatalf("local b: flags %q, found %v, %v", f.Flags, ok, err)
			}
			e.keyOf("INBOX", "foreign")
		}},
		{"flag only", func(srv *imaptest.Server) {
			m, _ := serverMsg(srv, "INBOX", "d")
			srv.AddFlags("INBOX", m.UID, `\Answered`)
		}, func(t *testing.T, e *env, res satsync.Result) {
			if _, flags, _ := totals(res); flags != 1 {
				t.Fatalf("changed flags of %d files, want 1", flags)
			}
		}},
		{"expunge", func(srv *imaptest.Server) {
			m, _ := serverMsg(srv, "INBOX", "d")
			srv.Expunge("INBOX", m.UID)
		}, func(t *testing.T, e *env, res satsync.Result) {
			if _, _, removed := totals(res); removed != 1 {
				t.Fatalf("removed %d local files, want 1", removed)
			}
		}},
	}
	for _, mode := range withCyrus(serverModes) {
		for _, c := range cases {
			t.Run(mode.name+"/"+c.name, func(t *testing.T) {
				srv := mode.start(t)
				e := twoWayDay(t, srv)
				e.wrap = func(r satsync.Remote) satsync.Remote {
					return &afterAppend{Remote: r, fn: func() { c.other(srv) }}
				}
				assertWrote(t, e.mustSync())
				e.wrap = nil
				res := e.mustSync()
				if res.Mailboxes[0].Unchanged {
					t.Fatal("INBOX left alone: another client's change is hidden")
				}
				c.expect(t, e, res)
				e.assertMirror(false)
			})
		}
	}
}
