package sync_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

// migrate runs MigrateFolderNames on the env's account; the protocol
// trace of that run is in e.trace.
func (e *env) migrate(dryRun bool) satsync.MigrateResult {
	e.t.Helper()
	e.trace.Reset()
	opts := e.opts
	opts.DryRun = dryRun
	res, err := satsync.MigrateFolderNames(context.Background(), opts, e.deps())
	if err != nil {
		e.t.Fatalf("migrate: %v", err)
	}
	return res
}

// oldIndex syncs the server's mailboxes into an index made as satchel
// made them before it left the namespace prefix out of folder names.
func (e *env) oldIndex() {
	e.t.Helper()
	if err := e.ix.SetMeta(context.Background(), "folder_names", "full"); err != nil {
		e.t.Fatal(err)
	}
	e.mustSync()
}

// folderOf is where the env's layout puts a mailbox's levels ("/"-joined).
func (e *env) folderOf(levels string) string {
	e.t.Helper()
	rel, err := maildir.Root{Dir: e.root, Layout: e.layout}.Path(strings.Split(levels, "/"))
	if err != nil {
		e.t.Fatal(err)
	}
	return rel
}

// keysIn lists the Maildir keys in a folder (nil when it is missing).
func (e *env) keysIn(rel string) []string {
	e.t.Helper()
	ents, err := maildir.Dir{Path: filepath.Join(e.root, filepath.FromSlash(rel))}.Scan()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	var keys []string
	for k := range ents {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// localPathOf is the folder the index records for a mailbox.
func (e *env) localPathOf(name string) string {
	e.t.Helper()
	mb, ok, err := e.ix.Mailbox(context.Background(), name)
	if err != nil || !ok {
		e.t.Fatalf("%s: not in the index (%v)", name, err)
	}
	return mb.LocalPath
}

func (e *env) folderNames() string {
	e.t.Helper()
	v, _, err := e.ix.Meta(context.Background(), "folder_names")
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// hostingWithArchive starts a hosting-style Dovecot ("INBOX." ".") with
// mail in INBOX, INBOX.Archive and INBOX.Archive.2024.
func hostingWithArchive(t *testing.T) *imaptest.Server {
	srv := otherServers[0].start(t)
	srv.CreateMailbox("INBOX.Archive")
	srv.CreateMailbox("INBOX.Archive.2024")
	srv.Append("INBOX", msg("hello"), nil, day)
	srv.Append("INBOX.Archive", msg("archived"), []string{`\Seen`}, day)
	srv.Append("INBOX.Archive.2024", msg("last year"), []string{`\Seen`, `\Flagged`}, day)
	return srv
}

// TestMigrateFolderNames: an index made with the whole server names keeps
// INBOX.Archive in folder INBOX/Archive. A dry run lists the moves and
// changes nothing; the migration moves the folders (the one below
// Archive with it) without a download or an upload, the index follows
// and leaves the prefix out from then on, and the next sync is quiet.
// A second run has nothing to do. In both layouts.
func TestMigrateFolderNames(t *testing.T) {
	for _, layout := range []maildir.Layout{maildir.Verbatim, maildir.MaildirPlusPlus} {
		t.Run(layout.Name(), func(t *testing.T) {
			srv := hostingWithArchive(t)
			e := newEnv(t, srv)
			e.layout = layout
			e.oldIndex()
			mailboxes := map[string]struct{ old, new string }{
				"INBOX.Archive":      {e.folderOf("INBOX/Archive"), e.folderOf("Archive")},
				"INBOX.Archive.2024": {e.folderOf("INBOX/Archive/2024"), e.folderOf("Archive/2024")},
			}
			keys := map[string][]string{}
			for name, f := range mailboxes {
				keys[name] = e.keysIn(f.old)
				if len(keys[name]) != 1 || e.localPathOf(name) != f.old {
					t.Fatalf("%s: the old index has %d files in %q and records folder %q", name, len(keys[name]), f.old, e.localPathOf(name))
				}
			}
			inboxKeys := e.keysIn(e.folderOf("INBOX"))

			before := e.snapshot()
			res := e.migrate(true)
			if len(res.Moves) != 2 || res.Prefix != "INBOX." || res.Nothing != "" || res.Migrated {
				t.Fatalf("dry run: %+v", res)
			}
			for _, mv := range res.Moves {
				f := mailboxes[mv.Mailbox]
				if mv.From != f.old || mv.To != f.new || mv.Done || mv.Err != nil {
					t.Errorf("dry run: move %+v, want %s → %s", mv, f.old, f.new)
				}
			}
			if res.Moves[0].Mailbox != "INBOX.Archive" {
				t.Errorf("dry run: %s moves before its parent", res.Moves[0].Mailbox)
			}
			if e.snapshot() != before || e.folderNames() != "full" || e.localPathOf("INBOX.Archive") != mailboxes["INBOX.Archive"].old {
				t.Fatal("the dry run changed the Maildir or the index")
			}

			res = e.migrate(false)
			if !res.Migrated || res.Failed() != 0 || len(res.Moves) != 2 {
				t.Fatalf("migrate: %+v", res)
			}
			for _, c := range e.clientCommands() {
				if strings.HasPrefix(c, "APPEND") || strings.Contains(c, "FETCH") && strings.Contains(c, "BODY") ||
					strings.HasPrefix(c, "CREATE") || strings.HasPrefix(c, "RENAME") || strings.HasPrefix(c, "DELETE") {
					t.Errorf("the migration sent %q", c)
				}
			}
			for name, f := range mailboxes {
				if got := e.keysIn(f.new); !slices.Equal(got, keys[name]) {
					t.Errorf("%s: folder %q holds %q, want %q", name, f.new, got, keys[name])
				}
				if got := e.localPathOf(name); got != f.new {
					t.Errorf("%s: the index records folder %q, want %q", name, got, f.new)
				}
			}
			if _, err := os.Stat(filepath.Join(e.root, filepath.FromSlash(mailboxes["INBOX.Archive"].old))); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the old folder is still there: %v", err)
			}
			if got := e.keysIn(e.folderOf("INBOX")); !slices.Equal(got, inboxKeys) || e.localPathOf("INBOX") != e.folderOf("INBOX") {
				t.Errorf("INBOX moved or changed: %q in %q", got, e.localPathOf("INBOX"))
			}
			if got := e.folderNames(); got != "personal" {
				t.Errorf("folder_names = %q, want personal", got)
			}

			servers := srv.Mailboxes()
			e.backdate()
			assertQuiet(t, e.mustSync(), "sync after the migration")
			if got := srv.Mailboxes(); !slices.Equal(got, servers) {
				t.Errorf("the sync after the migration changed the server's mailboxes: %q, was %q", got, servers)
			}
			for name, f := range mailboxes {
				if got := e.keysIn(f.new); !slices.Equal(got, keys[name]) {
					t.Errorf("after a sync, %s: folder %q holds %q, want %q", name, f.new, got, keys[name])
				}
			}

			if res := e.migrate(false); res.Nothing == "" || len(res.Moves) != 0 {
				t.Errorf("second migration: %+v", res)
			}
		})
	}
}

// TestMigrateFolderNamesCollision: a folder Archive made locally is where
// INBOX.Archive would go. That folder fails, naming both, and so does
// the one inside it; INBOX.Notes moves; the index keeps naming folders as
// before. Once the user moves the local folder aside, the migration runs
// again and finishes.
func TestMigrateFolderNamesCollision(t *testing.T) {
	srv := hostingWithArchive(t)
	srv.CreateMailbox("INBOX.Notes")
	srv.Append("INBOX.Notes", msg("note"), []string{`\Seen`}, day)
	e := newEnv(t, srv)
	e.oldIndex()
	e.deliverTo("Archive", "mine")

	res := e.migrate(false)
	if res.Migrated || res.Failed() != 2 {
		t.Fatalf("migrate: %+v", res)
	}
	byName := map[string]satsync.FolderMove{}
	for _, mv := range res.Moves {
		byName[mv.Mailbox] = mv
	}
	if err := byName["INBOX.Archive"].Err; !errors.Is(err, satsync.ErrFolderTaken) ||
		!strings.Contains(err.Error(), "INBOX/Archive") || !strings.Contains(err.Error(), "to Archive") {
		t.Errorf("INBOX.Archive: %v, want ErrFolderTaken naming INBOX/Archive and Archive", err)
	}
	if err := byName["INBOX.Archive.2024"].Err; err == nil || !strings.Contains(err.Error(), "inside folder INBOX/Archive") {
		t.Errorf("INBOX.Archive.2024: %v, want held inside INBOX/Archive", err)
	}
	if mv := byName["INBOX.Notes"]; !mv.Done || mv.Err != nil || e.localPathOf("INBOX.Notes") != "Notes" {
		t.Errorf("INBOX.Notes: %+v, recorded in %q", mv, e.localPathOf("INBOX.Notes"))
	}
	if e.localPathOf("INBOX.Archive") != "INBOX/Archive" || len(e.keysIn("INBOX/Archive")) != 1 || !slices.Equal(localSubjects(t, e.dir("Archive")), []string{"mine"}) {
		t.Error("the folders of the collision changed")
	}
	if got := e.folderNames(); got != "full" {
		t.Errorf("folder_names = %q after a failed folder, want full", got)
	}
	// Until the migration finishes, a sync names folders as before: the
	// mailbox already moved fails rather than being read as empty, and
	// nothing is deleted or uploaded.
	servers := srv.Mailboxes()
	res1 := e.sync()
	for _, m := range res1.Mailboxes {
		if m.Name == "INBOX.Notes" && (!errors.Is(m.Err, satsync.ErrFolderMoved) || !strings.Contains(m.Err.Error(), "migrate-folders again")) {
			t.Errorf("sync between the runs: INBOX.Notes: %v, want ErrFolderMoved pointing at migrate-folders", m.Err)
		}
		if m.Uploaded+m.Removed+m.Deleted != 0 {
			t.Errorf("sync between the runs: %s: %+v", m.Name, m)
		}
	}
	if got := srv.Mailboxes(); !slices.Equal(got, servers) {
		t.Errorf("sync between the runs changed the server's mailboxes: %q, was %q", got, servers)
	}

	if err := os.Rename(filepath.Join(e.root, "Archive"), filepath.Join(e.root, "Mine")); err != nil {
		t.Fatal(err)
	}
	res = e.migrate(false)
	if !res.Migrated || res.Failed() != 0 || len(res.Moves) != 2 {
		t.Fatalf("migrate again: %+v", res)
	}
	if e.localPathOf("INBOX.Archive") != "Archive" || e.localPathOf("INBOX.Archive.2024") != "Archive/2024" || e.folderNames() != "personal" {
		t.Fatalf("after the second run: %q, %q, %s", e.localPathOf("INBOX.Archive"), e.localPathOf("INBOX.Archive.2024"), e.folderNames())
	}
	// The folder set aside is the user's own, made a mailbox as any.
	res2 := e.mustSync()
	for _, m := range res2.Mailboxes {
		if m.Name != "INBOX.Mine" && m.Downloaded+m.Uploaded+m.Removed+m.Deleted != 0 {
			t.Errorf("sync after the migration: %s: %+v", m.Name, m)
		}
	}
	if got := serverSubjects(e, "INBOX.Mine"); !slices.Equal(got, []string{"mine"}) {
		t.Errorf("INBOX.Mine holds %q", got)
	}
}

// TestMigrateFolderNamesAfterCrash: a run killed after moving a folder and
// before recording it leaves the folder at its new place and the index
// naming the old one; the next run finishes, and the sync after it is
// quiet.
func TestMigrateFolderNamesAfterCrash(t *testing.T) {
	srv := hostingWithArchive(t)
	e := newEnv(t, srv)
	e.oldIndex()
	keys := e.keysIn("INBOX/Archive/2024")
	if err := (maildir.Root{Dir: e.root}).RenameFolder("INBOX/Archive", "Archive"); err != nil {
		t.Fatal(err)
	}
	res := e.migrate(false)
	if !res.Migrated || res.Failed() != 0 {
		t.Fatalf("migrate: %+v", res)
	}
	if e.localPathOf("INBOX.Archive") != "Archive" || e.localPathOf("INBOX.Archive.2024") != "Archive/2024" {
		t.Fatalf("the index records %q and %q", e.localPathOf("INBOX.Archive"), e.localPathOf("INBOX.Archive.2024"))
	}
	if got := e.keysIn("Archive/2024"); !slices.Equal(got, keys) {
		t.Errorf("Archive/2024 holds %q, want %q", got, keys)
	}
	e.backdate()
	assertQuiet(t, e.mustSync(), "sync after the migration")
}

// TestMigrateFolderNamesNothingToDo: an index that leaves the prefix out
// already, and a server without a prefix, have nothing to migrate, and
// say so; neither changes the index.
func TestMigrateFolderNamesNothingToDo(t *testing.T) {
	srv := hostingWithArchive(t)
	e := newEnv(t, srv)
	e.mustSync()
	if res := e.migrate(false); res.Nothing == "" || len(res.Moves) != 0 || res.Migrated || e.folderNames() != "personal" {
		t.Errorf("a new index: %+v", res)
	}

	plain := serverModes[0].start(t)
	plain.CreateMailbox("Archive")
	e = newEnv(t, plain)
	e.oldIndex()
	if res := e.migrate(false); res.Nothing == "" || res.Prefix != "" || len(res.Moves) != 0 || e.folderNames() != "full" {
		t.Errorf("a server without a prefix: %+v", res)
	}
}

// TestMigrateFolderNamesNoselectLevel: a mailbox whose parent level holds
// no mail (\Noselect or not listed) moves on its own; the plain directory
// it leaves behind inside INBOX's folder goes.
func TestMigrateFolderNamesNoselectLevel(t *testing.T) {
	srv := otherServers[0].start(t)
	srv.CreateMailbox("INBOX.Projects.Alpha")
	srv.Append("INBOX.Projects.Alpha", msg("alpha"), []string{`\Seen`}, day)
	e := newEnv(t, srv)
	e.oldIndex()
	keys := e.keysIn("INBOX/Projects/Alpha")
	if len(keys) != 1 {
		t.Fatalf("the old index has %d files in INBOX/Projects/Alpha (server lists %q)", len(keys), srv.Mailboxes())
	}
	res := e.migrate(false)
	if !res.Migrated || res.Failed() != 0 {
		t.Fatalf("migrate: %+v", res)
	}
	if got := e.keysIn("Projects/Alpha"); !slices.Equal(got, keys) || e.localPathOf("INBOX.Projects.Alpha") != "Projects/Alpha" {
		t.Errorf("Projects/Alpha holds %q, the index records %q", got, e.localPathOf("INBOX.Projects.Alpha"))
	}
	if _, err := os.Stat(filepath.Join(e.root, "INBOX", "Projects")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("INBOX/Projects is left behind: %v", err)
	}
	e.backdate()
	assertQuiet(t, e.mustSync(), "sync after the migration")
}
