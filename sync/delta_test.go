package sync_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// countingIndex counts the message rows the engine reads.
type countingIndex struct {
	satsync.Index
	mu   gosync.Mutex
	rows int
}

func (c *countingIndex) add(n int) {
	c.mu.Lock()
	c.rows += n
	c.mu.Unlock()
}

func (c *countingIndex) read() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.rows
	c.rows = 0
	return n
}

func (c *countingIndex) EachMessage(ctx context.Context, id int64, uidv mail.UIDValidity, fn func(mail.Message) error) error {
	return c.Index.EachMessage(ctx, id, uidv, func(m mail.Message) error { c.add(1); return fn(m) })
}

func (c *countingIndex) MessagesOf(ctx context.Context, id int64, uidv mail.UIDValidity, uids []mail.UID, fn func(mail.Message) error) error {
	return c.Index.MessagesOf(ctx, id, uidv, uids, func(m mail.Message) error { c.add(1); return fn(m) })
}

func (c *countingIndex) Messages(ctx context.Context, id int64, uidv mail.UIDValidity) (map[mail.UID]mail.Message, error) {
	ms, err := c.Index.Messages(ctx, id, uidv)
	c.add(len(ms))
	return ms, err
}

// TestDeltaReadsOnlyChanges: with the folder as the last sync left it, a
// sync after a few changes on the server reads the rows of the changed
// and expunged messages only, not the mailbox's (QRESYNC is asked without
// known UIDs), and mirrors the server exactly; the sync after it checks
// the folder locally and selects nothing. A folder changed locally is
// read whole again.
func TestDeltaReadsOnlyChanges(t *testing.T) {
	for _, mode := range withOthers(serverModes[:2]) {
		if mode.name == "courier" || mode.name == "memory-renumbering" {
			continue // no CONDSTORE: no delta to learn
		}
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			inbox := srv.Name("INBOX")
			seed(t, srv, 450, 0)
			counter := &countingIndex{}
			e := newEnv(t, srv)
			e.opts.MaxDelete = &satsync.DeleteLimit{Percent: 25, Min: 10} // the default
			e.index = func(ix satsync.Index) satsync.Index { counter.Index = ix; return counter }
			e.mustSync()
			e.backdate()
			e.mustSync() // the folders' stamps are kept
			msgs := srv.Messages(inbox)
			if len(msgs) < 45 {
				t.Fatalf("INBOX has %d messages", len(msgs))
			}
			flagged := 0
			for i := 0; flagged < 6; i += 3 {
				if !slices.Contains(msgs[i].Flags, `\Flagged`) {
					srv.AddFlags(inbox, msgs[i].UID, `\Flagged`)
					flagged++
				}
			}
			srv.Append(inbox, msg("new one"), nil, day)
			counter.read()
			res := e.mustSync()
			if got := counter.read(); got > 20 {
				t.Errorf("the sync after 7 changes read %d index rows", got)
			}
			down, flags, removed := totals(res)
			if down != 1 || flags != 6 || removed != 0 {
				t.Errorf("downloaded %d, flags %d, removed %d; want 1, 6, 0", down, flags, removed)
			}
			e.assertMirror(false)

			// Expunges: QRESYNC names them; with CONDSTORE alone only a
			// list of every UID on the server tells which (RFC 7162
			// §3.1), and the mailbox's rows are read whole.
			settle()
			e.mustSync()
			// Eleven: within sync.max_delete for the mailbox (25% of
			// its 50), not for the dozen rows a delta reads.
			var gone []uint32
			for i := 0; i < 11; i++ {
				gone = append(gone, msgs[4+i*3].UID)
			}
			srv.Expunge(inbox, gone...)
			srv.AddFlags(inbox, msgs[len(msgs)-3].UID, `\Answered`)
			counter.read()
			res = e.mustSync()
			limit := 30
			if !strings.Contains(e.trace.String(), "QRESYNC") {
				limit = 2*len(msgs) + 20 // learned, and checked afterwards
			}
			if got := counter.read(); got > limit {
				t.Errorf("the sync after 12 changes read %d index rows, want at most %d", got, limit)
			}
			if _, _, removed := totals(res); removed != 11 {
				t.Errorf("removed %d, want 11", removed)
			}
			for _, m := range res.Mailboxes {
				if m.Safety != nil {
					t.Errorf("%s: held back: %v", m.Name, m.Safety)
				}
			}
			if strings.Contains(e.trace.String(), "QRESYNC") {
				if m := regexp.MustCompile(`SELECT \S+ \(QRESYNC \(\d+ \d+\)\)`).FindString(e.trace.String()); m == "" {
					t.Errorf("QRESYNC SELECT carried known UIDs:\n%s", selectLines(e.trace.String()))
				}
			}
			e.assertMirror(false)

			// The next run checks the changed folder locally: nothing is
			// selected, and the one after trusts its stamp again. (A
			// folder changed within the clock tick of its last check is
			// never trusted: the runs here are milliseconds apart.)
			settle()
			e.mustSync()
			for _, c := range e.clientCommands() {
				if strings.Contains(c, "SELECT") || strings.Contains(c, "FETCH") {
					t.Fatalf("the sync after the delta sent %q", c)
				}
			}
			counter.read()
			e.mustSync()
			if got := counter.read(); got != 0 {
				t.Errorf("a no-op read %d index rows", got)
			}

			// A folder changed locally is listed and read whole.
			f := e.dir("INBOX")
			files, err := f.Scan()
			if err != nil {
				t.Fatal(err)
			}
			for k := range files {
				if err := f.Remove(k); err != nil {
					t.Fatal(err)
				}
				break
			}
			settle()
			srv.AddFlags(inbox, msgs[len(msgs)-4].UID, `\Answered`)
			counter.read()
			res = e.mustSync()
			if got := counter.read(); got < len(msgs)-10 {
				t.Errorf("a sync after a local change read %d index rows, want every row of INBOX", got)
			}
			e.assertMirror(false)
		})
	}
}

func selectLines(trace string) string {
	var out []string
	for _, l := range strings.Split(trace, "\n") {
		if strings.Contains(l, "SELECT") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// settle waits past the clock tick of the folders' last change, as the
// minutes between two real runs do.
func settle() { time.Sleep(100 * time.Millisecond) }

// TestDeltaAfterChangingDelta: a delta sync that downloaded changed the
// folder, so it recorded no stamp of it. When the server has changed
// again by the next sync, the folder is compared with the index there,
// locally, and the mailbox is learned as a delta again (QRESYNC asked
// without known UIDs), not read whole; a file changed since is still
// seen.
func TestDeltaAfterChangingDelta(t *testing.T) {
	srv := serverModes[0].start(t)
	seed(t, srv, 120, 0)
	e := newEnv(t, srv)
	e.mustSync()
	e.backdate()
	e.mustSync()
	delta := regexp.MustCompile(`SELECT \S+ \(QRESYNC \(\d+ \d+\)\)`)
	for round := range 2 {
		srv.Append("INBOX", msg(fmt.Sprintf("new in round %d", round)), nil, day)
		settle()
		res := e.mustSync()
		if down, _, _ := totals(res); down != 1 {
			t.Fatalf("round %d: downloaded %d, want 1", round, down)
		}
		if !delta.MatchString(e.trace.String()) {
			t.Errorf("round %d: INBOX not learned as a delta after a sync that downloaded:\n%s", round, e.clientCommands())
		}
	}
	// A flag changed locally after a sync that downloaded: the comparison
	// disagrees, the mailbox is read whole and the flag pushed.
	srv.Append("INBOX", msg("one more"), nil, day)
	settle()
	e.mustSync()
	rows := e.rows("INBOX")
	var key string
	var uid mail.UID
	for u, r := range rows {
		if !r.Flags.Has(mail.FlagFlagged) {
			key, uid = r.Key, u
			break
		}
	}
	if _, err := e.dir("INBOX").SetFlags(key, rows[uid].Flags.System().Union(mail.NewFlags(`\Flagged`))); err != nil {
		t.Fatal(err)
	}
	srv.Append("INBOX", msg("and another"), nil, day)
	settle()
	e.mustSync()
	if delta.MatchString(e.trace.String()) {
		t.Errorf("learned as a delta although a file changed since the last sync")
	}
	for _, m := range srv.Messages("INBOX") {
		if mail.UID(m.UID) == uid && !slices.Contains(m.Flags, `\Flagged`) {
			t.Errorf("UID %d on the server: %v, want \\Flagged", uid, m.Flags)
		}
	}
	e.assertMirror(false)
}

func (c *countingIndex) MessagesByKey(ctx context.Context, id int64, keys []string) (map[string]mail.Message, error) {
	ms, err := c.Index.MessagesByKey(ctx, id, keys)
	c.add(len(ms))
	return ms, err
}
