package sync_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// partialMessage is message i of the partial-sync story: one a month from
// January 2024, every third one large.
func partialMessage(i int) ([]byte, time.Time) {
	body := fmt.Sprintf("Subject: m%d\r\nMessage-ID: <m%d@example.org>\r\n\r\nhello %d\r\n", i, i, i)
	if i%3 == 0 {
		body += strings.Repeat("x", 4000) + "\r\n"
	}
	return []byte(body), time.Date(2024, time.Month(1+i), 1, 12, 0, 0, 0, time.UTC)
}

// TestPartialSyncLimits: with each limit, a sync downloads only the
// messages within it and records the others as skipped; a second sync
// does nothing; the server still has every message; a skipped message
// expunged on the server is forgotten, nothing else removed; a message
// deleted locally is still deleted on the server; --fetch-skipped then
// downloads the rest.
func TestPartialSyncLimits(t *testing.T) {
	limits := []struct {
		name string
		set  func(o *satsync.Options)
		// want reports whether message i (0..8) is downloaded.
		want func(i int) bool
	}{
		{"since", func(o *satsync.Options) { o.Since = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC) }, func(i int) bool { return i >= 4 }},
		{"max_size", func(o *satsync.Options) { o.MaxSize = 2000 }, func(i int) bool { return i%3 != 0 }},
		{"max_messages", func(o *satsync.Options) { o.MaxMessages = 4 }, func(i int) bool { return i >= 5 }},
	}
	for _, mode := range serverModes {
		for _, lim := range limits {
			t.Run(mode.name+"/"+lim.name, func(t *testing.T) {
				srv := mode.start(t)
				const n = 9
				for i := range n {
					body, date := partialMessage(i)
					srv.Append("INBOX", body, []string{`\Seen`}, date)
				}
				e := newEnv(t, srv)
				lim.set(&e.opts)
				wantDown := 0
				for i := range n {
					if lim.want(i) {
						wantDown++
					}
				}
				res := e.mustSync()
				if down, _, _ := totals(res); down != wantDown {
					t.Fatalf("first sync downloaded %d, want %d", down, wantDown)
				}
				e.assertPartial(n, lim.want)

				before := e.snapshot()
				res = e.mustSync()
				if down, flags, removed := totals(res); down+flags+removed != 0 || deletedOnServer(res) != 0 {
					t.Fatalf("second sync was not a no-op: %+v", res.Mailboxes)
				}
				if e.snapshot() != before {
					t.Fatal("second sync changed the Maildir")
				}
				if got := len(srv.Messages("INBOX")); got != n {
					t.Fatalf("server has %d messages, want %d", got, n)
				}

				// The server expunges a skipped message: forgotten, no
				// file removed; the user deletes a downloaded one: deleted
				// on the server.
				msgs := srv.Messages("INBOX")
				var skippedUID, keptUID uint32
				for i, m := range msgs {
					if !lim.want(i) && skippedUID == 0 {
						skippedUID = m.UID
					}
					if lim.want(i) {
						keptUID = m.UID
					}
				}
				srv.Expunge("INBOX", skippedUID)
				rows := e.rows("INBOX")
				if err := e.removeFile("INBOX", rows[mail.UID(keptUID)].Key); err != nil {
					t.Fatal(err)
				}
				res = e.mustSync()
				if _, _, removed := totals(res); removed != 0 || deletedOnServer(res) != 1 {
					t.Fatalf("after an expunge of a skipped message and a local deletion: %+v", res.Mailboxes)
				}
				rows = e.rows("INBOX")
				if _, ok := rows[mail.UID(skippedUID)]; ok {
					t.Errorf("the expunged skipped message is still in the index")
				}
				if got := len(srv.Messages("INBOX")); got != n-2 {
					t.Fatalf("server has %d messages, want %d", got, n-2)
				}

				// --fetch-skipped downloads what is left on the server.
				e.opts.FetchSkipped = true
				res = e.mustSync()
				if down, _, _ := totals(res); down != n-wantDown-1 {
					t.Fatalf("--fetch-skipped downloaded %d, want %d", down, n-wantDown-1)
				}
				e.opts.FetchSkipped = false
				e.assertMirror(false)
				res = e.mustSync()
				if down, flags, removed := totals(res); down+flags+removed != 0 || deletedOnServer(res) != 0 {
					t.Fatalf("sync after --fetch-skipped was not a no-op: %+v", res.Mailboxes)
				}
			})
		}
	}
}

// assertPartial checks INBOX after a limited sync: message i has a file
// exactly when want(i), and an index row either way, skipped when it has
// no file.
func (e *env) assertPartial(n int, want func(i int) bool) {
	e.t.Helper()
	msgs := e.srv.Messages("INBOX")
	if len(msgs) != n {
		e.t.Fatalf("server has %d messages, want %d", len(msgs), n)
	}
	files, err := e.dir("INBOX").Scan()
	if err != nil {
		e.t.Fatal(err)
	}
	rows := e.rows("INBOX")
	for i, m := range msgs {
		row, ok := rows[mail.UID(m.UID)]
		if !ok {
			e.t.Fatalf("UID %d has no index row", m.UID)
		}
		_, hasFile := files[row.Key]
		switch {
		case want(i) && (!hasFile || row.State != mail.StateSynced):
			e.t.Errorf("message %d (UID %d): file %v, state %q; want a synced file", i, m.UID, hasFile, row.State)
		case !want(i) && (hasFile || row.State != mail.StateSkipped):
			e.t.Errorf("message %d (UID %d): file %v, state %q; want skipped", i, m.UID, hasFile, row.State)
		}
	}
}

func (e *env) rows(mailbox string) map[mail.UID]mail.Message {
	e.t.Helper()
	ctx := context.Background()
	mb, ok, err := e.ix.Mailbox(ctx, mailbox)
	if err != nil || !ok {
		e.t.Fatalf("%s: not in the index (%v)", mailbox, err)
	}
	rows, err := e.ix.Messages(ctx, mb.ID, mb.UIDValidity)
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

func (e *env) removeFile(mailbox, key string) error {
	ents, err := e.dir(mailbox).Scan()
	if err != nil {
		return err
	}
	ent, ok := ents[key]
	if !ok {
		return fmt.Errorf("no file for key %s", key)
	}
	return os.Remove(ent.Path(e.dir(mailbox)))
}

func deletedOnServer(res satsync.Result) int {
	n := 0
	for _, m := range res.Mailboxes {
		n += m.Deleted
	}
	return n
}

// folderFiles counts the message files of a folder below the root.
func folderFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		n += len(ents)
	}
	return n
}
