package imapremote

import (
	"io"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// TestSettle: Settle sends a NOOP only on a connection that fetched
// bodies from the mailbox it has open and opened that mailbox at least a
// second before, and only once; opening a mailbox again starts over.
func TestSettle(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		now := time.Now()
		e.c.now = func() time.Time { return now }
		body := writeMessage(0)
		u := e.srv.Append("INBOX", body, nil, writeDate)
		fetch := func() {
			t.Helper()
			err := e.c.FetchBodies(t.Context(), []mail.RemoteMessage{{UID: mail.UID(u), Size: int64(len(body))}}, func(_ mail.UID, _ int64, r io.Reader) error {
				_, err := io.Copy(io.Discard, r)
				return err
			})
			if err != nil {
				t.Fatalf("FetchBodies: %v", err)
			}
		}
		settle := func(want bool, when string) {
			t.Helper()
			mark := e.mark()
			sent, err := e.c.Settle(t.Context())
			if err != nil {
				t.Fatalf("Settle %s: %v", when, err)
			}
			noops := len(tracedCommands(e.since(mark), "NOOP"))
			if sent != want || noops != map[bool]int{false: 0, true: 1}[want] {
				t.Errorf("Settle %s: reported %v and sent %d NOOPs, want %v", when, sent, noops, want)
			}
		}

		e.selectBox(t, "INBOX")
		now = now.Add(2 * time.Second)
		settle(false, "with nothing fetched")

		e.selectBox(t, "INBOX")
		fetch()
		now = now.Add(settleAfter - time.Millisecond)
		settle(false, "within the second after the SELECT")

		now = now.Add(time.Millisecond)
		settle(true, "a second after the SELECT, after a fetch")
		settle(false, "a second time")

		fetch()
		settle(true, "after another fetch")
	})
}
