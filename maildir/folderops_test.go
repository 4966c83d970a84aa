package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestRenameFolder(t *testing.T) {
	root := Root{Dir: t.TempDir()}
	work := root.Folder("Work")
	if err := work.Init(); err != nil {
		t.Fatal(err)
	}
	if err := root.Folder("Work/Sub").Init(); err != nil {
		t.Fatal(err)
	}
	key := work.NewKey()
	if _, err := work.Deliver(context.Background(), key, strings.NewReader("Subject: x\r\n\r\nbody\r\n"), mail.Flags{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := root.RenameFolder("Work", "Archive/2025/Work"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := root.Folder("Archive/2025/Work").Find(key); err != nil || !ok {
		t.Fatalf("message not in the moved folder: %v %v", ok, err)
	}
	if !isFolderDir(root.disk(), filepath.Join(root.Dir, "Archive/2025/Work/Sub")) {
		t.Fatal("the folder below did not move along")
	}
	// Repeated (after a crash, or for the folder below, moved along): done.
	if err := root.RenameFolder("Work", "Archive/2025/Work"); err != nil {
		t.Fatalf("repeated rename: %v", err)
	}
	if err := root.RenameFolder("Work/Sub", "Archive/2025/Work/Sub"); err != nil {
		t.Fatalf("rename of a folder moved along: %v", err)
	}
	// Never over another folder.
	if err := root.Folder("Other").Init(); err != nil {
		t.Fatal(err)
	}
	if err := root.RenameFolder("Other", "Archive/2025/Work"); !errors.Is(err, os.ErrExist) {
		t.Fatalf("rename onto a folder: %v, want ErrExist", err)
	}
	if err := root.RenameFolder("Missing", "Elsewhere"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("rename of a missing folder: %v, want ErrNotExist", err)
	}
}

func TestRemoveFolder(t *testing.T) {
	root := Root{Dir: t.TempDir()}
	f := root.Folder("Work")
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	key := f.NewKey()
	if _, err := f.Deliver(context.Background(), key, strings.NewReader("Subject: x\r\n\r\nbody\r\n"), mail.Flags{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := root.RemoveFolder("Work"); !errors.Is(err, ErrFolderNotEmpty) {
		t.Fatalf("removing a folder with a message: %v", err)
	}
	if _, ok, _ := f.Find(key); !ok {
		t.Fatal("a refused removal removed the message")
	}
	if err := f.Remove(key); err != nil {
		t.Fatal(err)
	}
	// A delivery under way in tmp/ keeps it too.
	tmp := filepath.Join(root.Dir, "Work", "tmp", "1.2.host")
	if err := os.WriteFile(tmp, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := root.RemoveFolder("Work"); !errors.Is(err, ErrFolderNotEmpty) {
		t.Fatalf("removing a folder with a file in tmp/: %v", err)
	}
	os.Remove(tmp)
	// A folder below keeps the directory, as a plain one.
	if err := root.Folder("Work/Sub").Init(); err != nil {
		t.Fatal(err)
	}
	if err := root.RemoveFolder("Work"); err != nil {
		t.Fatal(err)
	}
	if isFolderDir(root.disk(), filepath.Join(root.Dir, "Work")) {
		t.Fatal("Work is still a folder")
	}
	if !isFolderDir(root.disk(), filepath.Join(root.Dir, "Work", "Sub")) {
		t.Fatal("the folder below was removed")
	}
	if err := root.RemoveFolder("Work/Sub"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root.Dir, "Work", "Sub")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty folder not removed: %v", err)
	}
	if err := root.RemoveFolder("Missing"); err != nil {
		t.Fatalf("removing a missing folder: %v", err)
	}
}

// countingFS counts the directories opened for listing.
type countingFS struct {
	FS
	lists int
}

func (c *countingFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		c.lists++
	}
	return c.FS.OpenFile(name, flag, perm)
}

// TestLazyByName: a lazy rename or removal given the flags the listing
// saw finds the file by name, without listing the folder; given stale
// flags it still finds it, by listing.
func TestLazyByName(t *testing.T) {
	dir := t.TempDir()
	cfs := &countingFS{FS: osFS{}}
	root := NewRootFS(dir, cfs)
	f := root.Folder("Work")
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	deliver := func(flags mail.Flags) string {
		key := f.NewKey()
		if _, err := f.Deliver(context.Background(), key, strings.NewReader("Subject: x\r\n\r\nbody\r\n"), flags, time.Now()); err != nil {
			t.Fatal(err)
		}
		return key
	}
	seen, unseen := deliver(mail.NewFlags(mail.FlagSeen)), deliver(mail.NewFlags())
	cfs.lists = 0
	if err := f.SetFlagsLazy(seen, mail.NewFlags(mail.FlagSeen), mail.NewFlags(mail.FlagSeen, mail.FlagFlagged)); err != nil {
		t.Fatal(err)
	}
	if err := f.SetFlagsLazy(unseen, mail.NewFlags(), mail.NewFlags(mail.FlagSeen)); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveLazy(seen, mail.NewFlags(mail.FlagSeen, mail.FlagFlagged)); err != nil {
		t.Fatal(err)
	}
	if cfs.lists != 0 {
		t.Fatalf("%d directory listings for files named as seen, want 0", cfs.lists)
	}
	// Stale: the file has \Seen now, the caller says none.
	if err := f.SetFlagsLazy(unseen, mail.NewFlags(), mail.NewFlags(mail.FlagSeen, mail.FlagAnswered)); err != nil {
		t.Fatal(err)
	}
	if cfs.lists == 0 {
		t.Fatal("a stale name was found without listing: the test checks nothing")
	}
	if err := f.SyncDirs(); err != nil {
		t.Fatal(err)
	}
	got, ok, err := f.Find(unseen)
	if err != nil || !ok || !got.Equal(mail.NewFlags(mail.FlagSeen, mail.FlagAnswered)) {
		t.Fatalf("after the renames: %q %v %v", got, ok, err)
	}
	if _, ok, _ := f.Find(seen); ok {
		t.Fatal("the removed file is still there")
	}
}
