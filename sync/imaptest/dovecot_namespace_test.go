package imaptest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// startHostingDovecot starts Dovecot as hosting control panels configure
// it: personal namespace "INBOX." with "." as separator.
func startHostingDovecot(t *testing.T) *Server {
	s := StartDovecot(t, DovecotOptions{Prefix: "INBOX.", Separator: "."})
	if s.Delim != '.' || s.Prefix != "INBOX." {
		t.Fatalf("Server.Delim, Prefix = %q, %q; want '.', \"INBOX.\"", s.Delim, s.Prefix)
	}
	return s
}

func TestDovecotHostingNamespace(t *testing.T) {
	t.Parallel()
	s := startHostingDovecot(t)

	s.mu.Lock()
	ns, err := s.conn().Namespace().Wait()
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("NAMESPACE: %v", err)
	}
	// RFC 2342 §5: (("INBOX." ".")) NIL NIL.
	want := []imap.NamespaceDescriptor{{Prefix: "INBOX.", Delim: '.'}}
	if !slices.Equal(ns.Personal, want) || len(ns.Other) != 0 || len(ns.Shared) != 0 {
		t.Errorf("NAMESPACE = personal %+v, other %+v, shared %+v; want personal %+v only", ns.Personal, ns.Other, ns.Shared, want)
	}

	s.mu.Lock()
	list, err := s.conn().List("", "*", nil).Collect()
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	for _, l := range list {
		if l.Delim != '.' {
			t.Errorf("LIST %q has delimiter %q, want '.'", l.Mailbox, l.Delim)
		}
	}
}

// A name outside "INBOX." belongs to no namespace, so the server refuses
// to create it (RFC 2342 §4: the client prepends the personal prefix).
func TestDovecotHostingRefusesNameOutsidePrefix(t *testing.T) {
	t.Parallel()
	s := startHostingDovecot(t)
	s.mu.Lock()
	err := s.conn().Create("Projekte", nil).Wait()
	s.mu.Unlock()
	if err == nil {
		t.Fatalf(`CREATE "Projekte" succeeded on a server whose only namespace is "INBOX."; mailboxes: %q`, s.Mailboxes())
	}
	t.Logf(`CREATE "Projekte": %v`, err)
	if slices.Contains(s.Mailboxes(), "Projekte") {
		t.Errorf(`"Projekte" is listed after a refused CREATE`)
	}
}

// Every harness method works with names below the prefix, levels joined
// with ".".
func TestDovecotHostingMethods(t *testing.T) {
	t.Parallel()
	s := startHostingDovecot(t)

	s.CreateMailbox("INBOX.Archive.2024")
	s.CreateMailbox("INBOX.Archive.2024") // again: a no-op
	if got, want := s.Mailboxes(), []string{"INBOX", "INBOX.Archive", "INBOX.Archive.2024"}; !slices.Equal(got, want) {
		t.Fatalf("Mailboxes() = %q, want %q", got, want)
	}
	// Maildir++ on disk: one dot-folder per mailbox beside INBOX's cur.
	mail := filepath.Join(s.dovecot.dir, "home", "Mail")
	for _, d := range []string{"cur", ".Archive", ".Archive.2024"} {
		if _, err := os.Stat(filepath.Join(mail, d)); err != nil {
			t.Errorf("Maildir++ layout: %v", err)
		}
	}

	const mbox = "INBOX.Archive.2024"
	date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	body := crlf("Subject: first\n\nunder the prefix\n")
	uid := s.Append(mbox, body, []string{`\Seen`}, date)
	// AppendMany takes the MULTIAPPEND path on Dovecot, which quotes the
	// name itself.
	more := s.AppendMany(mbox, []Message{
		{Body: crlf("Subject: second\n\nx\n"), Date: date},
		{Body: crlf("Subject: third\n\ny\n"), Flags: []string{`\Flagged`}, Date: date},
	})
	if len(more) != 2 || more[0] <= uid || more[1] <= more[0] {
		t.Fatalf("AppendMany UIDs %v after Append's %d, want two increasing", more, uid)
	}
	s.AddFlags(mbox, more[0], "$label1")
	s.SetFlags(mbox, uid, `\Answered`)
	s.Expunge(mbox, more[1])

	msgs := s.Messages(mbox)
	if len(msgs) != 2 {
		t.Fatalf("Messages(%q) = %d messages, want 2", mbox, len(msgs))
	}
	if msgs[0].UID != uid || !bytes.Equal(msgs[0].Body, body) || !slices.Equal(msgs[0].Flags, []string{`\Answered`}) || !msgs[0].Date.Equal(date) {
		t.Errorf("first message = %+v, want UID %d, body %q, flags [\\Answered], date %v", msgs[0], uid, body, date)
	}
	if msgs[1].UID != more[0] || !slices.Equal(msgs[1].Flags, []string{"$label1"}) {
		t.Errorf("second message = UID %d flags %q, want UID %d flags [$label1]", msgs[1].UID, msgs[1].Flags, more[0])
	}
	if s.UIDValidity(mbox) == 0 {
		t.Errorf("UIDValidity(%q) = 0", mbox)
	}

	// INBOX itself takes messages as on any server.
	s.Append("INBOX", crlf("Subject: inbox\n\nz\n"), nil, time.Time{})
	if n := len(s.Messages("INBOX")); n != 1 {
		t.Errorf("INBOX holds %d messages, want 1", n)
	}

	// RENAME carries the mailboxes below (RFC 3501 §6.3.5).
	s.RenameMailbox("INBOX.Archive", "INBOX.Old")
	if got, want := s.Mailboxes(), []string{"INBOX", "INBOX.Old", "INBOX.Old.2024"}; !slices.Equal(got, want) {
		t.Errorf("after RENAME Mailboxes() = %q, want %q", got, want)
	}
	if n := len(s.Messages("INBOX.Old.2024")); n != 2 {
		t.Errorf("INBOX.Old.2024 holds %d messages after RENAME, want 2", n)
	}
	s.DeleteMailbox("INBOX.Old.2024")
	if got, want := s.Mailboxes(), []string{"INBOX", "INBOX.Old"}; !slices.Equal(got, want) {
		t.Errorf("after DELETE Mailboxes() = %q, want %q", got, want)
	}
}
