package sync_test

import (
	"context"
	"fmt"
	"slices"
	gosync "sync"
	"testing"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// localStamp is the folder stamp the index recorded for mailbox.
func (e *env) localStamp(mailbox string) string {
	e.t.Helper()
	mb, ok, err := e.ix.Mailbox(context.Background(), mailbox)
	if err != nil || !ok {
		e.t.Fatalf("mailbox %q in the index: %v, %v", mailbox, ok, err)
	}
	return mb.LocalStamp
}

// TestDeltaKeepsItsOwnStamp: a delta sync that downloads, renames and
// removes files in its folder keeps the folder's stamp where the run can
// watch the folder, having checked only the rows of the messages that
// changed there; the next sync after more server changes then reads the
// changed rows only. Without a watcher nothing is kept, and the next sync
// compares the whole folder with every row first.
func TestDeltaKeepsItsOwnStamp(t *testing.T) {
	type run struct {
		mode  serverMode
		watch bool
	}
	runs := []run{{serverModes[0], true}, {serverModes[0], false}, {serverModes[1], true}}
	for _, m := range otherServers {
		if m.name == "cyrus" {
			runs = append(runs, run{m, true})
		}
	}
	for _, run := range runs {
		watch := run.watch
		t.Run(fmt.Sprintf("%s/watch=%v", run.mode.name, watch), func(t *testing.T) {
			srv := run.mode.start(t)
			// With CONDSTORE alone an expunge needs every UID (RFC 7162
			// §3.1): no delta to learn.
			expunge := run.mode.name != "dovecot-condstore"
			inbox := srv.Name("INBOX")
			seed(t, srv, 150, 0)
			counter := &countingIndex{}
			e := newEnv(t, srv)
			e.noWatch = !watch
			e.index = func(ix satsync.Index) satsync.Index { counter.Index = ix; return counter }
			e.mustSync()
			e.backdate()
			e.mustSync()
			if e.localStamp("INBOX") == "" {
				t.Fatalf("no stamp after a sync that changed nothing")
			}
			for round := range 3 {
				msgs := srv.Messages(inbox)
				i := slices.IndexFunc(msgs, func(m imaptest.Message) bool { return !slices.Contains(m.Flags, `\Flagged`) })
				srv.AddFlags(inbox, msgs[i].UID, `\Flagged`)
				if expunge {
					srv.Expunge(inbox, msgs[len(msgs)/2].UID)
				}
				srv.Append(inbox, msg(fmt.Sprintf("round %d", round)), nil, day)
				settle()
				counter.read()
				res := e.mustSync()
				read := counter.read()
				if down, flags, removed := totals(res); down != 1 || flags != 1 || expunge != (removed == 1) {
					t.Fatalf("round %d: downloaded %d, flags %d, removed %d; want 1 each (no removal without expunges)", round, down, flags, removed)
				}
				n := len(e.rows("INBOX"))
				switch {
				case round > 0 && watch && read > 20:
					t.Errorf("round %d: the sync after a delta that changed the folder read %d rows of %d", round, read, n)
				case round > 0 && !watch && read < n:
					t.Errorf("round %d: without a watcher, %d rows read of %d: the folder was not compared", round, read, n)
				}
				stamp := e.localStamp("INBOX")
				now, _, err := maildir.Folder{Dir: e.dir("INBOX")}.Stamp()
				if err != nil {
					t.Fatal(err)
				}
				if watch && stamp != now {
					t.Errorf("round %d: stamp recorded %q, the folder's %q", round, stamp, now)
				}
				if !watch && stamp != "" {
					t.Errorf("round %d: a stamp (%q) recorded without a watcher", round, stamp)
				}
			}
			e.assertMirror(false)
		})
	}
}

// sideWriter is a folder in which another program renames a file, once,
// while the sync writes to it (when the sync makes its entries durable).
type sideWriter struct {
	satsync.Folder
	once  *gosync.Once
	write func()
}

func (s sideWriter) SyncDirs() error {
	s.once.Do(s.write)
	return s.Folder.SyncDirs()
}

// TestDeltaStampSeesOtherWriters: a mail reader that flags a message while
// a delta sync downloads into its folder leaves the folder apart from the
// index: the watch names the message, its file disagrees with its row, no
// stamp is kept, and the next sync reads the folder and pushes the flag.
func TestDeltaStampSeesOtherWriters(t *testing.T) {
	srv := serverModes[0].start(t)
	inbox := srv.Name("INBOX")
	seed(t, srv, 60, 0)
	e := newEnv(t, srv)
	e.mustSync()
	e.backdate()
	e.mustSync()
	var key string
	var uid mail.UID
	var flags mail.Flags
	for u, r := range e.rows("INBOX") {
		if !r.Flags.Has(mail.FlagFlagged) {
			key, uid, flags = r.Key, u, r.Flags.System()
			break
		}
	}
	root := maildir.Root{Dir: e.root}
	once := new(gosync.Once)
	e.folder = func(rel string) satsync.Folder {
		return sideWriter{Folder: root.Folder(rel), once: once, write: func() {
			if _, err := e.dir("INBOX").SetFlags(key, flags.Union(mail.NewFlags(`\Flagged`))); err != nil {
				t.Error(err)
			}
		}}
	}
	srv.Append(inbox, msg("while the reader flags"), nil, day)
	settle()
	if down, _, _ := totals(e.mustSync()); down != 1 {
		t.Fatalf("downloaded %d, want 1", down)
	}
	if s := e.localStamp("INBOX"); s != "" {
		t.Errorf("stamp %q kept although another program changed the folder during the sync", s)
	}
	e.folder = nil
	srv.Append(inbox, msg("later"), nil, day)
	settle()
	e.mustSync()
	for _, m := range srv.Messages(inbox) {
		if mail.UID(m.UID) == uid && !slices.Contains(m.Flags, `\Flagged`) {
			t.Errorf("UID %d on the server: %v, want \\Flagged", uid, m.Flags)
		}
	}
	e.assertMirror(false)
}
