package imaptest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// cyrusModes are Cyrus' two namespace layouts and what NAMESPACE must
// report for each (RFC 2342 §5).
var cyrusModes = []struct {
	name   string
	opts   CyrusOptions
	delim  rune
	prefix string
	other  string // the other users' namespace prefix
	shared string // the shared namespace prefix
}{
	{"inbox-namespace", CyrusOptions{}, '.', "INBOX.", "user.", ""},
	{"altnamespace", CyrusOptions{AltNamespace: true}, '/', "", "Other Users/", "Shared Folders/"},
}

// TestCyrus starts one Cyrus per namespace mode and runs the harness's
// seeding and inspection methods against it. The steps share the server
// and run on the test's goroutine, where Server methods may call
// t.Fatal.
func TestCyrus(t *testing.T) {
	for _, m := range cyrusModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			s := StartCyrus(t, m.opts)
			if s.Kind != "cyrus" || s.Delim != m.delim || s.Prefix != m.prefix {
				t.Fatalf("StartCyrus: Kind %q Delim %q Prefix %q, want cyrus %q %q", s.Kind, s.Delim, s.Prefix, m.delim, m.prefix)
			}
			checkCyrusNamespace(t, s, m.other, m.shared)
			checkCyrusLogin(t, s)
			checkCyrusCapabilities(t, s)
			checkCyrusNestedMailboxes(t, s)
			checkCyrusFlagsAndExpunge(t, s)
			checkCyrusAppendMany(t, s)
			checkCyrusRenameAndDelete(t, s)
			checkCyrus8BitHeaders(t, s)
		})
	}
}

// cyrusName turns a "/"-separated name from NestedMailboxes into s's own: below
// the personal prefix, levels joined with s.Delim. INBOX stays INBOX.
func cyrusName(s *Server, n string) string {
	if strings.EqualFold(n, "INBOX") {
		return n
	}
	return s.Prefix + strings.ReplaceAll(n, "/", string(s.Delim))
}

// cyrusLogin opens a connection of the test's own, logged in as Server.User.
func cyrusLogin(t *testing.T, s *Server) *imapclient.Client {
	t.Helper()
	nc, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(nc, nil)
	t.Cleanup(func() { c.Close() })
	if err := c.Login(s.User, s.Password).Wait(); err != nil {
		t.Fatalf("login as %q: %v", s.User, err)
	}
	return c
}

func checkCyrusNamespace(t *testing.T, s *Server, other, shared string) {
	ns, err := cyrusLogin(t, s).Namespace().Wait()
	if err != nil {
		t.Fatalf("NAMESPACE: %v", err)
	}
	want := []imap.NamespaceDescriptor{{Prefix: s.Prefix, Delim: s.Delim}}
	if !slices.Equal(ns.Personal, want) {
		t.Errorf("NAMESPACE personal = %+v, want %+v (Server.Prefix, Server.Delim)", ns.Personal, want)
	}
	if want := []imap.NamespaceDescriptor{{Prefix: other, Delim: s.Delim}}; !slices.Equal(ns.Other, want) {
		t.Errorf("NAMESPACE other users = %+v, want %+v", ns.Other, want)
	}
	if want := []imap.NamespaceDescriptor{{Prefix: shared, Delim: s.Delim}}; !slices.Equal(ns.Shared, want) {
		t.Errorf("NAMESPACE shared = %+v, want %+v", ns.Shared, want)
	}
}

// checkCyrusLogin makes sure the password is checked: a server that let
// anyone in would pass every other test.
func checkCyrusLogin(t *testing.T, s *Server) {
	nc, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(nc, nil)
	defer c.Close()
	if err := c.Login(s.User, s.Password+"-wrong").Wait(); err == nil {
		t.Errorf("LOGIN %s with a wrong password succeeded", s.User)
	}
}

// checkCyrusCapabilities checks the extensions the sync modes rely on
// (RFC 7162 CONDSTORE/QRESYNC, RFC 4315 UIDPLUS, RFC 6851 MOVE, RFC 5819
// LIST-STATUS, RFC 8474 OBJECTID, RFC 6154 SPECIAL-USE).
func checkCyrusCapabilities(t *testing.T, s *Server) {
	caps := s.Capabilities()
	for _, c := range []string{"CONDSTORE", "QRESYNC", "UIDPLUS", "MOVE", "LIST-STATUS", "OBJECTID", "SPECIAL-USE", "IDLE"} {
		if !slices.Contains(caps, c) {
			t.Errorf("capabilities lack %s: %q", c, caps)
		}
	}
}

func checkCyrusNestedMailboxes(t *testing.T, s *Server) {
	var want []string
	for _, n := range NestedMailboxes {
		s.CreateMailbox(cyrusName(s, n))
		// Cyrus creates the missing parents of a nested name as real
		// mailboxes; CreateMailbox creates them anyway for the servers
		// that do not.
		parts := strings.Split(n, "/")
		for i := range parts {
			want = append(want, cyrusName(s, strings.Join(parts[:i+1], "/")))
		}
	}
	s.CreateMailbox(cyrusName(s, "Archive/2023")) // again: a no-op
	slices.Sort(want)
	want = slices.Compact(want)
	if got := s.Mailboxes(); !slices.Equal(got, want) {
		t.Errorf("Mailboxes() = %q\nwant %q", got, want)
	}
	// The names survive modified UTF-7 both ways.
	for _, n := range []string{"Work/Projects/Ünïcödé", "日本語/メール"} {
		body := crlf("Subject: a message in a mailbox with a non-ASCII name\n\nin " + n + "\n")
		uid := s.Append(cyrusName(s, n), body, nil, time.Time{})
		if msgs := s.Messages(cyrusName(s, n)); len(msgs) != 1 || msgs[0].UID != uid || !bytes.Equal(msgs[0].Body, body) {
			t.Errorf("Messages(%q) = %+v, want the one message appended with UID %d", cyrusName(s, n), msgs, uid)
		}
	}
}

func checkCyrusFlagsAndExpunge(t *testing.T, s *Server) {
	mbox := cyrusName(s, "Flags/Nested")
	s.CreateMailbox(mbox)
	date := time.Date(2021, 3, 4, 5, 6, 7, 0, time.FixedZone("", 2*3600))
	var uids []uint32
	for i := range 4 {
		uids = append(uids, s.Append(mbox, crlf(fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i)), []string{`\Seen`}, date))
	}
	a, b, c, d := uids[0], uids[1], uids[2], uids[3]
	s.SetFlags(mbox, a, `\Flagged`, "$label2")
	s.SetFlags(mbox, b)
	s.AddFlags(mbox, c, `\Answered`)
	s.AddFlags(mbox, d, `\Deleted`)
	s.Expunge(mbox, b)

	want := []Message{
		{UID: a, Flags: []string{"$label2", `\Flagged`}},
		{UID: c, Flags: []string{`\Answered`, `\Seen`}},
		{UID: d, Flags: []string{`\Deleted`, `\Seen`}},
	}
	got := s.Messages(mbox)
	checkUIDsAndFlags(t, got, want)
	for i, m := range got {
		if !m.Date.Equal(date) {
			t.Errorf("message %d: INTERNALDATE %v, want %v", i, m.Date, date)
		}
	}
	if len(got) > 0 && !bytes.Equal(got[0].Body, crlf("Subject: 0\n\nbody 0\n")) {
		t.Errorf("message 0: body %q", got[0].Body)
	}
	s.Expunge(mbox, a, c)
	checkUIDsAndFlags(t, s.Messages(mbox), want[2:])
}

// checkCyrusAppendMany exercises AppendMany's generic path (pipelined
// APPENDs with APPENDUID), which Cyrus gets: the MULTIAPPEND path is
// Dovecot-only. The corpus is small because that path is slow against
// Cyrus: go-imap sends every literal over 4096 bytes synchronizing unless
// the server offers LITERAL- (Cyrus offers LITERAL+), and imapd, which
// leaves Nagle on, holds each continuation request back until the client
// acknowledges the previous response.
func checkCyrusAppendMany(t *testing.T, s *Server) {
	corpus := Corpus(CorpusOptions{Seed: 3, Messages: 30, BigAttachments: 1})
	mbox := cyrusName(s, "Seeded")
	s.CreateMailbox(mbox)
	uids := s.AppendMany(mbox, corpus)
	got := s.Messages(mbox)
	if len(got) != len(corpus) || len(uids) != len(corpus) {
		t.Fatalf("AppendMany returned %d UIDs and Messages %d messages for %d appended", len(uids), len(got), len(corpus))
	}
	bad := 0
	for i, m := range got {
		w := corpus[i]
		if m.UID != uids[i] || !bytes.Equal(m.Body, w.Body) || !slices.Equal(m.Flags, w.Flags) || !m.Date.Equal(w.Date) {
			if bad++; bad <= 3 {
				t.Errorf("message %d: UID %d flags %q date %v size %d; want UID %d flags %q date %v size %d",
					i, m.UID, m.Flags, m.Date, len(m.Body), uids[i], w.Flags, w.Date, len(w.Body))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d messages differ", bad, len(got))
	}
}

// checkCyrusRenameAndDelete records Cyrus' UIDVALIDITY behaviour, which
// the RFCs leave open for RENAME (RFC 3501 §6.3.5 says nothing about it)
// but not for a mailbox recreated under an old name: RFC 3501 §2.3.1.1
// requires a new UIDVALIDITY then, and Cyrus gives one even within the
// same second.
func checkCyrusRenameAndDelete(t *testing.T, s *Server) {
	from, to := cyrusName(s, "Old"), cyrusName(s, "Renamed/Below")
	s.CreateMailbox(from)
	uid := s.Append(from, crlf("Subject: renamed\n\nbody\n"), []string{`\Seen`}, time.Time{})
	before := s.UIDValidity(from)
	s.RenameMailbox(from, to)
	if after := s.UIDValidity(to); after != before {
		t.Errorf("UIDVALIDITY %d after RENAME, %d before: Cyrus 3.6 keeps it", after, before)
	}
	checkUIDsAndFlags(t, s.Messages(to), []Message{{UID: uid, Flags: []string{`\Seen`}}})
	if got := s.Mailboxes(); slices.Contains(got, from) || !slices.Contains(got, to) {
		t.Errorf("after RENAME %q to %q: Mailboxes() = %q", from, to, got)
	}

	s.DeleteMailbox(to)
	if got := s.Mailboxes(); slices.Contains(got, to) {
		t.Errorf("after DELETE %q: Mailboxes() = %q", to, got)
	}
	s.CreateMailbox(to)
	if again := s.UIDValidity(to); again == before {
		t.Errorf("UIDVALIDITY %d of a mailbox recreated under the old name is the old one (RFC 3501 §2.3.1.1)", again)
	}
	if msgs := s.Messages(to); len(msgs) != 0 {
		t.Errorf("recreated %q holds %d messages, want none", to, len(msgs))
	}
}

// checkCyrus8BitHeaders records that Cyrus does not store what it was
// given when a header holds raw 8-bit bytes: with its default munge8bit,
// each such byte becomes "X" (RFC 5322 §2.2 allows only US-ASCII in
// header fields; RFC 6532 UTF-8 headers are not enabled). The body's 8-bit
// text is kept. A sync must expect a message read back to differ from
// the one it appended.
func checkCyrus8BitHeaders(t *testing.T, s *Server) {
	sent := crlf("Subject: Grüße\n\nGrüße\n")
	want := crlf("Subject: GrXXXXe\n\nGrüße\n")
	uid := s.Append("INBOX", sent, nil, time.Time{})
	var got []byte
	for _, m := range s.Messages("INBOX") {
		if m.UID == uid {
			got = m.Body
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("appended %q, read back %q, want %q", sent, got, want)
	}
}

func TestCyrusSuppressCapabilities(t *testing.T) {
	s := StartCyrus(t, CyrusOptions{SuppressCapabilities: []string{"QRESYNC", "OBJECTID"}})
	caps := s.Capabilities()
	if slices.Contains(caps, "QRESYNC") || slices.Contains(caps, "OBJECTID") {
		t.Errorf("capabilities still include a suppressed one: %q", caps)
	}
	if !slices.Contains(caps, "CONDSTORE") {
		t.Errorf("capabilities lack CONDSTORE, which was not suppressed: %q", caps)
	}
}
