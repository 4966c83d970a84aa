package sync_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/conflict"
	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

var day = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func msg(subject string) []byte {
	return []byte("From: someone@example.org\r\nTo: me@example.org\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.org>\r\n\r\nBody of " + subject + "\r\n")
}

// keyOf returns the Maildir key of the local copy of a message, found by
// its Subject.
func (e *env) keyOf(mailbox, subject string) string {
	e.t.Helper()
	d := e.dir(mailbox)
	ents, err := d.Scan()
	if err != nil {
		e.t.Fatal(err)
	}
	for k, ent := range ents {
		b, err := os.ReadFile(ent.Path(d))
		if err != nil {
			e.t.Fatal(err)
		}
		if bytes.Contains(b, []byte("Subject: "+subject+"\n")) {
			return k
		}
	}
	e.t.Fatalf("%s: no local message %q", mailbox, subject)
	return ""
}

// serverMsg returns the server's copy of a message by Subject, or false.
func serverMsg(srv *imaptest.Server, mailbox, subject string) (imaptest.Message, bool) {
	for _, m := range srv.Messages(mailbox) {
		if bytes.Contains(m.Body, []byte("Subject: "+subject+"\r\n")) {
			return m, true
		}
	}
	return imaptest.Message{}, false
}

// writeLocal writes a new message into a folder as a mail reader would.
func (e *env) writeLocal(mailbox string, body []byte, flags mail.Flags) string {
	e.t.Helper()
	d := e.dir(mailbox)
	if err := d.Init(); err != nil {
		e.t.Fatal(err)
	}
	del, err := d.Deliver(context.Background(), bytes.NewReader(body), flags, day)
	if err != nil {
		e.t.Fatal(err)
	}
	return del.Key
}

// assertSettled runs one more sync and checks it changes nothing on
// either side.
func (e *env) assertSettled() {
	e.t.Helper()
	before := e.snapshot()
	res := e.mustSync()
	for _, m := range res.Mailboxes {
		if m.Downloaded+m.Uploaded+m.FlagsChanged+m.FlagsPushed+m.Removed+m.Deleted+m.Moved != 0 {
			e.t.Fatalf("sync after settling did work in %s: %+v", m.Name, m)
		}
	}
	if e.snapshot() != before {
		e.t.Fatal("sync after settling changed the Maildir")
	}
}

// assertOnlyAdvertised checks from the trace that the client used no
// extension the server did not advertise.
func (e *env) assertOnlyAdvertised(mode string) {
	e.t.Helper()
	var forbidden []string
	switch mode {
	case "dovecot-plain":
		forbidden = []string{"CONDSTORE", "CHANGEDSINCE", "UNCHANGEDSINCE", "MODSEQ", "RETURN (", "UID MOVE", "UID EXPUNGE", "QRESYNC", "ENABLE"}
	case "dovecot-condstore":
		forbidden = []string{"QRESYNC"}
	case "memory", "memory-renumbering":
		forbidden = []string{"CONDSTORE", "CHANGEDSINCE", "UNCHANGEDSINCE", "MODSEQ", "QRESYNC"}
	case "courier":
		// imaptest.CapsCourier, and ENABLE, which imapd adds.
		forbidden = []string{"CONDSTORE", "CHANGEDSINCE", "UNCHANGEDSINCE", "MODSEQ", "RETURN (", "UID MOVE", "QRESYNC"}
	}
	for _, line := range strings.Split(e.trace.String(), "\n") {
		if !strings.HasPrefix(line, "C: ") {
			continue
		}
		for _, f := range forbidden {
			if strings.Contains(strings.ToUpper(line), f) {
				e.t.Fatalf("%s: client sent %q, which the server did not advertise: %s", mode, f, line)
			}
		}
	}
}

// TestTwoWayStory walks through a day with mutt: each step changes the
// Maildir, the server or both, then syncs and checks both sides. It runs
// on every server: the folders live under a namespace prefix on some, and
// the moves to Trash and Archive are COPY and EXPUNGE where MOVE is
// missing (Courier).
func TestTwoWayStory(t *testing.T) {
	for _, mode := range withOthers(serverModes) {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			for _, box := range []string{"Archive", "Sent", "Drafts", "Trash"} {
				srv.CreateMailbox(srv.Name(box))
			}
			for _, s := range []string{"hello", "invoice", "newsletter", "meeting", "old thread", "flag me", "gone soon"} {
				srv.Append("INBOX", msg(s), nil, day)
			}
			kw, _ := serverMsg(srv, "INBOX", "newsletter")
			srv.AddFlags("INBOX", kw.UID, "$label1")
			e := newEnv(t, srv)
			e.mustSync()
			e.assertMirror(true)

			// mutt: mark read, flag, and reply (answered + a sent copy);
			// postpone a draft.
			d := e.dir("INBOX")
			if _, err := d.SetFlags(e.keyOf("INBOX", "hello"), mail.NewFlags(mail.FlagSeen)); err != nil {
				t.Fatal(err)
			}
			if _, err := d.SetFlags(e.keyOf("INBOX", "invoice"), mail.NewFlags(mail.FlagFlagged)); err != nil {
				t.Fatal(err)
			}
			if _, err := d.SetFlags(e.keyOf("INBOX", "newsletter"), mail.NewFlags(mail.FlagSeen)); err != nil {
				t.Fatal(err)
			}
			if _, err := d.SetFlags(e.keyOf("INBOX", "meeting"), mail.NewFlags(mail.FlagSeen, mail.FlagAnswered)); err != nil {
				t.Fatal(err)
			}
			sent := []byte("From: me@example.org\nTo: boss@example.org\nSubject: Re: meeting\nMessage-ID: <reply.1@example.org>\n\nSee you there.\n")
			e.writeLocal("Sent", sent, mail.NewFlags(mail.FlagSeen))
			draft := []byte("From: me@example.org\nSubject: unfinished\n\nDear ...\n")
			e.writeLocal("Drafts", draft, mail.NewFlags(mail.FlagDraft, mail.FlagSeen))
			// Meanwhile on the phone: "hello" flagged, "old thread" read.
			h, _ := serverMsg(srv, "INBOX", "hello")
			srv.AddFlags("INBOX", h.UID, `\Flagged`)
			ot, _ := serverMsg(srv, "INBOX", "old thread")
			srv.AddFlags("INBOX", ot.UID, `\Seen`)

			res := e.mustSync()
			e.assertMirror(false)
			e.assertOnlyAdvertised(mode.name)
			checkFlags := func(box, subject string, want ...string) {
				t.Helper()
				m, ok := serverMsg(srv, box, subject)
				if !ok {
					t.Fatalf("%s: %q missing on the server", box, subject)
				}
				if got := mail.NewFlags(m.Flags...); !got.Equal(mail.NewFlags(want...)) {
					t.Fatalf("%s: %q has flags %q on the server, want %q", box, subject, got, mail.NewFlags(want...))
				}
			}
			checkFlags("INBOX", "hello", `\Seen`, `\Flagged`)
			checkFlags("INBOX", "invoice", `\Flagged`)
			checkFlags("INBOX", "newsletter", `\Seen`, "$label1") // the keyword survives
			checkFlags("INBOX", "meeting", `\Seen`, `\Answered`)
			checkFlags("INBOX", "old thread", `\Seen`)
			s, ok := serverMsg(srv, srv.Name("Sent"), "Re: meeting")
			if !ok || !bytes.Equal(s.Body, bytes.ReplaceAll(sent, []byte("\n"), []byte("\r\n"))) {
				t.Fatalf("sent copy on the server: %q (found %v)", s.Body, ok)
			}
			if !s.Date.Equal(day) {
				t.Fatalf("sent copy INTERNALDATE %v, want the file's mtime %v", s.Date, day)
			}
			checkFlags(srv.Name("Drafts"), "unfinished", `\Draft`, `\Seen`)
			var up int
			for _, m := range res.Mailboxes {
				up += m.Uploaded
			}
			if up != 2 {
				t.Fatalf("uploaded %d, want 2", up)
			}
			e.assertSettled()

			// mutt: delete with $trash (the file moves to the Trash
			// folder), save to Archive (a copy under a new name, the
			// original removed), and delete outright.
			if err := os.Rename(filepath.Join(d.Path, "cur", fileName(t, d, e.keyOf("INBOX", "newsletter"))),
				filepath.Join(e.dir("Trash").Path, "cur", fileName(t, d, e.keyOf("INBOX", "newsletter")))); err != nil {
				t.Fatal(err)
			}
			invKey := e.keyOf("INBOX", "invoice")
			body, _ := os.ReadFile(filepath.Join(d.Path, dirOf(t, d, invKey), fileName(t, d, invKey)))
			e.writeLocal("Archive", body, mail.NewFlags(mail.FlagFlagged))
			if err := d.Remove(invKey); err != nil {
				t.Fatal(err)
			}
			if err := d.Remove(e.keyOf("INBOX", "meeting")); err != nil {
				t.Fatal(err)
			}
			res = e.mustSync()
			e.assertMirror(false)
			e.assertOnlyAdvertised(mode.name)
			if _, ok := serverMsg(srv, "INBOX", "newsletter"); ok {
				t.Fatal("trashed message still in INBOX on the server")
			}
			checkFlags(srv.Name("Trash"), "newsletter", `\Seen`, "$label1")
			checkFlags(srv.Name("Archive"), "invoice", `\Flagged`)
			if _, ok := serverMsg(srv, "INBOX", "meeting"); ok {
				t.Fatal("deleted message still on the server")
			}
			var moved, uploaded int
			for _, m := range res.Mailboxes {
				moved += m.Moved
				uploaded += m.Uploaded
			}
			if moved != 2 || uploaded != 0 {
				t.Fatalf("moved %d and uploaded %d, want 2 moves and no upload", moved, uploaded)
			}
			e.assertSettled()
		})
	}
}

func fileName(t *testing.T, d maildir.Dir, key string) string {
	t.Helper()
	ent, ok, err := d.Find(key)
	if err != nil || !ok {
		t.Fatalf("find %s: %v", key, err)
	}
	return ent.Name
}

func dirOf(t *testing.T, d maildir.Dir, key string) string {
	t.Helper()
	ent, ok, err := d.Find(key)
	if err != nil || !ok {
		t.Fatalf("find %s: %v", key, err)
	}
	return ent.Subdir
}

var _ = satsync.Options{}
var _ = conflict.Merge
