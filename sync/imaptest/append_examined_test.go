package imaptest

import (
	"bytes"
	"testing"
	"time"
)

// TestAppendAfterExamine: Append to the mailbox Messages has just
// EXAMINEd stores the message, on Courier too (which refuses APPEND to
// the mailbox a connection has open read-only), and a mailbox selected
// read-write for a STORE does not get in the way either.
func TestAppendAfterExamine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *Server
	}{
		{"dovecot", func(t *testing.T) *Server { return StartDovecot(t, DovecotOptions{}) }},
		{"courier", func(t *testing.T) *Server { return StartCourier(t, CourierOptions{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.start(t)
			date := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
			first := []byte("Subject: first\r\n\r\none\r\n")
			second := []byte("Subject: second\r\n\r\ntwo\r\n")
			u1 := s.Append("INBOX", first, nil, date)
			if n := len(s.Messages("INBOX")); n != 1 {
				t.Fatalf("INBOX holds %d messages, want 1", n)
			}
			u2 := s.Append("INBOX", second, nil, date) // INBOX is examined
			s.AddFlags("INBOX", u1, `\Seen`)
			third := []byte("Subject: third\r\n\r\nthree\r\n")
			u3 := s.Append("INBOX", third, nil, date) // INBOX is selected
			msgs := s.Messages("INBOX")
			if len(msgs) != 3 {
				t.Fatalf("INBOX holds %d messages, want 3", len(msgs))
			}
			for i, want := range []struct {
				uid  uint32
				body []byte
			}{{u1, first}, {u2, second}, {u3, third}} {
				if msgs[i].UID != want.uid || !bytes.Equal(msgs[i].Body, want.body) {
					t.Errorf("message %d: UID %d %q, want UID %d %q", i, msgs[i].UID, msgs[i].Body, want.uid, want.body)
				}
			}
		})
	}
}
