package imapremote

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// TestGmailLimitErrors: each of Gmail's limit answers, from the
// emulation, is the error the engine branches on, and Throttled says when
// the server asked to slow down.
func TestGmailLimitErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("too many simultaneous connections", func(t *testing.T) {
		s := imaptest.StartGmail(t, imaptest.GmailOptions{Limits: imaptest.GmailLimits{MaxConnections: 1}})
		connect(t, s, nil)
		_, err := Dial(ctx, connectOptions(t, s, nil))
		if !errors.Is(err, mail.ErrTooManyConnections) || !errors.Is(err, mail.ErrTransient) || errors.Is(err, ErrAuth) {
			t.Fatalf("second login: %v; want too many connections, transient, not an authentication failure", err)
		}
	})
	t.Run("over quota", func(t *testing.T) {
		s := imaptest.StartGmail(t, imaptest.GmailOptions{Limits: imaptest.GmailLimits{OverQuotaAfterCommands: 3}})
		s.GmailAdd(imaptest.GmailMessage{Body: []byte("Subject: a\r\n\r\nA.\r\n"), Labels: []string{`\Inbox`}})
		c := connect(t, s, nil) // LOGIN, CAPABILITY (or none)
		var err error
		for range 4 {
			if _, err = c.Select(ctx, "INBOX"); err != nil {
				break
			}
		}
		if !errors.Is(err, mail.ErrOverQuota) || errors.Is(err, mail.ErrTransient) {
			t.Fatalf("SELECT over quota: %v; want ErrOverQuota, not transient", err)
		}
		// Through the byte-stream layer too.
		_, err = c.GmailIDs(ctx, []mail.UID{1})
		if !errors.Is(err, mail.ErrOverQuota) {
			t.Fatalf("X-GM-MSGID fetch over quota: %v", err)
		}
	})
	t.Run("session expired", func(t *testing.T) {
		s := imaptest.StartGmail(t, imaptest.GmailOptions{})
		c := connect(t, s, nil)
		if _, err := c.Select(ctx, "INBOX"); err != nil {
			t.Fatal(err)
		}
		s.GmailExpireSessions()
		_, err := c.Select(ctx, "INBOX")
		if !errors.Is(err, mail.ErrTransient) || !strings.Contains(err.Error(), "Session expired") {
			t.Fatalf("SELECT after the session expired: %v; want a transient error saying so", err)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		s := imaptest.StartGmail(t, imaptest.GmailOptions{Limits: imaptest.GmailLimits{ThrottleAfter: 5}})
		c := connect(t, s, nil)
		if c.Throttled() {
			t.Fatal("throttled before the server said so")
		}
		throttled := false
		for range 10 {
			if _, err := c.Select(ctx, "INBOX"); err != nil {
				t.Fatal(err)
			}
			if throttled = c.Throttled(); throttled {
				break
			}
		}
		if !throttled {
			t.Fatal("Throttled never reported the server's [THROTTLED]")
		}
	})
}
