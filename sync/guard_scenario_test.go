package sync_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// appendN appends n messages to mailbox and returns their UIDs.
func appendN(srv *imaptest.Server, mailbox string, n int) []uint32 {
	msgs := make([]imaptest.Message, n)
	for i := range msgs {
		msgs[i] = imaptest.Message{Flags: []string{`\Seen`}, Date: day, Body: msg(fmt.Sprintf("%s %d", mailbox, i))}
	}
	return srv.AppendMany(mailbox, msgs)
}

func (e *env) localCount(mailbox string) int {
	e.t.Helper()
	files, err := e.dir(mailbox).Scan()
	if err != nil {
		e.t.Fatal(err)
	}
	return len(files)
}

// mailboxResult returns the result of one mailbox.
func mailboxResult(t *testing.T, res satsync.Result, name string) satsync.MailboxResult {
	t.Helper()
	for _, m := range res.Mailboxes {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no result for %s", name)
	return satsync.MailboxResult{}
}

// TestHeldRemovalLasts: the server expunges 30 of 40 messages. The sync
// keeps the 30 files and says why; so does the next one, although the
// server reports the expunges only once (QRESYNC, CONDSTORE); a forced
// sync removes them.
func TestHeldRemovalLasts(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			e := newEnv(t, srv)
			e.opts.MaxDelete = &satsync.DeleteLimit{Percent: 25, Min: 10}
			uids := appendN(srv, "INBOX", 40)
			e.mustSync()
			srv.Expunge("INBOX", uids[:30]...)
			srv.Append("INBOX", msg("after"), nil, day)

			for run := range 2 {
				// Past the clock tick after the last run's changes, as
				// a sync minutes later: the folder's stamp can be
				// trusted, and must not hide what was held.
				settle()
				res := e.mustSync()
				m := mailboxResult(t, res, "INBOX")
				if !errors.Is(m.Safety, satsync.ErrTooManyDeletions) || m.Held != 30 || m.Removed != 0 {
					t.Fatalf("run %d: Safety %v, Held %d, Removed %d; want the 30 removals held", run, m.Safety, m.Held, m.Removed)
				}
				if n := e.localCount("INBOX"); n != 41 {
					t.Fatalf("run %d: %d local files, want 41 (40 kept, 1 downloaded)", run, n)
				}
			}
			mb, _, err := e.ix.Mailbox(context.Background(), "INBOX")
			if err != nil {
				t.Fatal(err)
			}
			rows, err := e.ix.Messages(context.Background(), mb.ID, mb.UIDValidity)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range uids[:30] {
				if r, ok := rows[mail.UID(u)]; !ok || r.State != mail.StateHeld {
					t.Fatalf("UID %d: row %+v (present %v), want held", u, r, ok)
				}
			}

			e.opts.Force = true
			settle()
			m := mailboxResult(t, e.mustSync(), "INBOX")
			if m.Safety != nil || m.Removed != 30 {
				t.Fatalf("forced: Safety %v, Removed %d; want 30 removed", m.Safety, m.Removed)
			}
			e.opts.Force = false
			e.assertMirror(false)
			e.assertSettled()
		})
	}
}

// TestHeldServerDeletion: 30 of 40 files deleted locally are not deleted
// on the server, run after run, while the rest of the mailbox syncs; a
// forced sync deletes them.
func TestHeldServerDeletion(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			e := newEnv(t, srv)
			e.opts.MaxDelete = &satsync.DeleteLimit{Percent: 25, Min: 10}
			appendN(srv, "INBOX", 40)
			e.mustSync()
			d := e.dir("INBOX")
			files, err := d.Scan()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, f := range files {
				if n == 30 {
					break
				}
				if err := os.Remove(f.Path(d)); err != nil {
					t.Fatal(err)
				}
				n++
			}
			srv.Append("INBOX", msg("after"), nil, day)
			for run := range 2 {
				m := mailboxResult(t, e.mustSync(), "INBOX")
				if !errors.Is(m.Safety, satsync.ErrTooManyDeletions) || m.Held != 30 || m.Deleted != 0 {
					t.Fatalf("run %d: Safety %v, Held %d, Deleted %d; want the 30 deletions held", run, m.Safety, m.Held, m.Deleted)
				}
				if got := len(srv.Messages("INBOX")); got != 41 {
					t.Fatalf("run %d: the server has %d messages, want 41", run, got)
				}
				if got := e.localCount("INBOX"); got != 11 {
					t.Fatalf("run %d: %d local files, want 11 (the new message downloaded, nothing restored)", run, got)
				}
			}
			e.opts.Force = true
			m := mailboxResult(t, e.mustSync(), "INBOX")
			if m.Safety != nil || m.Deleted != 30 {
				t.Fatalf("forced: Safety %v, Deleted %d; want 30 deleted", m.Safety, m.Deleted)
			}
			e.opts.Force = false
			e.assertMirror(false)
			e.assertSettled()
		})
	}
}
