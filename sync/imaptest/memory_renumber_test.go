package imaptest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// seedRenameTree fills Work, Work/Projects and Work/Projects/X (and the
// unrelated Workshop) with messages whose UIDs do not start at 1, and
// returns what each mailbox holds.
func seedRenameTree(t *testing.T, s *Server) map[string][]Message {
	t.Helper()
	s.CreateMailbox("Work/Projects/X")
	s.CreateMailbox("Workshop")
	// A mailbox deleted below the one renamed is not carried along.
	s.CreateMailbox("Work/Gone")
	s.DeleteMailbox("Work/Gone")
	for i, name := range []string{"Work", "Work/Projects", "Work/Projects/X", "Workshop"} {
		var msgs []Message
		for j := range 3 + i {
			msgs = append(msgs, Message{
				Body:  crlf(fmt.Sprintf("Subject: %s %d\n\nbody %d\n", name, j, j)),
				Flags: [][]string{nil, {`\Seen`}, {`\Flagged`, "$label1"}}[j%3],
				Date:  time.Date(2020+j, 1, 2, 3, 4, 5, 0, time.UTC),
			})
		}
		uids := s.AppendMany(name, msgs)
		s.Expunge(name, uids[0]) // the rest start at UID 2
	}
	out := make(map[string][]Message)
	for _, name := range []string{"Work", "Work/Projects", "Work/Projects/X", "Workshop"} {
		out[name] = s.Messages(name)
		if out[name][0].UID == 1 {
			t.Fatalf("%s: first UID is 1 after expunging it", name)
		}
	}
	return out
}

// sameContent reports whether got holds want's messages in the same order
// with the same body, flags and date, whatever their UIDs.
func sameContent(got, want []Message) bool {
	return slices.EqualFunc(got, want, func(a, b Message) bool {
		return bytes.Equal(a.Body, b.Body) && slices.Equal(a.Flags, b.Flags) && a.Date.Equal(b.Date)
	})
}

func TestMemoryRenameRenumbers(t *testing.T) {
	for _, opts := range []MemoryOptions{
		{RenameRenumbers: true},
		{RenameRenumbers: true, SharedUIDValidity: true},
	} {
		t.Run(fmt.Sprintf("shared=%v", opts.SharedUIDValidity), func(t *testing.T) {
			t.Parallel()
			s := StartMemoryWith(t, opts)
			if s.Kind != "memory-renumbering" {
				t.Errorf("Kind = %q", s.Kind)
			}
			before := seedRenameTree(t, s)
			oldV := map[string]uint32{}
			for name := range before {
				oldV[name] = s.UIDValidity(name)
			}

			s.RenameMailbox("Work", "Job")

			want := []string{"INBOX", "Job", "Job/Projects", "Job/Projects/X", "Workshop"}
			if got := s.Mailboxes(); !slices.Equal(got, want) {
				t.Fatalf("after RENAME Mailboxes() = %q, want %q", got, want)
			}
			for _, n := range []string{"Work", "Work/Projects", "Work/Projects/X"} {
				to := "Job" + n[len("Work"):]
				got := s.Messages(to)
				if !sameContent(got, before[n]) {
					t.Errorf("%s holds %+v\nwant the messages of %s: %+v", to, got, n, before[n])
				}
				for i, m := range got {
					if m.UID != uint32(i+1) {
						t.Errorf("%s: message %d has UID %d, want %d (renumbered from 1)", to, i, m.UID, i+1)
					}
				}
				if v := s.UIDValidity(to); v == 0 || v == oldV[n] {
					t.Errorf("UIDVALIDITY of %s = %d, %s had %d: want a new non-zero value", to, v, n, oldV[n])
				}
			}
			// A sibling whose name only starts like the old one stays.
			if got := s.Messages("Workshop"); !slices.EqualFunc(got, before["Workshop"], func(a, b Message) bool {
				return a.UID == b.UID && bytes.Equal(a.Body, b.Body)
			}) {
				t.Errorf("Workshop changed: %+v", got)
			}
			if v := s.UIDValidity("Workshop"); v != oldV["Workshop"] {
				t.Errorf("UIDVALIDITY of Workshop went from %d to %d", oldV["Workshop"], v)
			}

			// The renamed mailbox takes new messages after the copies.
			if uid := s.Append("Job", crlf("Subject: new\n\nx\n"), nil, time.Time{}); uid != uint32(len(before["Work"])+1) {
				t.Errorf("APPEND to Job got UID %d, want %d", uid, len(before["Work"])+1)
			}
		})
	}
}

func TestMemoryRenameRenumbersRefusesExistingTarget(t *testing.T) {
	t.Parallel()
	s := StartMemoryWith(t, MemoryOptions{RenameRenumbers: true})
	s.CreateMailbox("A/B")
	s.CreateMailbox("C/B")
	s.Append("A/B", crlf("Subject: a\n\nx\n"), nil, time.Time{})
	vA := s.UIDValidity("A")

	s.mu.Lock()
	err := s.leave().Rename("A", "C", nil).Wait()
	s.mu.Unlock()
	if err == nil {
		t.Fatal(`RENAME "A" to the existing "C" succeeded`)
	}
	if got, want := s.Mailboxes(), []string{"A", "A/B", "C", "C/B", "INBOX"}; !slices.Equal(got, want) {
		t.Errorf("after a refused RENAME Mailboxes() = %q, want %q", got, want)
	}
	if v := s.UIDValidity("A"); v != vA || len(s.Messages("A/B")) != 1 {
		t.Errorf("A changed after a refused RENAME: UIDVALIDITY %d (was %d), A/B holds %d messages", v, vA, len(s.Messages("A/B")))
	}
}

// RFC 9051 §6.3.6: RENAME INBOX moves its messages to the new mailbox and
// leaves INBOX, and the mailboxes below it, in place.
func TestMemoryRenameRenumbersInbox(t *testing.T) {
	t.Parallel()
	s := StartMemoryWith(t, MemoryOptions{RenameRenumbers: true, SharedUIDValidity: true})
	s.CreateMailbox("INBOX/Sub")
	s.Append("INBOX/Sub", crlf("Subject: sub\n\nx\n"), nil, time.Time{})
	uids := s.AppendMany("INBOX", []Message{
		{Body: crlf("Subject: 1\n\nx\n"), Flags: []string{`\Seen`}, Date: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Body: crlf("Subject: 2\n\ny\n"), Date: time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)},
	})
	s.Expunge("INBOX", uids[0])
	before := s.Messages("INBOX")

	s.RenameMailbox("INBOX", "Old Inbox")

	if got, want := s.Mailboxes(), []string{"INBOX", "INBOX/Sub", "Old Inbox"}; !slices.Equal(got, want) {
		t.Errorf("Mailboxes() = %q, want %q", got, want)
	}
	if n := len(s.Messages("INBOX")); n != 0 {
		t.Errorf("INBOX holds %d messages after RENAME, want 0", n)
	}
	if n := len(s.Messages("INBOX/Sub")); n != 1 {
		t.Errorf("INBOX/Sub holds %d messages after RENAME of INBOX, want 1", n)
	}
	got := s.Messages("Old Inbox")
	if !sameContent(got, before) || len(got) != 1 || got[0].UID != 1 {
		t.Errorf("Old Inbox holds %+v, want INBOX's %+v renumbered from 1", got, before)
	}
}

func TestMemorySharedUIDValidity(t *testing.T) {
	t.Parallel()
	s := StartMemoryWith(t, MemoryOptions{SharedUIDValidity: true})
	inbox := s.UIDValidity("INBOX")
	s.CreateMailbox("A")
	s.CreateMailbox("B")
	a, b := s.UIDValidity("A"), s.UIDValidity("B")
	if a == 0 || a != b || a != inbox {
		t.Errorf("UIDVALIDITY of INBOX, A, B made in one tick = %d, %d, %d; want one non-zero value", inbox, a, b)
	}
	// SELECT and EXAMINE report what STATUS does.
	for _, readOnly := range []bool{false, true} {
		s.mu.Lock()
		_, sel := s.selectMailbox("A", readOnly)
		s.mu.Unlock()
		if sel.UIDValidity != a {
			t.Errorf("SELECT (read-only %v) A: UIDVALIDITY %d, STATUS said %d", readOnly, sel.UIDValidity, a)
		}
	}

	s.AdvanceUIDValidityClock()
	s.CreateMailbox("C")
	if c := s.UIDValidity("C"); c == a || c == 0 {
		t.Errorf("UIDVALIDITY of C, made after the clock moved, = %d; A has %d", c, a)
	}
	if v := s.UIDValidity("A"); v != a {
		t.Errorf("UIDVALIDITY of A changed from %d to %d when the clock moved", a, v)
	}

	// RFC 9051 §2.3.1.1: a name that comes back gets a new value, even
	// within the tick it was made in.
	c := s.UIDValidity("C")
	s.DeleteMailbox("C")
	s.CreateMailbox("C")
	if v := s.UIDValidity("C"); v == c {
		t.Errorf("C deleted and made again reports its old UIDVALIDITY %d", v)
	}

	// Without RenameRenumbers a renamed mailbox keeps its value, and its
	// old name does not pass it on.
	s.RenameMailbox("A", "A2")
	s.CreateMailbox("A")
	if v := s.UIDValidity("A2"); v != a {
		t.Errorf("renamed A2 reports UIDVALIDITY %d, A had %d", v, a)
	}
	if v := s.UIDValidity("A"); v == a {
		t.Errorf("new A reports the old A's UIDVALIDITY %d", v)
	}
}

// APPENDUID and COPYUID (RFC 4315 §3), also in MOVE's untagged OK (RFC
// 6851 §4.3), carry the UIDVALIDITY that STATUS reports.
func TestMemorySharedUIDValidityResponseCodes(t *testing.T) {
	t.Parallel()
	s := StartMemoryWith(t, MemoryOptions{SharedUIDValidity: true})
	s.AdvanceUIDValidityClock() // Dest's value differs from INBOX's
	s.CreateMailbox("Dest")
	want := s.UIDValidity("Dest")

	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(s.User, s.Password).Wait(); err != nil {
		t.Fatal(err)
	}

	body := crlf("Subject: a\n\nx\n")
	for range 3 {
		cmd := c.Append("INBOX", int64(len(body)), nil)
		cmd.Write(body)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	cmd := c.Append("Dest", int64(len(body)), nil)
	cmd.Write(body)
	cmd.Close()
	app, err := cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if app.UIDValidity != want {
		t.Errorf("APPENDUID carries UIDVALIDITY %d, STATUS says %d", app.UIDValidity, want)
	}

	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cp, err := c.Copy(imap.UIDSetNum(1), "Dest").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if cp.UIDValidity != want || cp.DestUIDs.String() != "2" {
		t.Errorf("COPYUID = %d %v, want %d 2", cp.UIDValidity, cp.DestUIDs, want)
	}

	mv, err := c.Move(imap.UIDSetNum(2, 3), "Dest").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if mv.UIDValidity != want || fmt.Sprint(mv.SourceUIDs) != "2:3" || fmt.Sprint(mv.DestUIDs) != "3:4" {
		t.Errorf("MOVE's COPYUID = %d %v %v, want %d 2:3 3:4", mv.UIDValidity, mv.SourceUIDs, mv.DestUIDs, want)
	}
	// The client saw the moved messages expunged before the tagged OK.
	if n := c.Mailbox().NumMessages; n != 1 {
		t.Errorf("after MOVE the client counts %d messages in INBOX, want 1", n)
	}
	if got := s.Messages("INBOX"); len(got) != 1 || got[0].UID != 1 || slices.Contains(got[0].Flags, `\Deleted`) {
		t.Errorf("INBOX after MOVE = %+v, want UID 1 alone, not \\Deleted", got)
	}
	dest := s.Messages("Dest")
	if len(dest) != 4 || dest[3].UID != 4 || slices.Contains(dest[3].Flags, `\Deleted`) {
		t.Errorf("Dest after MOVE = %+v, want UIDs 1 to 4, none \\Deleted", dest)
	}

	// LIST-STATUS would show the internal value; the server refuses it.
	if _, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{UIDValidity: true}}).Collect(); err == nil {
		t.Error("LIST RETURN (STATUS (UIDVALIDITY)) succeeded")
	}
}
