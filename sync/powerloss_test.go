package sync_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/maildir/maildirtest"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// The power-loss test runs a sync whose Maildir writes go through
// maildirtest.CrashFS and stops it at an operation a seed picks: either
// the power is cut there, or the process is killed there (keeping what it
// did not fsync in the page cache) and the power is cut during the next
// run. The Maildir is then rewritten to what fsyncs made durable, and a
// normal sync must end exactly where a sync without the cut ends, with
// nothing lost and nothing twice. The index needs no simulation: SQLite
// with synchronous=FULL keeps exactly the committed transactions.
//
// Environment:
//   - SATCHEL_POWERLOSS_RUNS: seeds per scenario (default 4, 1 with
//     -short); hundreds for a thorough run.
//   - SATCHEL_POWERLOSS_SEED: the first seed (default 1); run i uses seed
//     SEED+i. One seed of one scenario replays with
//     SATCHEL_POWERLOSS_SEED=s SATCHEL_POWERLOSS_RUNS=1 go test -run 'TestPowerLoss/NAME'
//     as long as the engine's sequence of operations is the same.
//   - SATCHEL_POWERLOSS_SWEEP=1: instead of seeds, every operation in
//     turn, once as the cut (subtests cut=N) and once as a kill followed
//     by a complete run and a cut after it (kill=N).

// powerScenario is a world to cut the power in: setup seeds the server
// and, for the later scenarios, runs a first sync and makes the changes
// the sync under test carries out. setup must do the same every time.
type powerScenario struct {
	name  string
	setup func(e *env)
}

var powerScenarios = []powerScenario{
	{"first-pull", func(e *env) { powerSeed(e) }},
	// INBOX's first sync streamed in windows of two (stream.go): the run
	// after a cut resumes the stream where it can.
	{"first-pull-streamed", func(e *env) {
		satsync.SetStreamMin(e.t, 5)
		satsync.SetStreamWindow(e.t, 2)
		powerSeed(e)
	}},
	{"pull-changes", func(e *env) {
		powerSeed(e)
		e.mustSync()
		srv := e.srv
		for i := range 3 {
			srv.Append("INBOX", msg(fmt.Sprintf("late news %d", i)), nil, day)
		}
		srv.Append("Lists/go", msg("go 1.27 released"), []string{`\Seen`}, day)
		// A new hierarchy whose top level is \Noselect.
		srv.CreateMailbox("Projects/satchel")
		powerDeleteMailbox(e.t, srv, "Projects")
		for i := range 2 {
			srv.Append("Projects/satchel", msg(fmt.Sprintf("satchel %d", i)), nil, day)
		}
		// Read on the phone (new/ to cur/), flagged, unread again.
		uidOf := func(box, subject string) uint32 {
			m, ok := serverMsg(srv, box, subject)
			if !ok {
				e.t.Fatalf("%s: no %q", box, subject)
			}
			return m.UID
		}
		srv.AddFlags("INBOX", uidOf("INBOX", "inbox 1"), `\Seen`)
		srv.AddFlags("INBOX", uidOf("INBOX", "inbox 2"), `\Flagged`)
		srv.SetFlags("Archive", uidOf("Archive", "archive 0"))
		srv.Expunge("INBOX", uidOf("INBOX", "inbox 3"), uidOf("INBOX", "inbox 4"))
		// Filed by the phone: the local file follows without a download.
		m, _ := serverMsg(srv, "INBOX", "inbox 5")
		srv.Append("Work", m.Body, m.Flags, m.Date)
		srv.Expunge("INBOX", m.UID)
	}},
	{"two-way", func(e *env) {
		powerSeed(e)
		e.mustSync()
		srv := e.srv
		// mutt: read two, flag one, answer one with a sent copy, save a
		// draft, delete one, file one into Archive.
		in := e.dir("INBOX")
		for _, s := range []string{"inbox 0", "inbox 1"} {
			if _, err := in.SetFlags(e.keyOf("INBOX", s), mail.NewFlags(mail.FlagSeen)); err != nil {
				e.t.Fatal(err)
			}
		}
		if _, err := in.SetFlags(e.keyOf("INBOX", "inbox 2"), mail.NewFlags(mail.FlagFlagged)); err != nil {
			e.t.Fatal(err)
		}
		if _, err := in.SetFlags(e.keyOf("INBOX", "inbox 3"), mail.NewFlags(mail.FlagSeen, mail.FlagAnswered)); err != nil {
			e.t.Fatal(err)
		}
		e.writeLocal("Sent", []byte("From: me@example.org\nSubject: Re: inbox 3\nMessage-ID: <reply.3@example.org>\n\nYes.\n"), mail.NewFlags(mail.FlagSeen))
		e.writeLocal("Drafts", []byte("From: me@example.org\nSubject: half a thought\n\nSo...\n"), mail.NewFlags(mail.FlagDraft, mail.FlagSeen))
		if err := in.Remove(e.keyOf("INBOX", "inbox 4")); err != nil {
			e.t.Fatal(err)
		}
		e.moveFile("INBOX", "Archive", e.keyOf("INBOX", "inbox 5"))
		// Meanwhile on the phone: "inbox 0" flagged (merged with the
		// local read), new mail, one message flagged, one expunged.
		m0, _ := serverMsg(srv, "INBOX", "inbox 0")
		srv.AddFlags("INBOX", m0.UID, `\Flagged`)
		srv.Append("INBOX", msg("arrived while offline"), nil, day)
		a1, _ := serverMsg(srv, "Archive", "archive 1")
		srv.AddFlags("Archive", a1.UID, `\Flagged`)
		g2, _ := serverMsg(srv, "Lists/go", "go 2")
		srv.Expunge("Lists/go", g2.UID)
	}},
}

// powerSeed fills the server: INBOX, Archive, Sent, Drafts, Work and
// Lists/go, whose parent Lists is a \Noselect level (a plain directory
// locally).
func powerSeed(e *env) {
	srv := e.srv
	for _, box := range []string{"Archive", "Sent", "Drafts", "Work", "Lists/go"} {
		srv.CreateMailbox(box)
	}
	powerDeleteMailbox(e.t, srv, "Lists")
	flags := [][]string{nil, {`\Seen`}, nil, {`\Flagged`, `\Seen`}, {"$label1"}, nil, {`\Answered`, `\Seen`}}
	for i := range 7 {
		srv.Append("INBOX", msg(fmt.Sprintf("inbox %d", i)), flags[i], day.Add(time.Duration(i)*time.Hour))
	}
	for i := range 3 {
		srv.Append("Archive", msg(fmt.Sprintf("archive %d", i)), []string{`\Seen`}, day)
		srv.Append("Lists/go", msg(fmt.Sprintf("go %d", i)), nil, day)
	}
}

// powerDeleteMailbox deletes a mailbox over a connection of its own; a
// mailbox with children stays as a \Noselect level.
func powerDeleteMailbox(t *testing.T, srv *imaptest.Server, name string) {
	t.Helper()
	conn, err := srv.Dial()
	if err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(conn, nil)
	defer c.Close()
	if err := c.Delete(name).Wait(); err != nil {
		t.Fatalf("delete %q: %v", name, err)
	}
}

// powerSettings reads the environment.
func powerSettings(t *testing.T) (first uint64, runs int) {
	first, runs = 1, 4
	if testing.Short() {
		runs = 1
	}
	if s := os.Getenv("SATCHEL_POWERLOSS_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SATCHEL_POWERLOSS_RUNS=%q: want a positive number", s)
		}
		runs = n
	}
	if s := os.Getenv("SATCHEL_POWERLOSS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SATCHEL_POWERLOSS_SEED=%q: want a number", s)
		}
		first = n
	}
	return first, runs
}

// TestPowerLoss cuts the power during a sync, at an operation chosen by
// the seed among the Maildir's writes and fsyncs, the index's commits and
// the commands that change the server, in each scenario. Half the seeds
// first kill the process (which leaves what it did not fsync in the page
// cache, where the next run finds it) and cut the power during the run
// after. The Maildir is then rewritten to its durable state, and a normal
// sync must leave the server exactly as a sync without the cut does, the
// Maildir its mirror with one file per message, every index row's file
// present, and nothing more to do.
func TestPowerLoss(t *testing.T) {
	first, runs := powerSettings(t)
	for _, sc := range powerScenarios {
		t.Run(sc.name, func(t *testing.T) {
			// The world without a cut: how many operations the sync
			// takes, and where it ends.
			ref := newEnv(t, imaptest.StartDovecot(t, imaptest.DovecotOptions{}))
			sc.setup(ref)
			c := ref.newCrashFS(-1)
			if res := ref.syncThrough(c); failedMailboxes(res) != "" {
				t.Fatalf("sync without a cut: %s", failedMailboxes(res))
			}
			ops := c.Ops()
			want := serverState(ref.srv)
			ref.assertMirror(false)

			if os.Getenv("SATCHEL_POWERLOSS_SWEEP") != "" {
				for n := range ops {
					t.Run("cut="+strconv.Itoa(n), func(t *testing.T) { powerCut(t, sc, -1, n, ops, want) })
					t.Run("kill="+strconv.Itoa(n), func(t *testing.T) { powerCut(t, sc, n, -1, ops, want) })
				}
				return
			}
			h := fnv.New64a()
			io.WriteString(h, sc.name)
			for i := range runs {
				seed := first + uint64(i)
				t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(seed, h.Sum64()))
					kill := -1
					if rng.IntN(2) == 1 {
						kill = rng.IntN(ops)
					}
					powerCut(t, sc, kill, rng.IntN(ops), ops, want)
				})
			}
		})
	}
}

// powerCut runs one scenario with the power cut after that many
// operations (after the run, if cut is negative), after a run killed
// after kill operations unless kill is negative; recovers; and checks
// the outcome against want.
func powerCut(t *testing.T, sc powerScenario, kill, cut, ops int, want map[string][]string) {
	e := newEnv(t, imaptest.StartDovecot(t, imaptest.DovecotOptions{}))
	sc.setup(e)
	var c *maildirtest.CrashFS
	if kill >= 0 {
		c = e.newCrashFS(kill)
		res := e.syncThrough(c)
		t.Logf("killed after %d of %d operations, at %s; the sync said: %s", kill, ops, c.Cut(), failedMailboxes(res))
		c.Restart(cut)
		// As satchel sync does after a killed run (cmd/satchel's
		// markRunning): make what the killed run left durable first.
		if err := maildir.NewRootFS(e.root, c).SyncTree(); err != nil && c.Cut() == "" {
			t.Fatalf("sync tree after the kill: %v", err)
		}
	} else {
		c = e.newCrashFS(cut)
	}
	res := e.syncThrough(c)
	if c.Cut() == "" {
		t.Logf("power cut after the sync, which took %d operations in all (%d without a cut); it said: %s", c.Ops(), ops, failedMailboxes(res))
	} else {
		t.Logf("power cut after %d operations of the run (%d in a run without a cut), at %s; the sync said: %s", cut, ops, c.Cut(), failedMailboxes(res))
	}
	t.Logf("last operations:\n  %s", strings.Join(c.Trace(12), "\n  "))
	if err := c.Materialize(); err != nil {
		t.Fatal(err)
	}

	// The next run, on the real disk, with the index as committed.
	if res := e.sync(); failedMailboxes(res) != "" {
		t.Fatalf("sync after the power cut: %s", failedMailboxes(res))
	}
	got := serverState(e.srv)
	for _, box := range sortedKeys(want, got) {
		if !slices.Equal(got[box], want[box]) {
			t.Errorf("%s on the server after recovery:\n  got  %q\n  want %q (as without the cut)", box, got[box], want[box])
		}
	}
	e.assertOneFilePerMessage()
	e.assertRowsHaveFiles()
	e.assertMirror(false)
	e.assertSettled()
}

// newCrashFS returns a CrashFS over the Maildir root (created if missing,
// and then durable) cutting after that many operations.
func (e *env) newCrashFS(after int) *maildirtest.CrashFS {
	e.t.Helper()
	if err := os.MkdirAll(e.root, 0o700); err != nil {
		e.t.Fatal(err)
	}
	c, err := maildirtest.New(e.root, after)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// syncThrough runs one sync as the process that loses power: its Maildir
// is c, and its index (a connection of its own) and its server
// connections stop working at the cut, their commits and commands counted
// among c's operations.
func (e *env) syncThrough(c *maildirtest.CrashFS) satsync.Result {
	e.t.Helper()
	ix, err := store.Open(context.Background(), e.ix.Path())
	if err != nil {
		e.t.Fatal(err)
	}
	// Closed at the cut too, so that no commit gets through after it.
	closeIndex := gosync.OnceValue(ix.Close)
	defer closeIndex()
	c.OnCut(func() { closeIndex() })
	e.trace.Reset()
	root := maildir.NewRootFS(e.root, c)
	ropts := imapremote.Options{
		Host: e.srv.Host, Port: e.srv.Port, TLS: imapremote.TLSNone,
		User: e.srv.User, Auth: imapremote.AuthPlain,
		Password: func(context.Context) (string, error) { return e.srv.Password, nil },
		Trace:    &e.trace,
	}
	return satsync.Account(context.Background(), e.opts, satsync.Deps{
		Connect: func(ctx context.Context) (satsync.Remote, error) {
			if err := c.Check("connect"); err != nil {
				return nil, err
			}
			r, err := imapremote.Dial(ctx, ropts)
			if err != nil {
				return nil, err
			}
			return cutRemote{Remote: r, c: c}, nil
		},
		Index:     cutIndex{Index: ix, c: c},
		Folder:    func(rel string) satsync.Folder { return root.Folder(rel) },
		LocalPath: root.Path,
		MkdirAll:  root.MkdirAll,
		MoveFile:  root.MoveFile,
	})
}

// failedMailboxes describes what failed in a sync, "" if nothing.
func failedMailboxes(res satsync.Result) string {
	var l []string
	if res.Err != nil {
		l = append(l, res.Err.Error())
	}
	for _, m := range res.Mailboxes {
		if m.Err != nil {
			l = append(l, m.Name+": "+m.Err.Error())
		}
	}
	return strings.Join(l, "; ")
}

// serverState is, per mailbox, each message's Subject and flags, sorted:
// what a sync must leave whether or not the power was cut on the way.
func serverState(srv *imaptest.Server) map[string][]string {
	out := map[string][]string{}
	for _, box := range srv.Mailboxes() {
		var l []string
		for _, m := range srv.Messages(box) {
			subject := "?"
			for _, line := range strings.Split(string(m.Body), "\r\n") {
				if s, ok := strings.CutPrefix(line, "Subject: "); ok {
					subject = s
					break
				}
			}
			l = append(l, subject+" "+mail.NewFlags(m.Flags...).String())
		}
		slices.Sort(l)
		out[box] = l
	}
	return out
}

func sortedKeys(maps ...map[string][]string) []string {
	var keys []string
	for _, m := range maps {
		for k := range m {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// assertOneFilePerMessage checks that no message has two files: not the
// same key in new/ and cur/ (which mail readers show twice) nor twice
// the same message under two keys.
func (e *env) assertOneFilePerMessage() {
	e.t.Helper()
	for _, box := range e.srv.Mailboxes() {
		d := e.dir(box)
		keys := map[string][]string{}
		bodies := map[string][]string{}
		for _, sub := range []string{"new", "cur"} {
			des, err := os.ReadDir(filepath.Join(d.Path, sub))
			if err != nil {
				e.t.Fatal(err)
			}
			for _, de := range des {
				key, _, ok := maildir.ParseName(de.Name())
				if !ok {
					continue
				}
				p := filepath.Join(sub, de.Name())
				keys[key] = append(keys[key], p)
				b, err := os.ReadFile(filepath.Join(d.Path, p))
				if err != nil {
					e.t.Fatal(err)
				}
				bodies[string(b)] = append(bodies[string(b)], p)
			}
		}
		for k, ps := range keys {
			if len(ps) > 1 {
				e.t.Errorf("%s: key %s has %d files: %q", box, k, len(ps), ps)
			}
		}
		for _, ps := range bodies {
			if len(ps) > 1 {
				e.t.Errorf("%s: one message in %d files: %q", box, len(ps), ps)
			}
		}
	}
}

// assertRowsHaveFiles checks that every index row of a message kept
// locally names a file that exists, and no two rows name the same file.
func (e *env) assertRowsHaveFiles() {
	e.t.Helper()
	ctx := context.Background()
	mbs, err := e.ix.Mailboxes(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mb := range mbs {
		rows, err := e.ix.Messages(ctx, mb.ID, mb.UIDValidity)
		if err != nil {
			e.t.Fatal(err)
		}
		f := maildir.Root{Dir: e.root}.Folder(mb.LocalPath)
		seen := map[string]mail.UID{}
		for uid, r := range rows {
			if other, ok := seen[r.Key]; ok {
				e.t.Errorf("%s: UIDs %d and %d both name key %s", mb.Name, other, uid, r.Key)
			}
			seen[r.Key] = uid
			if !r.State.OnLocal() {
				continue
			}
			if _, ok, err := f.Find(r.Key); err != nil || !ok {
				e.t.Errorf("%s: UID %d: no file for key %s (%v)", mb.Name, uid, r.Key, err)
			}
		}
	}
}

// cutIndex is the index as the process that loses power sees it: each
// change is one of c's operations, refused from the cut on (when the
// index is closed as well, so that no other call reaches it).
type cutIndex struct {
	satsync.Index
	c *maildirtest.CrashFS
}

func (x cutIndex) EnsureMailbox(ctx context.Context, name, localPath string) (mail.Mailbox, error) {
	if err := x.c.Op("index: ensure mailbox " + name); err != nil {
		return mail.Mailbox{}, err
	}
	return x.Index.EnsureMailbox(ctx, name, localPath)
}

func (x cutIndex) SaveMailbox(ctx context.Context, m mail.Mailbox) error {
	if err := x.c.Op("index: save mailbox " + m.Name); err != nil {
		return err
	}
	return x.Index.SaveMailbox(ctx, m)
}

func (x cutIndex) PutMessages(ctx context.Context, mailboxID int64, msgs []mail.Message) error {
	if err := x.c.Op(fmt.Sprintf("index: put %d rows", len(msgs))); err != nil {
		return err
	}
	return x.Index.PutMessages(ctx, mailboxID, msgs)
}

func (x cutIndex) DeleteMessages(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, uids []mail.UID) error {
	if err := x.c.Op(fmt.Sprintf("index: delete %d rows", len(uids))); err != nil {
		return err
	}
	return x.Index.DeleteMessages(ctx, mailboxID, uidvalidity, uids)
}

func (x cutIndex) AddIntents(ctx context.Context, ins []mail.Intent) ([]int64, error) {
	if err := x.c.Op(fmt.Sprintf("index: add %d intents", len(ins))); err != nil {
		return nil, err
	}
	return x.Index.AddIntents(ctx, ins)
}

func (x cutIndex) CompleteIntent(ctx context.Context, id int64, changes []mail.RowChange) error {
	if err := x.c.Op(fmt.Sprintf("index: complete intent %d", id)); err != nil {
		return err
	}
	return x.Index.CompleteIntent(ctx, id, changes)
}

func (x cutIndex) DropIntent(ctx context.Context, id int64) error {
	if err := x.c.Op(fmt.Sprintf("index: drop intent %d", id)); err != nil {
		return err
	}
	return x.Index.DropIntent(ctx, id)
}

func (x cutIndex) Apply(ctx context.Context, changes []mail.RowChange) error {
	if err := x.c.Op(fmt.Sprintf("index: apply %d row changes", len(changes))); err != nil {
		return err
	}
	return x.Index.Apply(ctx, changes)
}

// cutRemote is a server connection of the process that loses power: each
// command that changes the server is one of c's operations, refused from
// the cut on. Commands that only read pass through: they change nothing
// either way.
type cutRemote struct {
	satsync.Remote
	c *maildirtest.CrashFS
}

func (r cutRemote) Store(ctx context.Context, changes []mail.FlagChange) (map[mail.UID]mail.RemoteMessage, error) {
	if err := r.c.Op(fmt.Sprintf("imap: store flags of %d messages", len(changes))); err != nil {
		return nil, err
	}
	return r.Remote.Store(ctx, changes)
}

func (r cutRemote) StartStore(ctx context.Context, changes []mail.FlagChange) func() (map[mail.UID]mail.RemoteMessage, error) {
	if err := r.c.Op(fmt.Sprintf("imap: store flags of %d messages", len(changes))); err != nil {
		return func() (map[mail.UID]mail.RemoteMessage, error) { return nil, err }
	}
	return r.Remote.StartStore(ctx, changes)
}

// AppendBatch passes each message through the crash model as it is
// sent: a cut stops the batch there, as the process would stop.
func (r cutRemote) AppendBatch(ctx context.Context, mailbox string, msgs []mail.Outgoing) ([]mail.Appended, error) {
	out := make([]mail.Appended, len(msgs))
	for i, m := range msgs {
		if err := r.c.Op("imap: append to " + mailbox); err != nil {
			return out, err
		}
		res, err := r.Remote.AppendBatch(ctx, mailbox, []mail.Outgoing{m})
		out[i] = res[0]
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (r cutRemote) Move(ctx context.Context, uids []mail.UID, dest string) (map[mail.UID]mail.UID, error) {
	if err := r.c.Op("imap: move to " + dest); err != nil {
		return nil, err
	}
	return r.Remote.Move(ctx, uids, dest)
}

func (r cutRemote) Copy(ctx context.Context, uids []mail.UID, dest string) (map[mail.UID]mail.UID, error) {
	if err := r.c.Op("imap: copy to " + dest); err != nil {
		return nil, err
	}
	return r.Remote.Copy(ctx, uids, dest)
}

func (r cutRemote) Expunge(ctx context.Context, uids []mail.UID) error {
	if err := r.c.Op(fmt.Sprintf("imap: expunge %d messages", len(uids))); err != nil {
		return err
	}
	return r.Remote.Expunge(ctx, uids)
}

func (r cutRemote) StartExpunge(ctx context.Context, uids []mail.UID) func() error {
	if err := r.c.Op(fmt.Sprintf("imap: expunge %d messages", len(uids))); err != nil {
		return func() error { return err }
	}
	return r.Remote.StartExpunge(ctx, uids)
}
