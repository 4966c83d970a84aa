package sync_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// The folder lifecycle: mailboxes renamed or deleted on one side as a
// whole, in the two-way suite's style (server does X, user does Y, sync,
// expect Z on both sides), in every server mode.

// seedWork fills Work with n messages and syncs them down.
func seedWork(t *testing.T, e *env, n int) {
	t.Helper()
	e.srv.CreateMailbox(e.srv.Name("Work"))
	for i := range n {
		e.srv.Append(e.srv.Name("Work"), msg(fmt.Sprintf("work %d", i)), []string{`\Seen`}, day)
	}
	e.srv.Append("INBOX", msg("hello"), nil, day)
	e.mustSync()
}

// folderEvent returns a mailbox's folder event in a result.
func folderEvent(t *testing.T, res satsync.Result, name string) *satsync.FolderEvent {
	t.Helper()
	for _, m := range res.Mailboxes {
		if m.Name == name && m.Folder != nil {
			return m.Folder
		}
	}
	t.Fatalf("no folder event for %q in %+v", name, res.Mailboxes)
	return nil
}

// subjects lists the subjects of a mailbox's messages on the server.
func serverSubjects(e *env, name string) []string {
	var out []string
	for _, m := range e.srv.Messages(name) {
		out = append(out, subjectOf(m.Body))
	}
	slices.Sort(out)
	return out
}

// localSubjects lists the subjects of a folder's files.
func localSubjects(t *testing.T, dir maildir.Dir) []string {
	t.Helper()
	ents, err := dir.Scan()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, ent := range ents {
		b, err := os.ReadFile(ent.Path(dir))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, subjectOf(b))
	}
	slices.Sort(out)
	return out
}

func subjectOf(b []byte) string {
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		if s, ok := strings.CutPrefix(line, "Subject: "); ok {
			return s
		}
	}
	return ""
}

func works(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("work %d", i))
	}
	slices.Sort(out)
	return out
}

// assertHolds checks that the mailbox at path ("Work", spelled the
// server's way there) and its folder hold messages with these subjects,
// sorted.
func assertHolds(t *testing.T, e *env, path string, want []string) {
	t.Helper()
	if got := serverSubjects(e, e.srv.Name(path)); !slices.Equal(got, want) {
		t.Fatalf("server %s holds %q, want %q", e.srv.Name(path), got, want)
	}
	if got := localSubjects(t, e.dir(path)); !slices.Equal(got, want) {
		t.Fatalf("local %s holds %q, want %q", path, got, want)
	}
}

// removeFolder deletes a mailbox's folder as a user would (rm -r).
func (e *env) removeFolder(name string) {
	e.t.Helper()
	if err := os.RemoveAll(e.dir(name).Path); err != nil {
		e.t.Fatal(err)
	}
}

// assertQuiet checks that a sync moved no message either way.
func assertQuiet(t *testing.T, res satsync.Result, what string) {
	t.Helper()
	for _, m := range res.Mailboxes {
		if m.Downloaded+m.Uploaded+m.Removed+m.Deleted != 0 {
			t.Fatalf("%s: %s: %d downloaded, %d uploaded, %d removed, %d deleted", what, m.Name, m.Downloaded, m.Uploaded, m.Removed, m.Deleted)
		}
	}
}

// TestFolderDeletedOnServer: a mailbox deleted on the server (by another
// client) comes back there with its mail when sync.remove_folders is
// false; with true its folder goes too, unless it holds mail the server
// never had (the conflicting delete): then it is re-created with that
// mail only.
func TestFolderDeletedOnServer(t *testing.T) {
	for _, mode := range withOthers(serverModes) {
		t.Run(mode.name, func(t *testing.T) {
			t.Run("keep", func(t *testing.T) {
				e := newEnv(t, mode.start(t))
				seedWork(t, e, 3)
				e.srv.DeleteMailbox(e.srv.Name("Work"))
				res := e.mustSync()
				if ev := folderEvent(t, res, e.srv.Name("Work")); ev.Change != satsync.DeletedOnServer || ev.Action != satsync.FolderRecreated {
					t.Fatalf("event %+v", ev)
				}
				assertHolds(t, e, "Work", works(3))
				assertQuiet(t, e.mustSync(), "next sync")
				e.assertMirror(false)
			})
			t.Run("cut short", func(t *testing.T) {
				// A run killed after resetting the row, before CREATE:
				// the next run still re-creates the mailbox with its mail.
				e := newEnv(t, mode.start(t))
				seedWork(t, e, 3)
				e.srv.DeleteMailbox(e.srv.Name("Work"))
				mb, _, err := e.ix.Mailbox(context.Background(), e.srv.Name("Work"))
				if err != nil {
					t.Fatal(err)
				}
				if err := e.ix.ResetMailbox(context.Background(), mb.ID); err != nil {
					t.Fatal(err)
				}
				e.mustSync()
				assertHolds(t, e, "Work", works(3))
				assertQuiet(t, e.mustSync(), "next sync")
			})
			t.Run("remove", func(t *testing.T) {
				e := newEnv(t, mode.start(t))
				e.opts.RemoveFolders = true
				seedWork(t, e, 3)
				e.srv.DeleteMailbox(e.srv.Name("Work"))
				res := e.mustSync()
				if ev := folderEvent(t, res, e.srv.Name("Work")); ev.Action != satsync.FolderDeleted {
					t.Fatalf("event %+v", ev)
				}
				if _, err := os.Stat(e.dir("Work").Path); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("folder Work still there: %v", err)
				}
				if slices.Contains(e.srv.Mailboxes(), e.srv.Name("Work")) {
					t.Fatal("Work re-created on the server")
				}
				if _, ok, _ := e.ix.Mailbox(context.Background(), e.srv.Name("Work")); ok {
					t.Fatal("the index still knows Work")
				}
				if got := localSubjects(t, e.dir("INBOX")); !slices.Equal(got, []string{"hello"}) {
					t.Fatalf("INBOX touched: %q", got)
				}
				assertQuiet(t, e.mustSync(), "next sync")
			})
			t.Run("conflict", func(t *testing.T) {
				e := newEnv(t, mode.start(t))
				e.opts.RemoveFolders = true
				seedWork(t, e, 3)
				// Offline, the user files a new message into Work while
				// another client deletes Work on the server.
				e.writeLocal("Work", msg("filed offline"), mail.NewFlags(mail.FlagSeen))
				e.srv.DeleteMailbox(e.srv.Name("Work"))
				res := e.mustSync()
				if ev := folderEvent(t, res, e.srv.Name("Work")); ev.Change != satsync.DeletedOnServer || ev.Action != satsync.FolderRecreated {
					t.Fatalf("event %+v", ev)
				}
				want := []string{"filed offline"}
				assertHolds(t, e, "Work", want)
				assertQuiet(t, e.mustSync(), "next sync")
				e.assertMirror(false)
			})
		})
	}
}

// TestFolderDeletedLocally: a folder deleted in the Maildir comes back
// with its mail when sync.remove_folders is false; with true the mailbox
// is deleted on the server, unless new mail arrived there meanwhile (the
// conflicting delete): then the old messages go and the folder comes back
// with the new one. Deleting the mailbox's messages counts against
// sync.max_delete.
func TestFolderDeletedLocally(t *testing.T) {
	for _, mode := range withOthers(serverModes) {
		t.Run(mode.name, func(t *testing.T) {
			t.Run("keep", func(t *testing.T) {
				e := newEnv(t, mode.start(t))
				seedWork(t, e, 3)
				e.removeFolder("Work")
				res := e.mustSync()
				if ev := folderEvent(t, res, e.srv.Name("Work")); ev.Change != satsync.DeletedLocally || ev.Action != satsync.FolderRecreated {
					t.Fatalf("event %+v", ev)
				}
				assertHolds(t, e, "Work", works(3))
				assertQuiet(t, e.mustSync(), "next sync")
				e.assertMirror(false)
			})
			t.Run("remove", func(t *testing.T) {
				e := newEnv(t, mode.start(t))
				e.opts.RemoveFolders = true
				seedWork(t, e, 3)
				e.removeFolder("Work")
				res := e.mustSync()
				if ev := folderEvent(t, res, e.srv.Name("Work")); ev.Action != satsync.FolderDeleted {
					t.Fatalf("event %+v", ev)
				}
				if slices.Contains(e.srv.Mailboxes(), e.srv.Name("Work")) {
					t.Fatal("Work still on the server")
				}
				if _, err := os.Stat(e.dir("Work").Path); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("folder Work re-created: %v", err)
				}
				if got := serverSubjects(e, "INBOX"); !slices.Equal(got, []string{"hello"}) {
					t.Fatalf("INBOX touched: %q", got)
				}
				assertQuiet(t, e.mustSync(), "next sync")
			})
			t.Run("conflict", func(t *testing.T) {
				e := newEnv(t, mode.start(t))
				e.opts.RemoveFolders = true
				seedWork(t, e, 3)
				e.removeFolder("Work")
				e.srv.Append(e.srv.Name("Work"), msg("arrived meanwhile"), nil, day)
				res := e.mustSync()
				if ev := folderEvent(t, res, e.srv.Name("Work")); ev.Change != satsync.DeletedLocally || ev.Action != satsync.FolderRecreated {
					t.Fatalf("event %+v", ev)
				}
				want := []string{"arrived meanwhile"}
				assertHolds(t, e, "Work", want)
				assertQuiet(t, e.mustSync(), "next sync")
				e.assertMirror(false)
			})
			t.Run("max_delete", func(t *testing.T) {
				e := newEnv(t, mode.start(t))
				e.opts.RemoveFolders = true
				e.opts.MaxDelete = &satsync.DeleteLimit{Percent: 25, Min: 10}
				seedWork(t, e, 12)
				e.removeFolder("Work")
				res := e.mustSync()
				ev := folderEvent(t, res, e.srv.Name("Work"))
				if ev.Action != satsync.FolderHeld {
					t.Fatalf("event %+v", ev)
				}
				if got := serverSubjects(e, e.srv.Name("Work")); !slices.Equal(got, works(12)) {
					t.Fatalf("held back, yet the server's Work holds %q", got)
				}
				if _, err := os.Stat(e.dir("Work").Path); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("held back, yet folder Work was re-created: %v", err)
				}
				e.opts.Force = true
				res = e.mustSync()
				if ev := folderEvent(t, res, e.srv.Name("Work")); ev.Action != satsync.FolderDeleted {
					t.Fatalf("with --force: event %+v", ev)
				}
				if slices.Contains(e.srv.Mailboxes(), e.srv.Name("Work")) {
					t.Fatal("with --force: Work still on the server")
				}
			})
		})
	}
}

// TestEveryFolderGone: a Maildir emptied by mistake (the identity file
// kept) deletes nothing on the server, even with sync.remove_folders.
func TestEveryFolderGone(t *testing.T) {
	for _, mode := range withOthers(serverModes[:1]) {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, mode.start(t))
			e.opts.RemoveFolders = true
			seedWork(t, e, 2)
			e.removeFolder("INBOX")
			e.removeFolder("Work")
			res := e.sync()
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			ev := folderEvent(t, res, e.srv.Name("Work"))
			if ev.Action != satsync.FolderHeld {
				t.Fatalf("event %+v", ev)
			}
			if got := serverSubjects(e, e.srv.Name("Work")); !slices.Equal(got, works(2)) {
				t.Fatalf("server Work holds %q", got)
			}
			if got := serverSubjects(e, "INBOX"); !slices.Equal(got, []string{"hello"}) {
				t.Fatalf("server INBOX holds %q", got)
			}
		})
	}
}

// TestFolderDeletedOnBoth: a mailbox gone from both sides is forgotten,
// not re-created anywhere.
func TestFolderDeletedOnBoth(t *testing.T) {
	for _, mode := range withOthers(serverModes[:1]) {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, mode.start(t))
			seedWork(t, e, 2)
			work := e.srv.Name("Work")
			e.srv.DeleteMailbox(work)
			e.removeFolder("Work")
			res := e.mustSync()
			if ev := folderEvent(t, res, work); ev.Change != satsync.DeletedOnBoth || ev.Action != satsync.FolderForgotten {
				t.Fatalf("event %+v", ev)
			}
			if slices.Contains(e.srv.Mailboxes(), work) {
				t.Fatalf("%s re-created on the server", work)
			}
			if _, err := os.Stat(e.dir("Work").Path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("folder Work re-created: %v", err)
			}
			if _, ok, _ := e.ix.Mailbox(context.Background(), work); ok {
				t.Fatalf("the index still knows %s", work)
			}
		})
	}
}

// keysOf returns a folder's Maildir keys, sorted.
func keysOf(t *testing.T, dir maildir.Dir) []string {
	t.Helper()
	ents, err := dir.Scan()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range ents {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestFolderRenamedOnServer: a mailbox renamed on the server, with the
// one below it, is renamed locally: the same files under the new name,
// nothing downloaded or uploaded, and the flags changed meanwhile on the
// server still arrive.
func TestFolderRenamedOnServer(t *testing.T) {
	for _, mode := range serverModes {
		for _, layout := range []maildir.Layout{maildir.Verbatim, maildir.MaildirPlusPlus} {
			t.Run(mode.name+"/"+layout.Name(), func(t *testing.T) {
				e := newEnv(t, mode.start(t))
				e.layout = layout
				seedWork(t, e, 6)
				e.srv.CreateMailbox("Work/2025")
				e.srv.Append("Work/2025", msg("this year"), nil, day)
				e.mustSync()
				root := maildir.Root{Dir: e.root, Layout: layout}
				folder := func(name string) maildir.Dir {
					rel, err := root.Path(strings.Split(name, "/"))
					if err != nil {
						t.Fatal(err)
					}
					return root.Folder(rel).Dir
				}
				work, sub := keysOf(t, folder("Work")), keysOf(t, folder("Work/2025"))
				e.srv.RenameMailbox("Work", "Projects")
				first := e.srv.Messages("Projects")[0]
				e.srv.AddFlags("Projects", first.UID, `\Flagged`)
				res := e.mustSync()
				if ev := folderEvent(t, res, "Projects"); ev.Change != satsync.RenamedOnServer || ev.From != "Work" {
					t.Fatalf("event %+v", ev)
				}
				if down, _, _ := totals(res); down != 0 {
					t.Fatalf("%d messages downloaded again", down)
				}
				for _, m := range res.Mailboxes {
					if m.Uploaded != 0 {
						t.Fatalf("%s: %d uploaded", m.Name, m.Uploaded)
					}
				}
				if got := keysOf(t, folder("Projects")); !slices.Equal(got, work) {
					t.Fatalf("Projects holds %q, Work held %q", got, work)
				}
				// RFC 9051 §6.3.6 has RENAME take the mailboxes below
				// along; a server that does not (go-imap's memory server)
				// keeps Work/2025, or has it renamed by the sync when the
				// folder moved with its parent (verbatim layout).
				child := "Projects/2025"
				if !slices.Contains(e.srv.Mailboxes(), child) {
					child = "Work/2025"
				}
				if got := keysOf(t, folder(child)); !slices.Equal(got, sub) {
					t.Fatalf("%s holds %q, Work/2025 held %q", child, got, sub)
				}
				gone := []string{"Work"}
				if child != "Work/2025" {
					gone = append(gone, "Work/2025")
				}
				for _, name := range gone {
					if _, err := os.Stat(filepath.Join(folder(name).Path, "cur")); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("folder %s still there: %v", name, err)
					}
				}
				if slices.Contains(e.srv.Mailboxes(), "Work") {
					t.Fatal("Work re-created on the server")
				}
				assertQuiet(t, e.mustSync(), "next sync")
				e.layout = layout
				if layout == maildir.Verbatim {
					e.assertMirror(false)
				}
			})
		}
	}
}

// TestFolderRenamedLocally: a folder renamed in the Maildir (with the one
// below it) renames the mailbox on the server: same UIDs, nothing
// uploaded or downloaded.
func TestFolderRenamedLocally(t *testing.T) {
	for _, mode := range serverModes {
		for _, layout := range []maildir.Layout{maildir.Verbatim, maildir.MaildirPlusPlus} {
			t.Run(mode.name+"/"+layout.Name(), func(t *testing.T) {
				e := newEnv(t, mode.start(t))
				e.layout = layout
				seedWork(t, e, 3)
				e.srv.CreateMailbox("Work/Ünïcödé")
				e.srv.Append("Work/Ünïcödé", msg("unicode"), nil, day)
				e.mustSync()
				root := maildir.Root{Dir: e.root, Layout: layout}
				path := func(name string) string {
					rel, err := root.Path(strings.Split(name, "/"))
					if err != nil {
						t.Fatal(err)
					}
					return filepath.Join(e.root, filepath.FromSlash(rel))
				}
				uids := func(name string) []uint32 {
					var out []uint32
					for _, m := range e.srv.Messages(name) {
						out = append(out, m.UID)
					}
					return out
				}
				workUIDs, subUIDs := uids("Work"), uids("Work/Ünïcödé")
				// The user renames Work to Projects in the mail reader.
				if err := os.Rename(path("Work"), path("Projects")); err != nil {
					t.Fatal(err)
				}
				if layout == maildir.MaildirPlusPlus {
					// Folders are flat: the one below moves on its own.
					if err := os.Rename(path("Work/Ünïcödé"), path("Projects/Ünïcödé")); err != nil {
						t.Fatal(err)
					}
				}
				res := e.mustSync()
				if ev := folderEvent(t, res, "Projects"); ev.Change != satsync.RenamedLocally || ev.From != "Work" {
					t.Fatalf("event %+v", ev)
				}
				assertQuiet(t, res, "rename")
				boxes := e.srv.Mailboxes()
				if slices.Contains(boxes, "Work") || slices.Contains(boxes, "Work/Ünïcödé") {
					t.Fatalf("server still lists the old names: %q", boxes)
				}
				if got := uids("Projects"); !slices.Equal(got, workUIDs) {
					t.Fatalf("Projects UIDs %v, Work had %v", got, workUIDs)
				}
				if got := uids("Projects/Ünïcödé"); !slices.Equal(got, subUIDs) {
					t.Fatalf("Projects/Ünïcödé UIDs %v, Work/Ünïcödé had %v", got, subUIDs)
				}
				assertQuiet(t, e.mustSync(), "next sync")
			})
		}
	}
}

// TestFolderLifecycleDryRun: a dry run reports renames and deletions and
// changes nothing on either side.
func TestFolderLifecycleDryRun(t *testing.T) {
	e := newEnv(t, serverModes[0].start(t))
	seedWork(t, e, 5)
	e.srv.CreateMailbox("Old")
	e.srv.Append("Old", msg("old"), nil, day)
	e.mustSync()
	e.srv.RenameMailbox("Work", "Projects")
	e.removeFolder("Old")
	before, boxes := e.snapshot(), e.srv.Mailboxes()
	e.opts.DryRun = true
	res := e.mustSync()
	if ev := folderEvent(t, res, "Projects"); ev.Change != satsync.RenamedOnServer {
		t.Fatalf("event %+v", ev)
	}
	if ev := folderEvent(t, res, "Old"); ev.Change != satsync.DeletedLocally {
		t.Fatalf("event %+v", ev)
	}
	if e.snapshot() != before || !slices.Equal(e.srv.Mailboxes(), boxes) {
		t.Fatal("the dry run changed something")
	}
	if _, ok, _ := e.ix.Mailbox(context.Background(), "Work"); !ok {
		t.Fatal("the dry run renamed the index row")
	}
}

// hidingRemote lists every mailbox but one, as a server whose listing
// failed part way would.
type hidingRemote struct {
	satsync.Remote
	hide string
}

func (h hidingRemote) ListStatus(ctx context.Context) ([]mail.RemoteMailbox, error) {
	list, err := h.Remote.ListStatus(ctx)
	return slices.DeleteFunc(list, func(m mail.RemoteMailbox) bool { return m.Name == h.hide }), err
}

// TestMissedInListingIsNotDeletedFolder: a mailbox missing from one
// listing, though it exists, is not taken for deleted on the server, even
// with sync.remove_folders: its folder and its mail stay.
func TestMissedInListingIsNotDeletedFolder(t *testing.T) {
	e := newEnv(t, serverModes[0].start(t))
	e.opts.RemoveFolders = true
	seedWork(t, e, 2)
	e.wrap = func(r satsync.Remote) satsync.Remote { return hidingRemote{r, "Work"} }
	res := e.mustSync()
	for _, m := range res.Mailboxes {
		if m.Folder != nil {
			t.Fatalf("%s: folder event %+v", m.Name, m.Folder)
		}
	}
	if got := localSubjects(t, e.dir("Work")); !slices.Equal(got, works(2)) {
		t.Fatalf("local Work holds %q", got)
	}
	if got := serverSubjects(e, "Work"); !slices.Equal(got, works(2)) {
		t.Fatalf("server Work holds %q", got)
	}
}

// TestFolderDeletedDryRun: with sync.remove_folders, a dry run shows the
// deletions a folder's removal brings and changes nothing.
func TestFolderDeletedDryRun(t *testing.T) {
	e := newEnv(t, serverModes[0].start(t))
	e.opts.RemoveFolders = true
	seedWork(t, e, 2)
	e.srv.CreateMailbox("Old")
	e.srv.Append("Old", msg("old"), nil, day)
	e.mustSync()
	e.srv.DeleteMailbox("Work")
	e.removeFolder("Old")
	before, boxes := e.snapshot(), e.srv.Mailboxes()
	e.opts.DryRun = true
	res := e.mustSync()
	for _, c := range []struct {
		name   string
		change satsync.FolderChange
		remove int
		delete int
	}{{"Work", satsync.DeletedOnServer, 2, 0}, {"Old", satsync.DeletedLocally, 0, 1}} {
		ev := folderEvent(t, res, c.name)
		if ev.Change != c.change || ev.Action != satsync.FolderPlanned || ev.Detail == "" {
			t.Fatalf("%s: event %+v", c.name, ev)
		}
		for _, m := range res.Mailboxes {
			if m.Name == c.name && (m.Plan == nil || len(m.Plan.RemoveLocal) != c.remove || len(m.Plan.DeleteRemote) != c.delete) {
				t.Fatalf("%s: plan %+v, want %d removals and %d deletions", c.name, m.Plan, c.remove, c.delete)
			}
		}
	}
	if e.snapshot() != before || !slices.Equal(e.srv.Mailboxes(), boxes) {
		t.Fatal("the dry run changed something")
	}
}

// TestFolderDeletedOnServerAfterKilledDownload: a run killed while
// downloading into a mailbox leaves an intent and a half-written file in
// tmp/; the mailbox is then deleted on the server. With
// sync.remove_folders the folder still goes: the pending download is
// settled and its file removed, rather than keeping the folder (and the
// mailbox's sync) stuck.
func TestFolderDeletedOnServerAfterKilledDownload(t *testing.T) {
	e := newEnv(t, serverModes[0].start(t))
	e.opts.RemoveFolders = true
	seedWork(t, e, 2)
	ctx := context.Background()
	mb, _, err := e.ix.Mailbox(ctx, "Work")
	if err != nil {
		t.Fatal(err)
	}
	key := maildir.NewKey()
	if _, err := e.ix.AddIntents(ctx, []mail.Intent{{MailboxID: mb.ID, Kind: mail.IntentDownload, Key: key,
		Row: mail.Message{UIDValidity: mb.UIDValidity, UID: 99, Key: key, Flags: mail.NewFlags(), Size: 10, InternalDate: day}}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir("Work").Path, "tmp", key), []byte("Subject: half"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.srv.DeleteMailbox("Work")
	res := e.mustSync()
	if ev := folderEvent(t, res, "Work"); ev.Action != satsync.FolderDeleted {
		t.Fatalf("event %+v", ev)
	}
	if _, err := os.Stat(e.dir("Work").Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("folder Work still there: %v", err)
	}
	if _, ok, _ := e.ix.Mailbox(ctx, "Work"); ok {
		t.Fatal("the index still knows Work")
	}
}

// TestFolderRemovalCutShort: a run killed inside a folder's removal,
// after cur/ went, leaves a directory that is no folder; the next run
// removes it and forgets the mailbox.
func TestFolderRemovalCutShort(t *testing.T) {
	e := newEnv(t, serverModes[0].start(t))
	e.opts.RemoveFolders = true
	seedWork(t, e, 2)
	e.srv.DeleteMailbox("Work")
	for _, k := range keysOf(t, e.dir("Work")) {
		if err := e.dir("Work").Remove(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(e.dir("Work").Path, "cur")); err != nil {
		t.Fatal(err)
	}
	res := e.mustSync()
	if ev := folderEvent(t, res, "Work"); ev.Change != satsync.DeletedOnBoth {
		t.Fatalf("event %+v", ev)
	}
	if _, err := os.Stat(e.dir("Work").Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("what was left of Work is still there: %v", err)
	}
}
