package sync_test

import (
	"context"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/conflict"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// TestExpungeAgainstFlags: an expunge on one side meets a flag change on
// the other. The expunge wins unless \Flagged was added; then the message
// comes back, once.
func TestExpungeAgainstFlags(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			for _, s := range []string{"server drops, I flag", "server drops, I read", "I drop, server flags", "I drop, server reads"} {
				srv.Append("INBOX", msg(s), nil, day)
			}
			e := newEnv(t, srv)
			e.mustSync()
			d := e.dir("INBOX")

			a, _ := serverMsg(srv, "INBOX", "server drops, I flag")
			b, _ := serverMsg(srv, "INBOX", "server drops, I read")
			srv.Expunge("INBOX", a.UID, b.UID)
			d.SetFlags(e.keyOf("INBOX", "server drops, I flag"), mail.NewFlags(mail.FlagFlagged))
			d.SetFlags(e.keyOf("INBOX", "server drops, I read"), mail.NewFlags(mail.FlagSeen))

			c, _ := serverMsg(srv, "INBOX", "I drop, server flags")
			dd, _ := serverMsg(srv, "INBOX", "I drop, server reads")
			srv.AddFlags("INBOX", c.UID, `\Flagged`)
			srv.AddFlags("INBOX", dd.UID, `\Seen`)
			d.Remove(e.keyOf("INBOX", "I drop, server flags"))
			d.Remove(e.keyOf("INBOX", "I drop, server reads"))

			res := e.mustSync()
			e.assertMirror(false)
			want := map[string]bool{"server drops, I flag": true, "server drops, I read": false, "I drop, server flags": true, "I drop, server reads": false}
			for s, kept := range want {
				if _, ok := serverMsg(srv, "INBOX", s); ok != kept {
					t.Errorf("%q on the server: %v, want %v", s, ok, kept)
				}
			}
			if m, _ := serverMsg(srv, "INBOX", "server drops, I flag"); !mail.NewFlags(m.Flags...).Has(mail.FlagFlagged) {
				t.Errorf("restored message lost its flag: %q", m.Flags)
			}
			if res.Mailboxes[0].Conflicts != 4 {
				t.Errorf("conflicts %d, want 4", res.Mailboxes[0].Conflicts)
			}
			e.assertSettled()

			// Deleting the restored message again is a plain deletion.
			d.Remove(e.keyOf("INBOX", "server drops, I flag"))
			e.mustSync()
			if _, ok := serverMsg(srv, "INBOX", "server drops, I flag"); ok {
				t.Fatal("second deletion of a restored message did not reach the server")
			}
			e.assertSettled()
		})
	}
}

// TestConflictPolicies: sync.conflict remote and local make one side win
// an expunge against a flag change.
func TestConflictPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy     conflict.Policy
		keptRemote bool
	}{{conflict.Remote, false}, {conflict.Local, true}} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			srv := serverModes[0].start(t)
			srv.Append("INBOX", msg("contested"), nil, day)
			e := newEnv(t, srv)
			e.opts.Conflict = tc.policy
			e.mustSync()
			m, _ := serverMsg(srv, "INBOX", "contested")
			srv.Expunge("INBOX", m.UID)
			e.dir("INBOX").SetFlags(e.keyOf("INBOX", "contested"), mail.NewFlags(mail.FlagSeen))
			e.mustSync()
			if _, ok := serverMsg(srv, "INBOX", "contested"); ok != tc.keptRemote {
				t.Fatalf("on the server: %v, want %v", ok, tc.keptRemote)
			}
			e.assertMirror(false)
			e.assertSettled()
		})
	}
}

// TestExpungeNone: with sync.expunge none, deletions on either side stay
// on that side, and the mail never comes back.
func TestExpungeNone(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			srv.Append("INBOX", msg("deleted here"), nil, day)
			srv.Append("INBOX", msg("deleted there"), nil, day)
			e := newEnv(t, srv)
			e.opts.Expunge = "none"
			e.mustSync()
			e.dir("INBOX").Remove(e.keyOf("INBOX", "deleted here"))
			there, _ := serverMsg(srv, "INBOX", "deleted there")
			srv.Expunge("INBOX", there.UID)
			for range 2 {
				res := e.mustSync()
				m := res.Mailboxes[0]
				if m.Downloaded+m.Uploaded+m.Deleted+m.Removed != 0 {
					t.Fatalf("a kept-on-one-side message crossed over: %+v", m)
				}
			}
			if _, ok := serverMsg(srv, "INBOX", "deleted here"); !ok {
				t.Fatal("the server lost a message deleted locally")
			}
			e.keyOf("INBOX", "deleted there") // still local
			if n, _ := e.dir("INBOX").Count(); n != 1 {
				t.Fatalf("%d local files, want 1", n)
			}
			// States are in the index.
			mb, _, _ := e.ix.Mailbox(context.Background(), "INBOX")
			rows, _ := e.ix.Messages(context.Background(), mb.ID, mb.UIDValidity)
			states := map[mail.State]int{}
			for _, r := range rows {
				states[r.State]++
			}
			if states[mail.StateLocalOnly] != 1 || states[mail.StateRemoteOnly] != 1 {
				t.Fatalf("index states %v", states)
			}
		})
	}
}

// TestDirections: pull never changes the server, push never the Maildir.
func TestDirections(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			srv.Append("INBOX", msg("a"), nil, day)
			srv.Append("INBOX", msg("b"), nil, day)
			e := newEnv(t, srv)
			e.mustSync()

			// pull: local changes stay local.
			e.opts.Direction = "pull"
			e.dir("INBOX").SetFlags(e.keyOf("INBOX", "a"), mail.NewFlags(mail.FlagSeen))
			e.dir("INBOX").Remove(e.keyOf("INBOX", "b"))
			e.writeLocal("INBOX", []byte("Subject: local\n\nx\n"), mail.NewFlags())
			before := srv.Messages("INBOX")
			e.mustSync()
			e.mustSync()
			for _, line := range strings.Split(e.trace.String(), "\n") {
				for _, cmd := range []string{" STORE ", "APPEND", "EXPUNGE", " MOVE ", " COPY "} {
					if strings.HasPrefix(line, "C: ") && strings.Contains(line, cmd) {
						t.Fatalf("pull sent %s", line)
					}
				}
			}
			if after := srv.Messages("INBOX"); len(after) != len(before) {
				t.Fatalf("pull changed the server: %d -> %d messages", len(before), len(after))
			}
			if n, _ := e.dir("INBOX").Count(); n != 2 {
				t.Fatalf("pull brought back a deleted message or lost one: %d files", n)
			}

			// push: server changes stay on the server; local ones go up.
			e.opts.Direction = "push"
			srv.Append("INBOX", msg("from the phone"), nil, day)
			m, _ := serverMsg(srv, "INBOX", "a")
			srv.AddFlags("INBOX", m.UID, `\Answered`)
			e.dir("INBOX").SetFlags(e.keyOf("INBOX", "a"), mail.NewFlags(mail.FlagSeen, mail.FlagFlagged))
			snap := e.snapshot()
			e.mustSync()
			// The flag rename is the user's own; after the sync nothing
			// else may have changed locally.
			if e.snapshot() != snap {
				t.Fatal("push changed the Maildir")
			}
			if m, _ := serverMsg(srv, "INBOX", "a"); !mail.NewFlags(m.Flags...).Equal(mail.NewFlags(mail.FlagSeen, mail.FlagFlagged, mail.FlagAnswered)) {
				t.Fatalf("push: server flags %q", m.Flags)
			}
			e.mustSync()
			if m, _ := serverMsg(srv, "INBOX", "a"); !mail.NewFlags(m.Flags...).Has(mail.FlagAnswered) {
				t.Fatal("a second push undid the server's change")
			}
		})
	}
}

// racingRemote changes a message on the server between the sync's
// reading of its flags and its STORE, as another client would.
type racingRemote struct {
	satsync.Remote
	race func()
	done bool
}

func (r *racingRemote) Store(ctx context.Context, changes []mail.FlagChange) (map[mail.UID]mail.RemoteMessage, error) {
	if !r.done {
		r.done = true
		r.race()
	}
	return r.Remote.Store(ctx, changes)
}

func (r *racingRemote) StartStore(ctx context.Context, changes []mail.FlagChange) func() (map[mail.UID]mail.RemoteMessage, error) {
	if !r.done {
		r.done = true
		r.race()
	}
	return r.Remote.StartStore(ctx, changes)
}

// TestConcurrentServerChange: with CONDSTORE, a flag change made on the
// server while satchel stores its own is not overwritten: the STORE is
// refused (UNCHANGEDSINCE), merged again, and both changes stand.
func TestConcurrentServerChange(t *testing.T) {
	for _, mode := range serverModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			srv.Append("INBOX", msg("busy"), []string{`\Seen`}, day)
			e := newEnv(t, srv)
			e.mustSync()
			m, _ := serverMsg(srv, "INBOX", "busy")
			e.wrap = func(r satsync.Remote) satsync.Remote {
				return &racingRemote{Remote: r, race: func() { srv.SetFlags("INBOX", m.UID, `\Seen`, `\Answered`) }}
			}
			e.dir("INBOX").SetFlags(e.keyOf("INBOX", "busy"), mail.NewFlags(mail.FlagSeen, mail.FlagFlagged))
			e.mustSync()
			if !strings.Contains(e.trace.String(), "UNCHANGEDSINCE") {
				t.Fatal("STORE was not conditional")
			}
			got, _ := serverMsg(srv, "INBOX", "busy")
			want := mail.NewFlags(mail.FlagSeen, mail.FlagFlagged, mail.FlagAnswered)
			if !mail.NewFlags(got.Flags...).Equal(want) {
				t.Fatalf("server flags %q, want %q", got.Flags, want)
			}
			e.wrap = nil
			e.mustSync()
			e.assertMirror(false)
			e.assertSettled()
		})
	}
}
