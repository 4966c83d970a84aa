package sync_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// seed fills the nested mailboxes with a generated corpus, n messages in
// all, spread round-robin.
func seed(t *testing.T, srv *imaptest.Server, n, big int) {
	t.Helper()
	msgs := imaptest.Corpus(imaptest.CorpusOptions{Seed: 7, Messages: n, BigAttachments: big})
	byBox := map[string][]imaptest.Message{}
	for i, m := range msgs {
		box := imaptest.NestedMailboxes[i%len(imaptest.NestedMailboxes)]
		byBox[box] = append(byBox[box], m)
	}
	for _, box := range imaptest.NestedMailboxes {
		if box != "INBOX" {
			srv.CreateMailbox(srv.Name(box))
		}
		srv.AppendMany(srv.Name(box), byBox[box])
	}
}

// TestPullStory is the foundation's story, in every server mode: a first
// sync mirrors the server; a second transfers and changes nothing; after
// flag changes, new mail and expunges on the server, a third mirrors
// exactly that.
func TestPullStory(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			seed(t, srv, 120, 1)
			e := newEnv(t, srv)
			e.opts.Connections = 3

			res := e.mustSync()
			if down, _, _ := totals(res); down != 120 {
				t.Fatalf("first sync downloaded %d messages, want 120", down)
			}
			e.assertMirror(true)

			before := e.snapshot()
			res = e.mustSync()
			if down, flags, removed := totals(res); down+flags+removed != 0 {
				t.Fatalf("second sync: %d downloaded, %d flag updates, %d removed; want nothing", down, flags, removed)
			}
			if strings.Contains(e.trace.String(), "BODY.PEEK[]") {
				t.Fatalf("second sync fetched message bodies:\n%s", e.trace.String())
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("second sync changed the Maildir:\nbefore:\n%s\nafter:\n%s", before, after)
			}

			// The server changes: flags on both sides of \Seen, a keyword,
			// new mail in two mailboxes, expunges.
			inbox := srv.Messages("INBOX")
			srv.SetFlags("INBOX", inbox[0].UID, `\Seen`, `\Flagged`)
			srv.SetFlags("INBOX", inbox[1].UID)
			srv.AddFlags("INBOX", inbox[2].UID, `$label1`, `\Answered`)
			srv.Expunge("INBOX", inbox[3].UID, inbox[4].UID)
			srv.Append("INBOX", []byte("From: a@example.org\r\nSubject: new\r\n\r\nhello\r\n"), nil, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			srv.Append("Work/Projects/Ünïcödé", []byte("Subject: neu\r\n\r\nHallo\r\n"), []string{`\Seen`}, time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC))
			arch := srv.Messages("Archive/2023")
			srv.Expunge("Archive/2023", arch[len(arch)-1].UID)

			res = e.mustSync()
			down, _, removed := totals(res)
			if down != 2 || removed != 3 {
				t.Fatalf("third sync: %d downloaded, %d removed; want 2 and 3", down, removed)
			}
			e.assertMirror(false)

			// And once more: nothing left to do.
			before = e.snapshot()
			res = e.mustSync()
			if down, flags, removed := totals(res); down+flags+removed != 0 {
				t.Fatalf("fourth sync: %d downloaded, %d flag updates, %d removed; want nothing", down, flags, removed)
			}
			if after := e.snapshot(); after != before {
				t.Fatal("fourth sync changed the Maildir")
			}
		})
	}
}

// TestBigAccount is the foundation's acceptance run: a few thousand
// messages in nested and non-ASCII mailboxes, some with attachments of
// several MB, against Dovecot.
func TestBigAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a few thousand messages")
	}
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	seed(t, srv, 2500, 4)
	e := newEnv(t, srv)
	res := e.mustSync()
	if down, _, _ := totals(res); down != 2500 {
		t.Fatalf("downloaded %d, want 2500", down)
	}
	e.assertMirror(true)
	before := e.snapshot()
	e.mustSync()
	if strings.Contains(e.trace.String(), "BODY.PEEK[]") {
		t.Fatal("second sync fetched bodies")
	}
	if e.snapshot() != before {
		t.Fatal("second sync changed the Maildir")
	}
}

// TestLocalFlagsSurviveRemoteChange: the user flags a message in mutt
// while the server marks it answered; the pull keeps both.
func TestLocalFlagsSurviveRemoteChange(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			uid := srv.Append("INBOX", []byte("Subject: x\r\n\r\nbody\r\n"), []string{`\Seen`}, time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC))
			e := newEnv(t, srv)
			e.mustSync()

			d := e.dir("INBOX")
			files, _ := d.Scan()
			var key string
			for k := range files {
				key = k
			}
			if _, err := d.SetFlags(key, mail.NewFlags(mail.FlagSeen, mail.FlagFlagged)); err != nil {
				t.Fatal(err)
			}
			srv.AddFlags("INBOX", uid, `\Answered`)
			e.mustSync()

			ent, ok, err := d.Find(key)
			if err != nil || !ok {
				t.Fatalf("file gone: %v", err)
			}
			want := mail.NewFlags(mail.FlagSeen, mail.FlagFlagged, mail.FlagAnswered)
			if !ent.Flags.Equal(want) {
				t.Fatalf("local flags %q, want %q", ent.Flags, want)
			}
		})
	}
}

// TestUIDValidityChangeReassociates: a mailbox renumbered on the server
// (deleted and recreated with the same mail, as a server migration does)
// is re-associated message by message: nothing is downloaded again,
// offline flag changes and deletions made before the sync still apply, a
// message the server lost in the renumbering stays local and is not
// uploaded, and only the really new message is downloaded.
func TestUIDValidityChangeReassociates(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.CreateMailbox("Lists")
	subjects := []string{"one", "two", "three", "dup", "dup", "lost in migration"}
	for _, s := range subjects {
		srv.Append("Lists", msg(s), nil, day)
	}
	srv.Append("INBOX", msg("inbox"), nil, day)
	e := newEnv(t, srv)
	e.mustSync()

	// Offline: flag "one", delete "two".
	d := e.dir("Lists")
	d.SetFlags(e.keyOf("Lists", "one"), mail.NewFlags(mail.FlagFlagged))
	d.Remove(e.keyOf("Lists", "two"))

	old := srv.UIDValidity("Lists")
	deleteMailbox(t, srv, "Lists")
	srv.CreateMailbox("Lists")
	if srv.UIDValidity("Lists") == old {
		t.Skip("the server reused the UIDVALIDITY")
	}
	for _, s := range subjects[:5] {
		srv.Append("Lists", msg(s), nil, day)
	}
	srv.Append("Lists", msg("new after migration"), nil, day)

	res := e.mustSync()
	var lists satsync.MailboxResult
	for _, m := range res.Mailboxes {
		if m.Name == "Lists" {
			lists = m
		}
	}
	if lists.Reassociated != 5 || lists.Downloaded != 1 || lists.Uploaded != 0 {
		t.Fatalf("Lists: reassociated %d, downloaded %d, uploaded %d; want 5, 1, 0", lists.Reassociated, lists.Downloaded, lists.Uploaded)
	}
	if m, ok := serverMsg(srv, "Lists", "one"); !ok || !mail.NewFlags(m.Flags...).Has(mail.FlagFlagged) {
		t.Fatal("the offline flag change did not reach the renumbered message")
	}
	if _, ok := serverMsg(srv, "Lists", "two"); ok {
		t.Fatal("the offline deletion did not reach the renumbered message")
	}
	e.keyOf("Lists", "lost in migration") // still here locally
	if _, ok := serverMsg(srv, "Lists", "lost in migration"); ok {
		t.Fatal("a message kept locally was uploaded")
	}
	e.assertSettled()
}

// failingRemote cuts every message body after a few bytes, as a dropped
// connection would.
type failingRemote struct{ satsync.Remote }

func (f failingRemote) FetchBodies(ctx context.Context, msgs []mail.RemoteMessage, fn func(mail.UID, int64, io.Reader) error) error {
	return f.Remote.FetchBodies(ctx, msgs, func(uid mail.UID, size int64, body io.Reader) error {
		err := fn(uid, size, io.MultiReader(io.LimitReader(body, 10), errReader{}))
		io.Copy(io.Discard, body)
		return err
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// TestFailedDownloadLeavesNothing: a body cut off midway leaves no file in
// new/ or cur/ and no index row; the next sync downloads it whole.
func TestFailedDownloadLeavesNothing(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.Append("INBOX", []byte("Subject: cut\r\n\r\n"+strings.Repeat("line\r\n", 1000)), nil, time.Now().Truncate(time.Second))
	e := newEnv(t, srv)
	e.wrap = func(r satsync.Remote) satsync.Remote { return failingRemote{r} }
	res := e.sync()
	if len(res.Mailboxes) != 1 || res.Mailboxes[0].Err == nil {
		t.Fatalf("want INBOX to fail, got %+v", res)
	}
	for _, sub := range []string{"new", "cur", "tmp"} {
		ents, err := os.ReadDir(e.dir("INBOX").Path + "/" + sub)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			t.Fatalf("%s/ holds %d files after a failed download", sub, len(ents))
		}
	}
	e.wrap = nil
	e.mustSync()
	e.assertMirror(true)
}

// TestFullModeNeverUsesCondStore: against a server without CONDSTORE the
// trace shows no CONDSTORE, CHANGEDSINCE or MODSEQ, and flag changes are
// still found.
func TestFullModeNeverUsesCondStore(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: imaptest.CapsPlain})
	uid := srv.Append("INBOX", []byte("Subject: a\r\n\r\nA\r\n"), nil, time.Now().Truncate(time.Second))
	e := newEnv(t, srv)
	e.mustSync()
	srv.SetFlags("INBOX", uid, `\Seen`)
	res := e.mustSync()
	if res.Mode != mail.ModeFull {
		t.Fatalf("mode %s, want full", res.Mode)
	}
	for _, word := range []string{"CONDSTORE", "CHANGEDSINCE", "MODSEQ", "ESEARCH", "RETURN ("} {
		for _, line := range strings.Split(e.trace.String(), "\n") {
			if strings.HasPrefix(line, "C: ") && strings.Contains(strings.ToUpper(line), word) {
				t.Fatalf("client used %s, which the server did not advertise: %s", word, line)
			}
		}
	}
	e.assertMirror(true)
}

// TestCondStoreNoOpFetchesNothing: with CONDSTORE, a sync that has to
// look at a mailbox (its folder's stamp changed, nothing else did)
// selects it but issues no FETCH and no SEARCH.
func TestCondStoreNoOpFetchesNothing(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: imaptest.CapsCondStoreOnly})
	seed(t, srv, 30, 0)
	e := newEnv(t, srv)
	e.mustSync()
	e.backdate()
	e.mustSync()
	for _, line := range strings.Split(e.trace.String(), "\n") {
		if strings.HasPrefix(line, "C: ") && (strings.Contains(line, "FETCH") || strings.Contains(line, "SEARCH")) {
			t.Fatalf("no-op sync sent %s", line)
		}
	}
	if !strings.Contains(e.trace.String(), "(CONDSTORE)") {
		t.Fatal("SELECT without CONDSTORE against a CONDSTORE server")
	}
}

// deleteMailbox deletes a mailbox over a connection of its own (Dovecot
// sessions are PREAUTH).
func deleteMailbox(t *testing.T, srv *imaptest.Server, name string) {
	t.Helper()
	conn, err := srv.Dial()
	if err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(conn, nil)
	defer c.Close()
	if err := c.Delete(name).Wait(); err != nil {
		t.Fatalf("delete %q: %v", name, err)
	}
}

// TestQResyncDelta: against Dovecot with QRESYNC, a sync after expunges
// and flag changes on the server learns them from the SELECT itself
// (VANISHED (EARLIER) and FETCH), with no UID list and no flag scan; a
// sync with nothing changed sends nothing after the SELECT.
func TestQResyncDelta(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	seed(t, srv, 40, 0)
	e := newEnv(t, srv)
	e.mustSync()
	if !strings.Contains(e.trace.String(), "C: Q1 ENABLE QRESYNC") {
		t.Fatal("QRESYNC was not enabled")
	}
	inbox := srv.Messages("INBOX")
	srv.Expunge("INBOX", inbox[0].UID, inbox[2].UID)
	srv.AddFlags("INBOX", inbox[1].UID, `\Flagged`)
	srv.Append("INBOX", []byte("Subject: late\r\n\r\nlate\r\n"), nil, day)

	res := e.mustSync()
	e.assertMirror(false)
	tr := e.trace.String()
	if !strings.Contains(tr, "VANISHED (EARLIER)") {
		t.Fatalf("no VANISHED in the trace:\n%s", tr)
	}
	for _, line := range strings.Split(tr, "\n") {
		if !strings.HasPrefix(line, "C: ") {
			continue
		}
		if strings.Contains(line, "UID FETCH 1:*") || strings.Contains(line, "SEARCH") {
			t.Fatalf("QRESYNC sync scanned the mailbox: %s", line)
		}
	}
	if res.Mode != mail.ModeQResync {
		t.Fatalf("mode %s", res.Mode)
	}
	for _, m := range res.Mailboxes {
		if m.Name == "INBOX" && (m.Removed != 2 || m.FlagsChanged != 1 || m.Downloaded != 1) {
			t.Fatalf("INBOX: %+v", m)
		}
	}

	e.mustSync()
	for _, line := range strings.Split(e.trace.String(), "\n") {
		if strings.HasPrefix(line, "C: ") && (strings.Contains(line, "FETCH") || strings.Contains(line, "SEARCH") || strings.Contains(line, "STORE")) {
			t.Fatalf("no-op QRESYNC sync sent %s", line)
		}
	}
}
