package sync_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

// The FETCH side of the hostile-server tests (see hostile_test.go).

// partialRe finds the partial range of a body fetch, "BODY.PEEK[]<o.n>"
// (RFC 9051 §6.4.5), which the engine uses for large messages.
var partialRe = regexp.MustCompile(`BODY\.PEEK\[\]<(\d+)\.(\d+)>`)

// bodyRange returns the part of a message a body fetch asks for: all of
// it, or the partial range; origin is the "<o>" of the reply, "" for all.
func bodyRange(items string, size int64) (off, n int64, origin string) {
	mm := partialRe.FindStringSubmatch(items)
	if mm == nil {
		return 0, size, ""
	}
	off, _ = strconv.ParseInt(mm[1], 10, 64)
	n, _ = strconv.ParseInt(mm[2], 10, 64)
	off = min(off, size)
	return off, min(n, size-off), "<" + mm[1] + ">"
}

// reader returns the message's bytes from off on.
func (m fakeMsg) reader(off int64) io.Reader {
	if m.gen != nil {
		return m.gen(off)
	}
	return bytes.NewReader(m.body[off:])
}

// writePart writes the FETCH response carrying what items asks for of
// m's BODY[], as writeBody does for all of it.
func writePart(w *imaptest.ScriptWriter, seq int, m fakeMsg, items string) {
	off, n, origin := bodyRange(items, m.len())
	w.Raw("* " + strconv.Itoa(seq) + " FETCH (UID " + strconv.FormatUint(uint64(m.uid), 10) + " BODY[]" + origin + " ")
	w.LiteralFrom(n, m.reader(off))
	w.Raw(")\r\n")
}

// isBodyFetch tells the engine's body fetch from its metadata fetches.
func isBodyFetch(command, args string) bool {
	return command == "UID FETCH" && strings.Contains(strings.ToUpper(args), "BODY.PEEK[]")
}

// bodyReplies answers a body fetch from s.msgs, letting each(seq, m)
// write the response for one message (return false to write the usual
// one), then a tagged OK.
func bodyReplies(s *fakeSession, args string, w *imaptest.ScriptWriter, each func(seq int, m fakeMsg, items string) bool) {
	vals, _ := imaptest.ScriptArgs(args)
	in := uidSetMatcher(vals[0])
	for i, m := range s.msgs {
		if in(m.uid) && !each(i+1, m, vals[1]) {
			writePart(w, i+1, m, vals[1])
		}
	}
	w.OK("UID FETCH completed")
}

// localFiles returns the names of the files in the folder's subdirs.
func (e *env) localFiles(rel string) []string {
	e.t.Helper()
	var names []string
	for _, sub := range []string{"new", "cur", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(e.root, rel, sub))
		if err != nil && !os.IsNotExist(err) {
			e.t.Fatal(err)
		}
		for _, d := range ents {
			names = append(names, sub+"/"+d.Name())
		}
	}
	return names
}

func resultOf(t *testing.T, res satsync.Result, name string) satsync.MailboxResult {
	t.Helper()
	if res.Err != nil {
		t.Fatalf("the account failed: %v", res.Err)
	}
	for _, m := range res.Mailboxes {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no result for %s in %+v", name, res.Mailboxes)
	return satsync.MailboxResult{}
}

// lf is a CRLF message as it must be stored.
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// TestHostileDuplicateUIDs: the server reports every message twice, with
// different flags and a different body the second time. Only the first
// answer counts; the message is stored once, and the next sync has
// nothing to do.
func TestHostileDuplicateUIDs(t *testing.T) {
	good := textMsg(1, `\Seen`, "first")
	evil := textMsg(1, ``, "second")
	acct := &fakeAccount{
		list:  []string{`() "/" INBOX`},
		boxes: map[string][]fakeMsg{"INBOX": {good}},
	}
	acct.hook = func(s *fakeSession, command, args string, w *imaptest.ScriptWriter) bool {
		if command != "UID FETCH" {
			return false
		}
		switch {
		case isBodyFetch(command, args):
			bodyReplies(s, args, w, func(seq int, m fakeMsg, items string) bool {
				writePart(w, seq, m, items)
				writePart(w, seq, evil, items)
				return true
			})
		case strings.Contains(args, "RFC822.SIZE"):
			w.Line(`* 1 FETCH (UID 1 FLAGS (\Seen) RFC822.SIZE %d INTERNALDATE %s)`, len(good.body), fakeDate)
			w.Line(`* 1 FETCH (UID 1 FLAGS () RFC822.SIZE %d INTERNALDATE %s)`, len(evil.body), fakeDate)
			w.OK("done")
		default:
			w.Line(`* 1 FETCH (UID 1 FLAGS (\Seen))`)
			w.Line(`* 1 FETCH (UID 1 FLAGS ())`)
			w.OK("done")
		}
		return true
	}
	e := hostileEnv(t, acct.start(t))
	res := e.syncNoPanic()
	if m := resultOf(t, res, "INBOX"); m.Err != nil || m.Downloaded != 1 {
		t.Fatalf("INBOX: %d downloaded, error %v; want 1 and none", m.Downloaded, m.Err)
	}
	files := e.localFiles("INBOX")
	if len(files) != 1 || !strings.HasPrefix(files[0], "cur/") {
		t.Fatalf("INBOX holds %q, want one seen message", files)
	}
	if got := e.folderMessages("INBOX"); !bytes.Equal(got[0], lf(good.body)) {
		t.Errorf("stored %q, want the first answer %q", got[0], lf(good.body))
	}
	e.assertContained()

	before := e.snapshot()
	res = e.syncNoPanic()
	if m := resultOf(t, res, "INBOX"); m.Err != nil || m.Downloaded+m.FlagsChanged+m.Removed != 0 {
		t.Errorf("second sync: %+v", m)
	}
	if e.snapshot() != before {
		t.Error("the second sync changed the Maildir")
	}
}

// TestHostileUnaskedUID: along with the bodies asked for, the server
// sends the body of a message that is not in the mailbox, and lists one
// more in its metadata reply. Neither ends up on disk.
func TestHostileUnaskedUID(t *testing.T) {
	a, b := textMsg(1, "", "one"), textMsg(2, "", "two")
	stray := textMsg(99, "", "stray")
	acct := &fakeAccount{
		list:  []string{`() "/" INBOX`},
		boxes: map[string][]fakeMsg{"INBOX": {a, b}},
	}
	acct.hook = func(s *fakeSession, command, args string, w *imaptest.ScriptWriter) bool {
		switch {
		case isBodyFetch(command, args):
			bodyReplies(s, args, w, func(seq int, m fakeMsg, items string) bool {
				writePart(w, seq, m, items)
				if m.uid == 1 {
					writePart(w, 3, stray, items)
				}
				return true
			})
			return true
		case command == "UID FETCH" && strings.Contains(args, "RFC822.SIZE"):
			w.Line(`* 3 FETCH (UID 98 FLAGS () RFC822.SIZE 10 INTERNALDATE %s)`, fakeDate)
		}
		return false
	}
	e := hostileEnv(t, acct.start(t))
	res := e.syncNoPanic()
	m := resultOf(t, res, "INBOX")
	t.Logf("INBOX: %+v", m)
	got := e.folderMessages("INBOX")
	want := map[string]bool{string(lf(a.body)): true, string(lf(b.body)): true}
	for _, g := range got {
		if !want[string(g)] {
			t.Errorf("stored a message the mailbox does not hold: %q", g)
		}
		delete(want, string(g))
	}
	if len(want) != 0 {
		t.Errorf("missing %d of the mailbox's messages (error %v)", len(want), m.Err)
	}
	e.assertContained()
}

// TestHostileCutLiteral: the server announces a body literal and dies
// halfway through it. Nothing is stored (not even in tmp/), no index row
// is written, the mailbox fails with an error that says the message was
// cut short; the next sync, against a server that behaves, stores the
// whole message once. The large variant is fetched in parts.
func TestHostileCutLiteral(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"small", 5000},
		{"large", 6 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := bigMsg(1, "", tc.size)
			acct := &fakeAccount{
				list:  []string{`() "/" INBOX`, `() "/" Other`},
				boxes: map[string][]fakeMsg{"INBOX": {msg}, "Other": {textMsg(1, "", "other")}},
			}
			var cut atomic.Bool
			cut.Store(true)
			var sent atomic.Int64 // body bytes sent for INBOX
			acct.hook = func(s *fakeSession, command, args string, w *imaptest.ScriptWriter) bool {
				if !isBodyFetch(command, args) || s.selected != "INBOX" || !cut.Load() {
					return false
				}
				vals, _ := imaptest.ScriptArgs(args)
				off, n, origin := bodyRange(vals[1], msg.len())
				if sent.Load()+n < tc.size*2/3 {
					// An early part of a message fetched in parts.
					sent.Add(n)
					writePart(w, 1, msg, vals[1])
					w.OK("done")
					return true
				}
				part := make([]byte, n/2)
				io.ReadFull(msg.reader(off), part)
				w.Raw("* 1 FETCH (UID 1 BODY[]" + origin + " ")
				w.CutLiteral(n, part)
				return true
			}
			e := hostileEnv(t, acct.start(t))
			res := e.syncNoPanic()
			m := resultOf(t, res, "INBOX")
			if m.Err == nil {
				t.Fatalf("INBOX synced from a cut literal: %+v", m)
			}
			if msg := m.Err.Error(); !strings.Contains(msg, "UID 1") || !strings.Contains(msg, "EOF") {
				t.Errorf("error %q, want it to name UID 1 and the early end", msg)
			}
			if files := e.localFiles("INBOX"); len(files) != 0 {
				t.Errorf("INBOX holds %q after a cut literal", files)
			}
			if o := resultOf(t, res, "Other"); o.Err != nil || o.Downloaded != 1 {
				t.Errorf("Other: %+v, want its message", o)
			}
			e.assertContained()

			cut.Store(false)
			res = e.syncNoPanic()
			if m := resultOf(t, res, "INBOX"); m.Err != nil || m.Downloaded != 1 {
				t.Fatalf("INBOX on the second sync: %+v", m)
			}
			files := e.localFiles("INBOX")
			if len(files) != 1 {
				t.Fatalf("INBOX holds %q", files)
			}
			checkBigFile(t, filepath.Join(e.root, "INBOX", files[0]), tc.size)
		})
	}
}

// TestHostileMalformed: one response of INBOX's sync is broken in each
// case; INBOX fails with an error and keeps no partial message, and the
// other mailbox syncs as usual. No case may panic.
func TestHostileMalformed(t *testing.T) {
	body := textMsg(1, "", "inbox")
	type hook = func(s *fakeSession, w *imaptest.ScriptWriter)
	scan := func(h hook) func(*fakeSession, string, string, *imaptest.ScriptWriter) bool {
		return func(s *fakeSession, command, args string, w *imaptest.ScriptWriter) bool {
			if s.selected != "INBOX" || command != "UID FETCH" || strings.Contains(args, "RFC822.SIZE") || isBodyFetch(command, args) {
				return false
			}
			h(s, w)
			return true
		}
	}
	on := func(match func(command, args string) bool, h hook) func(*fakeSession, string, string, *imaptest.ScriptWriter) bool {
		return func(s *fakeSession, command, args string, w *imaptest.ScriptWriter) bool {
			if !match(command, args) {
				return false
			}
			h(s, w)
			return true
		}
	}
	selectInbox := func(command, args string) bool { return command == "SELECT" && strings.HasPrefix(args, "INBOX") }
	meta := func(h hook) func(*fakeSession, string, string, *imaptest.ScriptWriter) bool {
		return func(s *fakeSession, command, args string, w *imaptest.ScriptWriter) bool {
			if s.selected != "INBOX" || command != "UID FETCH" || !strings.Contains(args, "RFC822.SIZE") {
				return false
			}
			h(s, w)
			return true
		}
	}
	bodyOf := func(h hook) func(*fakeSession, string, string, *imaptest.ScriptWriter) bool {
		return func(s *fakeSession, command, args string, w *imaptest.ScriptWriter) bool {
			if s.selected != "INBOX" || !isBodyFetch(command, args) {
				return false
			}
			h(s, w)
			return true
		}
	}
	for _, tc := range []struct {
		name string
		hook func(*fakeSession, string, string, *imaptest.ScriptWriter) bool
		// complete: the case breaks the response after the whole body
		// was received, so the message may have been stored, whole.
		complete bool
		// quiet: the response is not malformed but carries no usable
		// body; the message is not stored, and the mailbox need not
		// fail (see the comments there).
		quiet bool
	}{
		{"select-not-imap", on(selectInbox, func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line("this is not IMAP at all")
		}), false, false},
		{"select-bad-uidvalidity", on(selectInbox, func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line("* 1 EXISTS")
			w.Line("* OK [UIDVALIDITY abc] broken")
			w.OK("[READ-WRITE] done")
		}), false, false},
		{"select-exists-overflow", on(selectInbox, func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line("* 4294967296 EXISTS")
			w.OK("done")
		}), false, false},
		{"select-refused", on(selectInbox, func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.NO("[SERVERBUG] cannot open")
		}), false, false},
		{"scan-unbalanced", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line(`* 1 FETCH (UID 1 FLAGS (\Seen)`)
			w.OK("done")
		}), false, false},
		{"scan-extra-paren", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line(`* 1 FETCH (UID 1 FLAGS (\Seen)))`)
			w.OK("done")
		}), false, false},
		{"scan-uid-not-a-number", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line(`* 1 FETCH (UID abc FLAGS ())`)
			w.OK("done")
		}), false, false},
		{"scan-uid-overflow", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line(`* 1 FETCH (UID 99999999999 FLAGS ())`)
			w.OK("done")
		}), false, false},
		{"scan-binary-garbage", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Raw("\x00\x01\xfe\xff garbage \x00\r\n")
			w.OK("done")
		}), false, false},
		{"scan-empty-line", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Raw("\r\n")
			w.OK("done")
		}), false, false},
		{"scan-unknown-response", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line("* XYZZY (nothing happens)")
			w.OK("done")
		}), false, false},
		{"scan-unmatched-continuation", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line("+ more please")
			w.OK("done")
		}), false, false},
		{"scan-foreign-tag", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line("X999 OK not yours")
		}), false, false},
		{"scan-bye", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line("* BYE shutting down")
			w.Close()
		}), false, false},
		{"scan-closed", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Close()
		}), false, false},
		// A body nobody asked for, cut short: go-imap hands on a literal
		// that ends early as if it were whole, and reading it a second
		// time races with go-imap's reader.
		{"scan-cut-body", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Raw("* 1 FETCH (UID 1 FLAGS () BODY[] ")
			w.CutLiteral(1000, []byte("Subject: cut"))
		}), false, false},
		{"scan-refused", scan(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.BAD("no")
		}), false, false},
		{"meta-bad-date", meta(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line(`* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 10 INTERNALDATE "yesterday")`)
			w.OK("done")
		}), false, false},
		{"meta-negative-size", meta(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line(`* 1 FETCH (UID 1 FLAGS () RFC822.SIZE -5 INTERNALDATE %s)`, fakeDate)
			w.OK("done")
		}), false, false},
		// RFC 9051 §7.5.2 leaves the order of FETCH items open, but
		// go-imap routes a FETCH whose literal comes before its UID to
		// the unsolicited-response handler (imapclient/fetch.go assumes
		// UID first): the engine never sees this body, as if the message
		// had been expunged.
		{"body-before-uid", bodyOf(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Raw("* 1 FETCH (BODY[] ")
			w.Literal(body.body)
			w.Line(" UID 1)")
			w.OK("done")
		}), false, true},
		// NIL is a valid nstring: there is no body to store.
		{"body-nil", bodyOf(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Line("* 1 FETCH (UID 1 BODY[] NIL)")
			w.OK("done")
		}), false, true},
		{"body-literal-bad-size", bodyOf(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Raw("* 1 FETCH (UID 1 BODY[] {-12}\r\n")
			w.Raw(string(body.body))
			w.Line(")")
			w.OK("done")
		}), false, false},
		{"body-literal-overflow", bodyOf(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Raw("* 1 FETCH (UID 1 BODY[] {99999999999999999999}\r\n")
			w.Raw(string(body.body))
			w.Line(")")
			w.OK("done")
		}), false, false},
		{"body-missing-paren", bodyOf(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.Raw("* 1 FETCH (UID 1 BODY[] ")
			w.Literal(body.body)
			w.Line("")
			w.OK("done")
		}), true, false},
		{"body-refused", bodyOf(func(s *fakeSession, w *imaptest.ScriptWriter) {
			w.NO("cannot read message")
		}), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acct := &fakeAccount{
				list:  []string{`() "/" INBOX`, `() "/" Other`},
				boxes: map[string][]fakeMsg{"INBOX": {body}, "Other": {textMsg(1, "", "other")}},
				hook:  tc.hook,
			}
			e := hostileEnv(t, acct.start(t))
			res := e.syncNoPanic()
			m := resultOf(t, res, "INBOX")
			t.Logf("INBOX: %v", m.Err)
			if m.Err == nil && !tc.quiet {
				t.Errorf("INBOX synced: %+v", m)
			}
			switch files := e.localFiles("INBOX"); {
			case len(files) == 0:
			case tc.complete && len(files) == 1:
				if got := e.folderMessages("INBOX"); !bytes.Equal(got[0], lf(body.body)) {
					t.Errorf("stored %q, want the whole message", got[0])
				}
			default:
				t.Errorf("INBOX holds %q", files)
			}
			if o := resultOf(t, res, "Other"); o.Err != nil || o.Downloaded != 1 {
				t.Errorf("Other: %+v, want its message", o)
			}
			e.assertContained()
		})
	}
}

// TestHostileUIDValidity: a server that gives no usable UIDVALIDITY
// (none at all, zero, a new one at every SELECT, or none and then a real
// one) never gets a message stored twice or sent back to it: over two
// syncs the mailbox either fails or holds its one message once, and
// nothing is appended to the server. Each case syncs three times: the
// third sync is the first after a real UIDVALIDITY was recorded.
func TestHostileUIDValidity(t *testing.T) {
	var n atomic.Int64
	var syncs int
	for _, tc := range []struct {
		name string
		line func() string // the UIDVALIDITY line of SELECT, "" for none
	}{
		{"missing", func() string { return "" }},
		{"zero", func() string { return "* OK [UIDVALIDITY 0] zero" }},
		{"changing", func() string { return "* OK [UIDVALIDITY " + strconv.FormatInt(100+n.Add(1), 10) + "] new" }},
		{"missing-then-real", func() string {
			if syncs < 2 {
				return ""
			}
			return "* OK [UIDVALIDITY 5] real"
		}},
		{"zero-then-real", func() string {
			if syncs < 2 {
				return "* OK [UIDVALIDITY 0] zero"
			}
			return "* OK [UIDVALIDITY 5] real"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acct := &fakeAccount{
				list:  []string{`() "/" INBOX`},
				boxes: map[string][]fakeMsg{"INBOX": {textMsg(1, `\Seen`, "one")}},
			}
			acct.hook = func(s *fakeSession, command, args string, w *imaptest.ScriptWriter) bool {
				if command != "SELECT" {
					return false
				}
				acct.mu.Lock()
				acct.selected[w.Conn] = "INBOX"
				acct.mu.Unlock()
				w.Line("* 1 EXISTS")
				if l := tc.line(); l != "" {
					w.Line("%s", l)
				}
				w.Line("* OK [UIDNEXT 2] ok")
				w.OK("[READ-WRITE] done")
				return true
			}
			srv := acct.start(t)
			e := hostileEnv(t, srv)
			for i := range 3 {
				syncs = i + 1
				res := e.syncNoPanic()
				m := resultOf(t, res, "INBOX")
				t.Logf("sync %d: downloaded %d, error %v", i+1, m.Downloaded, m.Err)
				if files := e.localFiles("INBOX"); len(files) > 1 {
					t.Fatalf("sync %d: INBOX holds %d copies of its one message", i+1, len(files))
				}
			}
			for _, c := range srv.Commands() {
				if strings.HasPrefix(c, "APPEND") {
					t.Errorf("the server's own message was sent back to it: %.60s", c)
				}
			}
			e.assertContained()
		})
	}
}
