package sync_test

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"testing"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

// The tests in this file, hostile_fetch_test.go and hostile_memory_test.go
// point the whole engine at a scripted server that misbehaves in one way
// each. Whatever the server sends, satchel must not write outside the
// Maildir root, panic, or hold a message in memory; it fails the mailbox
// concerned (or the account, when the listing itself cannot be read) with
// an error that says what broke.

// fakeMsg is one message of a fakeAccount.
type fakeMsg struct {
	uid   uint32
	flags string                    // the FLAGS list's content, e.g. `\Seen`
	body  []byte                    // CRLF; or, for a message too large to hold:
	size  int64                     // its size, and
	gen   func(off int64) io.Reader // its bytes from off on
}

func (m fakeMsg) len() int64 {
	if m.gen != nil {
		return m.size
	}
	return int64(len(m.body))
}

// fakeDate is the INTERNALDATE of every fake message (day, in the syntax
// of RFC 9051 §9 date-time).
const fakeDate = `"01-Jun-2025 12:00:00 +0000"`

// fakeAccount scripts a well-behaved IMAP4rev1 server (no CONDSTORE, so
// the engine syncs in full mode) holding a fixed set of mailboxes: it
// answers LIST, SELECT, and the three UID FETCHes a full-mode sync sends
// (UID and FLAGS of all; size and INTERNALDATE of new messages; bodies).
// hook, when set, sees every command first and breaks the answers a test
// is about: it returns true when it has answered.
type fakeAccount struct {
	list  []string             // LIST responses, after "* LIST "
	boxes map[string][]fakeMsg // by the name SELECT sends
	// box, when set, is asked for a mailbox missing from boxes.
	box  func(name string) ([]fakeMsg, bool)
	hook func(s *fakeSession, command, args string, w *imaptest.ScriptWriter) bool

	mu       gosync.Mutex
	selected map[int]string // per connection
}

// fakeSession is what a hook knows of the command's connection.
type fakeSession struct {
	conn     int
	selected string // "" before a successful SELECT
	msgs     []fakeMsg
}

func (a *fakeAccount) start(t *testing.T) *imaptest.Scripted {
	return imaptest.StartScripted(t, imaptest.ScriptOptions{
		Capabilities: []string{"IMAP4rev1", "UIDPLUS", "LITERAL+"},
		Script:       a.answer,
	})
}

func (a *fakeAccount) mailbox(name string) ([]fakeMsg, bool) {
	if m, ok := a.boxes[name]; ok {
		return m, true
	}
	if a.box != nil {
		return a.box(name)
	}
	return nil, false
}

func (a *fakeAccount) answer(tag, command, args string, w *imaptest.ScriptWriter) {
	a.mu.Lock()
	if a.selected == nil {
		a.selected = map[int]string{}
	}
	s := &fakeSession{conn: w.Conn, selected: a.selected[w.Conn]}
	a.mu.Unlock()
	if s.selected != "" {
		s.msgs, _ = a.mailbox(s.selected)
	}
	if a.hook != nil && a.hook(s, command, args, w) {
		return
	}
	vals, err := imaptest.ScriptArgs(args)
	if err != nil {
		w.BAD(err.Error())
		return
	}
	switch command {
	case "LIST":
		for _, l := range a.list {
			w.Raw("* LIST " + l + "\r\n")
		}
		w.OK("LIST completed")
	case "SELECT", "EXAMINE":
		if len(vals) == 0 {
			w.BAD("no mailbox")
			return
		}
		msgs, ok := a.mailbox(vals[0])
		if !ok {
			w.NO("[NONEXISTENT] no such mailbox")
			return
		}
		a.mu.Lock()
		a.selected[w.Conn] = vals[0]
		a.mu.Unlock()
		next := uint32(1)
		if len(msgs) > 0 {
			next = msgs[len(msgs)-1].uid + 1
		}
		w.Line("* %d EXISTS", len(msgs))
		w.Line(`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`)
		w.Line(`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] ok`)
		w.Line("* OK [UIDVALIDITY 7] ok")
		w.Line("* OK [UIDNEXT %d] ok", next)
		w.OK("[READ-WRITE] SELECT completed")
	case "UID FETCH":
		if s.selected == "" || len(vals) != 2 {
			w.BAD("no mailbox selected or bad arguments")
			return
		}
		in := uidSetMatcher(vals[0])
		for i, m := range s.msgs {
			if !in(m.uid) {
				continue
			}
			switch items := strings.ToUpper(vals[1]); {
			case strings.Contains(items, "BODY.PEEK[]"):
				writePart(w, i+1, m, vals[1])
			case strings.Contains(items, "RFC822.SIZE"):
				w.Line("* %d FETCH (UID %d FLAGS (%s) RFC822.SIZE %d INTERNALDATE %s)", i+1, m.uid, m.flags, m.len(), fakeDate)
			default:
				w.Line("* %d FETCH (UID %d FLAGS (%s))", i+1, m.uid, m.flags)
			}
		}
		w.OK("UID FETCH completed")
	case "UID SEARCH":
		var b strings.Builder
		b.WriteString("* SEARCH")
		for _, m := range s.msgs {
			b.WriteString(" " + strconv.FormatUint(uint64(m.uid), 10))
		}
		w.Line("%s", b.String())
		w.OK("UID SEARCH completed")
	}
}

// uidSetMatcher reads a UID set as the engine sends it ("1:*", "3,5:7").
func uidSetMatcher(set string) func(uint32) bool {
	type rng struct{ lo, hi uint64 }
	var rs []rng
	num := func(s string) uint64 {
		if s == "*" {
			return 1 << 32
		}
		n, _ := strconv.ParseUint(s, 10, 32)
		return n
	}
	for _, part := range strings.Split(set, ",") {
		lo, hi, ok := strings.Cut(part, ":")
		if !ok {
			hi = lo
		}
		a, b := num(lo), num(hi)
		rs = append(rs, rng{min(a, b), max(a, b)})
	}
	return func(u uint32) bool {
		return slices.ContainsFunc(rs, func(r rng) bool { return r.lo <= uint64(u) && uint64(u) <= r.hi })
	}
}

// textMsg is a small message whose body names it.
func textMsg(uid uint32, flags, subject string) fakeMsg {
	return fakeMsg{uid: uid, flags: flags, body: []byte("From: a@example.org\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n")}
}

// hostileEnv is an env whose server is scripted.
func hostileEnv(t *testing.T, srv *imaptest.Scripted) *env {
	return newEnv(t, srv.Server())
}

// syncNoPanic runs one sync; a panic anywhere in the engine fails the
// test with its stack rather than ending the test binary.
func (e *env) syncNoPanic() (res satsync.Result) {
	e.t.Helper()
	defer func() {
		if v := recover(); v != nil {
			e.t.Fatalf("sync panicked: %v\n%s", v, debug.Stack())
		}
	}()
	return e.sync()
}

// assertContained checks that the sync wrote nothing outside the Maildir
// root: below the parent of the test's temporary directory (which must be
// the test's only one), every path is the root or inside it, or the index
// (and its SQLite journal files) next to it; no path below is a symbolic
// link; and every file below the root lies directly in a cur/, new/ or
// tmp/ directory.
func (e *env) assertContained() {
	e.t.Helper()
	dir := filepath.Dir(e.root)
	parent := filepath.Dir(dir)
	err := filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			e.t.Errorf("symbolic link %s", p)
		}
		switch {
		case p == parent, p == dir, p == e.root:
			return nil
		case strings.HasPrefix(p, e.root+string(filepath.Separator)):
			if !d.IsDir() {
				if sub := filepath.Base(filepath.Dir(p)); sub != "cur" && sub != "new" && sub != "tmp" {
					e.t.Errorf("file outside cur/, new/ and tmp/: %s", p)
				}
			}
			return nil
		case filepath.Dir(p) == dir && strings.HasPrefix(filepath.Base(p), "index.db"):
			return nil
		}
		e.t.Errorf("written outside the Maildir root: %s", p)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// folderMessages returns the bodies of the messages in the folder at rel
// (relative to the root), in no particular order.
func (e *env) folderMessages(rel string) [][]byte {
	e.t.Helper()
	d := maildir.Dir{Path: filepath.Join(e.root, filepath.FromSlash(rel))}
	ents, err := d.Scan()
	if err != nil {
		e.t.Fatalf("scan %s: %v", rel, err)
	}
	var out [][]byte
	for _, ent := range ents {
		b, err := os.ReadFile(ent.Path(d))
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestHostileMailboxNames: a server lists mailbox names built to escape
// the Maildir root or to collide with its structure. Every mailbox lands
// in its escaped folder inside the root, with its own message; a name too
// long for the file system fails that mailbox alone; nothing is written
// anywhere else.
func TestHostileMailboxNames(t *testing.T) {
	long := "L" + strings.Repeat("x", 9999)
	// Taken literally, this one would reach the file system's root.
	far := "../../../../satchel-escape-" + strconv.Itoa(os.Getpid())
	names := []struct {
		list string // the LIST response after "* LIST "
		name string // the name as SELECT sends it (modified UTF-7)
		rel  string // the folder; "" when the mailbox must fail
	}{
		{`() "." INBOX`, "INBOX", "INBOX"},
		{`() "." ".."`, "..", "%/%/%"},
		{`() "." "."`, ".", "%/%"},
		{`() "." "a/b"`, "a/b", "a%2Fb"},
		{`() "." "a/../../../b"`, "a/../../../b", "a%2F/%/%2F/%/%2F/%/%2Fb"},
		{`() "/" "../../escaped"`, "../../escaped", "%2E./%2E./escaped"},
		{`() "/" "` + far + `"`, far, "%2E./%2E./%2E./%2E./" + strings.TrimPrefix(far, "../../../../")},
		{`() "/" "/abs/olute"`, "/abs/olute", "%/abs/olute"},
		{`() NIL "../nil"`, "../nil", "%2E.%2Fnil"},
		{`() "." "back\\..\\slash"`, `back\..\slash`, "back%5C/%/%5Cslash"},
		{`() "." "&AAA-nul"`, "&AAA-nul", "%00nul"},
		{`() "." "ctl&AAEAHwB,-"`, "ctl&AAEAHwB,-", "ctl%01%1F%7F"},
		{`() "." "%2E%2E"`, "%2E%2E", "%252E%252E"},
		{`() "." "pct%+"`, "pct%+", "pct%25+"},
		{`() "." "%"`, "%", "%25"},
		{`() "." "cur"`, "cur", "%63ur"},
		{`() "." "NEW"`, "NEW", "%4EEW"},
		{`() "." "INBOX.tmp"`, "INBOX.tmp", "INBOX/%74mp"},
		{`() "." "~"`, "~", "~"},
		{`() "." "` + long + `"`, long, ""},
		{`() "." "` + strings.Repeat("y", 300) + `"`, strings.Repeat("y", 300), strings.Repeat("y", 250) + "%+/" + strings.Repeat("y", 50)},
	}
	acct := &fakeAccount{boxes: map[string][]fakeMsg{}}
	for _, n := range names {
		acct.list = append(acct.list, n.list)
		acct.boxes[n.name] = []fakeMsg{textMsg(1, `\Seen`, n.name)}
	}
	srv := acct.start(t)
	e := hostileEnv(t, srv)
	res := e.syncNoPanic()
	if res.Err != nil {
		t.Fatalf("the account failed: %.300v", res.Err)
	}
	e.assertContained()
	for _, n := range names {
		// Where the name leads if used as a path: outside the test's
		// directory, which assertContained does not see, nothing may be.
		naive := filepath.Join(e.root, n.name)
		dir := filepath.Dir(e.root)
		if _, err := os.Lstat(naive); err == nil && !strings.HasPrefix(naive+"/", dir+"/") {
			t.Errorf("%.40q: %s exists", n.name, naive)
		}
	}

	byName := map[string]satsync.MailboxResult{}
	for _, m := range res.Mailboxes {
		byName[m.Name] = m
	}
	wantFolders := map[string]bool{}
	for _, n := range names {
		// The engine reports names decoded from modified UTF-7.
		got, ok := byName[decodedName(n.name)]
		if !ok {
			t.Errorf("%.40q: no result", n.name)
			continue
		}
		if n.rel == "" {
			if got.Err == nil || !strings.Contains(got.Err.Error(), "too long") {
				t.Errorf("%.40q: error %v, want one saying the name is too long", n.name, got.Err)
			}
			continue
		}
		if got.Err != nil {
			t.Errorf("%.40q: %v", n.name, got.Err)
			continue
		}
		if got.Local != n.rel {
			t.Errorf("%.40q: folder %q, want %q", n.name, got.Local, n.rel)
		}
		wantFolders[n.rel] = true
		msgs := e.folderMessages(n.rel)
		if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte("Subject: "+n.name+"\n")) {
			t.Errorf("%.40q: folder %s holds %d messages, want its own one", n.name, n.rel, len(msgs))
		}
	}

	// No other folder was made: every directory holding cur/ is one of
	// the expected folders.
	filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() != "cur" {
			return err
		}
		rel, _ := filepath.Rel(e.root, filepath.Dir(p))
		if !wantFolders[filepath.ToSlash(rel)] {
			t.Errorf("unexpected folder %s", rel)
		}
		return nil
	})
}

// decodedName undoes the modified UTF-7 of the few encoded names above.
func decodedName(s string) string {
	return strings.NewReplacer("&AAA-", "\x00", "&AAEAHwB,-", "\x01\x1f\x7f").Replace(s)
}

// TestHostileListing: a listing go-imap cannot parse (invalid modified
// UTF-7, invalid UTF-8, control characters, broken syntax) fails the
// whole account with an error naming the listing; no mailbox is selected
// and nothing is written.
func TestHostileListing(t *testing.T) {
	for _, tc := range []struct {
		name, list string
		want       string // in the error
	}{
		{"utf7-unterminated", `() "/" "&Jjo"`, "UTF-7"},
		{"utf7-ascii-in-base64", `() "/" "&AGE-"`, "UTF-7"},
		{"utf7-null-shift", `() "/" "&AOQ-&AOQ-"`, "UTF-7"},
		{"invalid-utf8", "() \"/\" \"\xff\xfe\"", "UTF-8"},
		{"raw-control", "() \"/\" \"a\x01b\"", "UTF-7"},
		{"unbalanced", `(\Noselect "/" INBOX`, "list"},
		{"garbage", `garbage((`, "list"},
		{"no-name", `() "/"`, "list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acct := &fakeAccount{
				list:  []string{`() "/" INBOX`, tc.list, `() "/" Other`},
				boxes: map[string][]fakeMsg{"INBOX": {textMsg(1, "", "a")}, "Other": {textMsg(1, "", "b")}},
			}
			srv := acct.start(t)
			e := hostileEnv(t, srv)
			res := e.syncNoPanic()
			if res.Err == nil {
				t.Fatalf("the account synced %d mailboxes from a broken listing", len(res.Mailboxes))
			}
			if msg := res.Err.Error(); !strings.Contains(msg, "list mailboxes") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to name the listing and %q", msg, tc.want)
			}
			for _, c := range srv.Commands() {
				if strings.HasPrefix(c, "SELECT") {
					t.Errorf("sent %s after a failed listing", c)
				}
			}
			if _, err := os.Stat(e.root); !os.IsNotExist(err) {
				t.Errorf("the Maildir root exists after a failed listing (%v)", err)
			}
			e.assertContained()
		})
	}
}

// TestHostileDuplicateListing: a server that lists a mailbox twice has
// one mailbox, synced once.
func TestHostileDuplicateListing(t *testing.T) {
	acct := &fakeAccount{
		list:  []string{`() "/" INBOX`, `() "/" Foo`, `() "/" Foo`},
		boxes: map[string][]fakeMsg{"INBOX": {textMsg(1, "", "a")}, "Foo": {textMsg(1, "", "b")}},
	}
	e := hostileEnv(t, acct.start(t))
	res := e.syncNoPanic()
	if res.Err != nil {
		t.Fatalf("the account failed: %v", res.Err)
	}
	if len(res.Mailboxes) != 2 {
		t.Errorf("%d mailbox results, want 2", len(res.Mailboxes))
	}
	if m := resultOf(t, res, "Foo"); m.Err != nil || m.Downloaded != 1 || len(e.folderMessages("Foo")) != 1 {
		t.Errorf("Foo: %+v", m)
	}
}
