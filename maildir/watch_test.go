package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// newWatched makes a root with folders a and b, each with a message, and
// a watcher on a.
func newWatched(t *testing.T) (Root, *Watcher, FolderWatchOf) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("folders are watched on Linux only")
	}
	r := Root{Dir: t.TempDir()}
	for _, rel := range []string{"a", "b"} {
		f := r.Folder(rel)
		if err := f.Init(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Deliver(context.Background(), "old-"+rel, strings.NewReader("Subject: x\n\nbody\n"), mail.NewFlags(), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := r.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	fw, err := w.Watch("a")
	if err != nil {
		t.Fatal(err)
	}
	return r, w, fw
}

// changedKeys returns the keys Changed names, sorted, each with the flags
// of its file (as "key=FS") or "key=-" for none.
func changedKeys(t *testing.T, fw FolderWatchOf) ([]string, bool) {
	t.Helper()
	changed, ok := fw.Changed()
	var keys []string
	for k, f := range changed {
		if f == nil {
			keys = append(keys, k+"=-")
		} else {
			keys = append(keys, k+"="+InfoFromFlags(*f))
		}
	}
	slices.Sort(keys)
	return keys, ok
}

// TestWatchNamesChangedMessages: a delivery, a rename for flags and a
// removal in the watched folder are reported by key, whoever made them;
// changes in another folder are not.
func TestWatchNamesChangedMessages(t *testing.T) {
	r, _, fw := newWatched(t)
	if keys, ok := changedKeys(t, fw); !ok || len(keys) != 0 {
		t.Fatalf("before any change: %v, %v; want nothing, true", keys, ok)
	}
	a, b := r.Folder("a"), r.Folder("b")
	ctx := context.Background()
	if _, err := a.Deliver(ctx, "new-a", strings.NewReader("Subject: y\n\nbody\n"), mail.NewFlags(`\Seen`), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetFlags("old-a", mail.NewFlags(`\Flagged`)); err != nil {
		t.Fatal(err)
	}
	if err := b.SetFlags("old-b", mail.NewFlags(`\Flagged`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Deliver(ctx, "new-b", strings.NewReader("Subject: z\n\nbody\n"), mail.NewFlags(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	keys, ok := changedKeys(t, fw)
	if !ok || !slices.Equal(keys, []string{"new-a=S", "old-a=F"}) {
		t.Fatalf("after changes: %v, %v; want [new-a=S old-a=F], true", keys, ok)
	}
	// Another process's removal, straight on the file system.
	e, found, err := a.Dir.Find("new-a")
	if err != nil || !found {
		t.Fatalf("find new-a: %v, %v", found, err)
	}
	if err := os.Remove(e.Path(a.Dir)); err != nil {
		t.Fatal(err)
	}
	if keys, ok := changedKeys(t, fw); !ok || !slices.Equal(keys, []string{"new-a=-", "old-a=F"}) {
		t.Fatalf("after a removal: %v, %v; want [new-a=- old-a=F], true", keys, ok)
	}
	// Files in tmp/ are no message yet.
	if err := os.WriteFile(filepath.Join(a.Dir.Path, "tmp", "partial"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if keys, ok := changedKeys(t, fw); !ok || !slices.Equal(keys, []string{"new-a=-", "old-a=F"}) {
		t.Fatalf("after a write to tmp/: %v, %v; want the same, true", keys, ok)
	}
	// Two files for one key cannot be told apart.
	if err := os.WriteFile(filepath.Join(a.Dir.Path, "new", "old-a"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if keys, ok := changedKeys(t, fw); ok {
		t.Fatalf("a second file for old-a: %v, true; want false", keys)
	}
	fw.Close()
	if _, ok := fw.Changed(); ok {
		t.Fatalf("a closed watch still tells")
	}
}

// TestWatchCannotTell: what leaves the message list unknown makes Changed
// say so.
func TestWatchCannotTell(t *testing.T) {
	for name, change := range map[string]func(a Folder) error{
		"dot file in cur": func(a Folder) error {
			return os.WriteFile(filepath.Join(a.Dir.Path, "cur", ".hidden"), nil, 0o600)
		},
		"directory in new": func(a Folder) error {
			return os.Mkdir(filepath.Join(a.Dir.Path, "new", "sub"), 0o700)
		},
		"cur moved away": func(a Folder) error {
			return os.Rename(filepath.Join(a.Dir.Path, "cur"), filepath.Join(a.Dir.Path, "cur.old"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			r, _, fw := newWatched(t)
			if err := change(r.Folder("a")); err != nil {
				t.Fatal(err)
			}
			if keys, ok := fw.Changed(); ok {
				t.Fatalf("Changed = %v, true; want false", keys)
			}
		})
	}
}

// TestWatchOneFolderOnce: a folder watched twice by the same watcher is
// refused (one watch descriptor per directory); another watcher may.
func TestWatchOneFolderOnce(t *testing.T) {
	r, w, _ := newWatched(t)
	if _, err := w.Watch("a"); err == nil {
		t.Fatalf("watching a twice: no error")
	}
	if _, err := w.Watch("missing"); err == nil {
		t.Fatalf("watching a missing folder: no error")
	}
	w2, err := r.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if _, err := w2.Watch("a"); err != nil {
		t.Fatalf("a second watcher: %v", err)
	}
	if _, err := NewRootFS(r.Dir, osFS{}).NewWatcher(); !errors.Is(err, ErrWatchUnsupported) {
		t.Fatalf("a root on another FS: %v, want ErrWatchUnsupported", err)
	}
}

// FolderWatchOf is what Watcher.Watch returns.
type FolderWatchOf = interface {
	Changed() (map[string]*mail.Flags, bool)
	Close()
}
