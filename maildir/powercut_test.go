package maildir_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/maildir/maildirtest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// layout is where each message's files are: key → "folder/sub/name"
// paths, sorted.
type layout map[string][]string

func (l layout) clone() layout {
	out := layout{}
	for k, v := range l {
		out[k] = slices.Clone(v)
	}
	return out
}

// step is one maildir call and what it does to the layout once it has
// returned nil.
type step struct {
	what   string
	key    string // the message it changes, "" for none
	do     func(r maildir.Root) error
	effect func(l layout)
	// found and settle are what a run after a killed one calls: whether
	// the step's work is visible, and what makes it durable if so (as an
	// engine recovering the step would). Nil for steps that are simply
	// called again.
	found  func(r maildir.Root) (bool, error)
	settle func(r maildir.Root) error
	// giveUp says a step whose work is not found is not called again.
	giveUp bool
	// again is what a run after a killed one calls instead of do; nil for
	// do.
	again func(r maildir.Root) error
	// dirs says the step creates directories.
	dirs bool
	// folders is what the step does to the set of folders once it has
	// returned nil; nil for none.
	folders func(f folderSet)
	// whole says the step moves several messages at once (a folder with
	// what is below it): after a cut they are all as before the call or
	// all as after it.
	whole bool
	// double says a cut may also leave the folder whole in both places.
	// CrashFS makes a rename durable in each directory at that
	// directory's fsync, so a folder moved to another directory is in
	// both from the new parent's fsync to the old one's. Either order of
	// the two fsyncs leaves a window: new parent first, as RenameFolder
	// does, a folder in both places; old parent first, in neither. (A
	// file system that journals a rename as one transaction shows
	// neither.)
	double bool
	// drop is what a run that gives the step up calls (see giveUp).
	drop func(r maildir.Root) error
}

// folderSet is the folders Root.Folders lists, by path.
type folderSet map[string]bool

func (f folderSet) clone() folderSet {
	out := folderSet{}
	for k := range f {
		out[k] = true
	}
	return out
}

func (f folderSet) String() string {
	var out []string
	for k := range f {
		out = append(out, k)
	}
	slices.Sort(out)
	return "[" + strings.Join(out, " ") + "]"
}

var powerDate = time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)

func body(key string) string { return "Subject: " + key + "\r\n\r\nbody of " + key + "\r\n" }

func subFor(flags mail.Flags) string {
	if flags.Has(mail.FlagSeen) {
		return "cur"
	}
	return "new"
}

func deliver(folder, key string, flags mail.Flags) step {
	return step{what: "deliver " + key + " to " + folder, key: key,
		do: func(r maildir.Root) error {
			_, err := r.Folder(folder).Deliver(context.Background(), key, strings.NewReader(body(key)), flags, powerDate)
			return err
		},
		effect: func(l layout) {
			l[key] = []string{folder + "/" + subFor(flags) + "/" + key + ":2," + maildir.InfoFromFlags(flags)}
		},
		found: func(r maildir.Root) (bool, error) {
			_, ok, err := r.Folder(folder).Find(key)
			return ok, err
		},
		settle: func(r maildir.Root) error { return r.Folder(folder).SetFlags(key, flags) },
		giveUp: true,
		// As the engine forgets a download it finds not done: the
		// half-written file in tmp/ is its own.
		drop: func(r maildir.Root) error { return r.Folder(folder).CleanTmp([]string{key}, time.Now()) }}
}

func setFlags(folder, key string, flags mail.Flags) step {
	return step{what: "set flags of " + key, key: key,
		do: func(r maildir.Root) error { return r.Folder(folder).SetFlags(key, flags) },
		effect: func(l layout) {
			sub := strings.Split(l[key][0], "/")[1]
			if flags.Has(mail.FlagSeen) {
				sub = "cur"
			}
			l[key] = []string{folder + "/" + sub + "/" + key + ":2," + maildir.InfoFromFlags(flags)}
		}}
}

func moveFile(from, to, key string) step {
	return step{what: "move " + key + " to " + to, key: key,
		do: func(r maildir.Root) error { return r.MoveFile(from, to, key) },
		effect: func(l layout) {
			l[key] = []string{to + strings.TrimPrefix(l[key][0], from)}
		},
		found: func(r maildir.Root) (bool, error) {
			_, ok, err := r.Folder(to).Find(key)
			return ok, err
		},
		settle: func(r maildir.Root) error {
			flags, _, err := r.Folder(to).Find(key)
			if err != nil {
				return err
			}
			if err := r.Folder(to).SetFlags(key, flags); err != nil {
				return err
			}
			return r.Folder(from).Remove(key)
		}}
}

func remove(folder, key string) step {
	return step{what: "remove " + key, key: key,
		do:     func(r maildir.Root) error { return r.Folder(folder).Remove(key) },
		effect: func(l layout) { delete(l, key) }}
}

func initFolder(folder string) step {
	return step{what: "init " + folder, do: func(r maildir.Root) error { return r.Folder(folder).Init() }, effect: func(layout) {}, dirs: true,
		folders: func(f folderSet) { f[folder] = true }}
}

// renameFolder moves a folder with the folders below it. A run after a
// killed one does what the engine does then: it makes the whole Maildir
// durable as it stands (Root.SyncTree) and calls RenameFolder again,
// which finds the folder moved or moves it.
func renameFolder(from, to string) step {
	moved := func(p string) string {
		if p == from {
			return to
		}
		if rest, ok := strings.CutPrefix(p, from+"/"); ok {
			return to + "/" + rest
		}
		return p
	}
	return step{what: "rename folder " + from + " to " + to,
		do: func(r maildir.Root) error { return r.RenameFolder(from, to) },
		effect: func(l layout) {
			for k, paths := range l {
				for i, p := range paths {
					paths[i] = moved(p)
				}
				slices.Sort(paths)
				l[k] = paths
			}
		},
		folders: func(f folderSet) {
			for k := range f {
				if m := moved(k); m != k {
					delete(f, k)
					f[m] = true
				}
			}
		},
		again:  func(r maildir.Root) error { return errors.Join(r.SyncTree(), r.RenameFolder(from, to)) },
		whole:  true,
		double: path.Dir(from) != path.Dir(to)}
}

// removeFolder removes an empty folder; a run after a killed one makes
// the Maildir durable and calls RemoveFolder again, as renameFolder.
func removeFolder(folder string) step {
	return step{what: "remove folder " + folder,
		do:      func(r maildir.Root) error { return r.RemoveFolder(folder) },
		effect:  func(layout) {},
		folders: func(f folderSet) { delete(f, folder) },
		again:   func(r maildir.Root) error { return errors.Join(r.SyncTree(), r.RemoveFolder(folder)) }}
}

func mkdirAll(rel string) step {
	return step{what: "mkdir " + rel, do: func(r maildir.Root) error { return r.MkdirAll(rel) }, effect: func(layout) {}, dirs: true}
}

// powerSteps is a day of a Maildir's life: deliveries, flag changes in
// new/ and cur/, a move between folders, a removal, nested folders and a
// plain hierarchy level; then folders renamed (with a folder below, in
// the same directory, to another directory, to a directory to be made)
// and removed (empty, with a folder below it that stays, the last below
// a plain level).
var powerSteps = []step{
	initFolder("INBOX"),
	deliver("INBOX", "k1", mail.NewFlags()),
	deliver("INBOX", "k2", mail.NewFlags(mail.FlagSeen)),
	deliver("INBOX", "k3", mail.NewFlags()),
	setFlags("INBOX", "k1", mail.NewFlags(mail.FlagSeen)),
	setFlags("INBOX", "k2", mail.NewFlags(mail.FlagSeen, mail.FlagFlagged)),
	setFlags("INBOX", "k3", mail.NewFlags(mail.FlagAnswered)),
	initFolder("Archive/2024"),
	moveFile("INBOX", "Archive/2024", "k3"),
	remove("INBOX", "k2"),
	deliver("Archive/2024", "k4", mail.NewFlags(mail.FlagSeen)),
	mkdirAll("Lists"),
	initFolder("Lists/go"),
	deliver("Lists/go", "k5", mail.NewFlags()),
	initFolder("Work"),
	deliver("Work", "k6", mail.NewFlags(mail.FlagSeen)),
	initFolder("Work/2025"),
	deliver("Work/2025", "k7", mail.NewFlags()),
	renameFolder("Work", "Projects"),
	renameFolder("Projects/2025", "Archive/2025"),
	renameFolder("Archive/2025", "Years/2025"),
	initFolder("Trash"),
	removeFolder("Trash"),
	remove("Projects", "k6"),
	removeFolder("Projects"),
	initFolder("Years/2025/q1"),
	deliver("Years/2025/q1", "k8", mail.NewFlags(mail.FlagSeen)),
	remove("Years/2025", "k7"),
	removeFolder("Years/2025"),
	remove("Lists/go", "k5"),
	removeFolder("Lists/go"),
}

// runSteps runs the steps from the first until one fails; it returns the
// layout the acknowledged steps promise, with the folders they made in f,
// and the index of the step that failed (len(powerSteps) if none).
func runSteps(t *testing.T, r maildir.Root, first int, l layout, f folderSet) (layout, int) {
	for i := first; i < len(powerSteps); i++ {
		s := &powerSteps[i]
		if err := s.do(r); err != nil {
			if !errors.Is(err, maildirtest.ErrPowerCut) {
				t.Fatalf("%s: %v", s.what, err)
			}
			return l, i
		}
		s.apply(l, f)
	}
	return l, len(powerSteps)
}

// apply applies the step's effects on the layout and the folders.
func (s *step) apply(l layout, f folderSet) {
	s.effect(l)
	if s.folders != nil {
		s.folders(f)
	}
}

// foldersOnDisk returns the folders Root.Folders lists below base, and
// checks each is whole: cur/, new/ and tmp/, all directories.
func foldersOnDisk(t *testing.T, base string) folderSet {
	t.Helper()
	list, err := maildir.Root{Dir: base}.Folders()
	if err != nil {
		t.Fatal(err)
	}
	got := folderSet{}
	for _, f := range list {
		got[f.Rel] = true
		for _, sub := range []string{"cur", "new", "tmp"} {
			if fi, err := os.Stat(filepath.Join(base, filepath.FromSlash(f.Rel), sub)); err != nil || !fi.IsDir() {
				t.Errorf("folder %s has no %s/ directory: %v", f.Rel, sub, err)
			}
		}
	}
	return got
}

// onDisk reads the message files below base into a layout and checks
// each holds its whole message, with its date as mtime and mode 0600.
func onDisk(t *testing.T, base string) layout {
	t.Helper()
	l := layout{}
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		rel = filepath.ToSlash(rel)
		sub := filepath.Base(filepath.Dir(p))
		if sub == "tmp" {
			return nil // never read by anyone; cleaned by age
		}
		key, _, ok := maildir.ParseName(d.Name())
		if !ok || sub != "new" && sub != "cur" {
			t.Errorf("unexpected file %s", rel)
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if want := strings.ReplaceAll(body(key), "\r\n", "\n"); string(b) != want {
			t.Errorf("%s holds %q, want %q", rel, b, want)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !fi.ModTime().Equal(powerDate) || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mtime %v mode %v, want %v 0600", rel, fi.ModTime(), fi.Mode().Perm(), powerDate)
		}
		l[key] = append(l[key], rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range l {
		slices.Sort(v)
	}
	return l
}

// TestPowerCut cuts the power at every operation of powerSteps in turn
// and checks what the disk holds afterwards: every message a call
// acknowledged is where that call put it, whole, exactly once; the one
// message the cut call was changing is as before the call, as after it,
// or, for a rename between directories, in both places, never lost; and
// no file is empty or cut short. The folders Root.Folders lists are
// those before the cut call or those after it, each with its cur/, new/
// and tmp/: a folder being removed is there or gone, never half there;
// a folder being moved is in one place with all its messages and the
// folders below it (moved to another directory, possibly in both, see
// step.double), never in neither.
func TestPowerCut(t *testing.T) {
	count := countOps(t)
	for after := 0; after <= count; after++ {
		t.Run("cut="+strconv.Itoa(after), func(t *testing.T) {
			t.Parallel()
			powerCutAt(t, after)
		})
	}
}

// powerCutAt runs powerSteps with the power cut after that many
// operations and checks the disk.
func powerCutAt(t *testing.T, after int) {
	base := t.TempDir()
	c, err := maildirtest.New(base, after)
	if err != nil {
		t.Fatal(err)
	}
	ackedFolders := folderSet{}
	acked, i := runSteps(t, maildir.NewRootFS(base, c), 0, layout{}, ackedFolders)
	var cut *step
	if i < len(powerSteps) {
		cut = &powerSteps[i]
	}
	if err := c.Materialize(); err != nil {
		t.Fatal(err)
	}
	got := onDisk(t, base)
	what := "no step"
	if cut != nil {
		what = cut.what
	}

	// The folders are those before the cut call or after it.
	gotFolders := foldersOnDisk(t, base)
	afterFolders := ackedFolders.clone()
	if cut != nil && cut.folders != nil {
		cut.folders(afterFolders)
	}
	wantFolders := []folderSet{ackedFolders, afterFolders}
	if cut != nil && cut.double {
		both := ackedFolders.clone()
		maps.Copy(both, afterFolders)
		wantFolders = append(wantFolders, both)
	}
	if !slices.ContainsFunc(wantFolders, func(f folderSet) bool { return maps.Equal(f, gotFolders) }) {
		t.Errorf("cut at %s (during %s): folders %s, want one of %s", c.Cut(), what, gotFolders, wantFolders)
	}

	if cut != nil && cut.whole {
		// Every message the call moves is where it was or where it
		// goes, all of them alike: a folder is in one place, whole (or
		// in both, see step.double).
		after := acked.clone()
		cut.effect(after)
		want := []layout{acked, after}
		if cut.double {
			both := layout{}
			for _, k := range sortedKeys(acked, after) {
				both[k] = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(acked[k]), after[k]...))))
			}
			want = append(want, both)
		}
		if !slices.ContainsFunc(want, func(l layout) bool { return equalLayouts(l, got) }) {
			for _, k := range sortedKeys(acked, after, got) {
				if !slices.Equal(got[k], acked[k]) || !slices.Equal(got[k], after[k]) {
					t.Errorf("cut at %s (during %s): %s is at %q, before the call %q, after it %q", c.Cut(), what, k, got[k], acked[k], after[k])
				}
			}
			t.Errorf("cut at %s (during %s): the messages are neither all where they were nor all where the call puts them", c.Cut(), what)
		}
		return
	}
	allowed := func(key string) [][]string {
		before := acked[key]
		if cut == nil || cut.key != key {
			return [][]string{before}
		}
		l := acked.clone()
		cut.effect(l)
		after := l[key]
		both := append(slices.Clone(before), after...)
		slices.Sort(both)
		if len(before) == 0 || len(after) == 0 {
			return [][]string{before, after}
		}
		return [][]string{before, after, both}
	}
	keys := map[string]bool{}
	for k := range acked {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for k := range keys {
		ok := slices.ContainsFunc(allowed(k), func(w []string) bool { return slices.Equal(w, got[k]) })
		if !ok {
			t.Errorf("cut at %s (during %s): %s is at %q, want one of %q", c.Cut(), what, k, got[k], allowed(k))
		}
	}
}

// countOps returns how many operations powerSteps take.
func countOps(t *testing.T) int {
	t.Helper()
	base := t.TempDir()
	c, err := maildirtest.New(base, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, i := runSteps(t, maildir.NewRootFS(base, c), 0, layout{}, folderSet{}); i < len(powerSteps) {
		t.Fatalf("%s failed without a cut", powerSteps[i].what)
	}
	return c.Ops()
}

// TestKillThenPowerCut kills the process at every operation of
// powerSteps in turn, which leaves the killed run's changes on the disk
// whether fsynced or not, and runs again: the step it was in (settled if
// its work is found done, as a recovering engine would, else called
// again; a delivery not found is given up, its file in tmp/ removed; a
// folder moved or removed after Root.SyncTree, as the engine does after
// an interrupted run) and the rest. Then the power is cut: everything
// the second run acknowledged, including work it found done, must be
// durable, messages and folders.
//
// Kills inside Init and MkdirAll are skipped: both leave an existing
// directory as it is, trusting that its creator fsynced it.
func TestKillThenPowerCut(t *testing.T) {
	count := countOps(t)
	for after := 0; after < count; after++ {
		t.Run("kill="+strconv.Itoa(after), func(t *testing.T) {
			t.Parallel()
			killThenCutAt(t, after)
		})
	}
}

// killThenCutAt runs powerSteps killed after that many operations, then
// again, then cuts the power, and checks the disk.
func killThenCutAt(t *testing.T, after int) {
	base := t.TempDir()
	c, err := maildirtest.New(base, after)
	if err != nil {
		t.Fatal(err)
	}
	r := maildir.NewRootFS(base, c)
	folders := folderSet{}
	l, i := runSteps(t, r, 0, layout{}, folders)
	s := powerSteps[i]
	if s.dirs {
		t.Skip("killed in a step that creates directories")
	}
	killed := c.Cut()
	c.Restart(-1)
	done, dropped := false, ""
	if s.found != nil {
		if done, err = s.found(r); err != nil {
			t.Fatalf("killed at %s: look for %s: %v", killed, s.key, err)
		}
	}
	switch {
	case done:
		if err := s.settle(r); err != nil {
			t.Fatalf("killed at %s: settle %s: %v", killed, s.what, err)
		}
		s.apply(l, folders)
	case s.giveUp:
		dropped = s.key
		if err := s.drop(r); err != nil {
			t.Fatalf("killed at %s: give up %s: %v", killed, s.what, err)
		}
	default:
		again := s.do
		if s.again != nil {
			again = s.again
		}
		if err := again(r); err != nil {
			t.Fatalf("killed at %s: %s again: %v", killed, s.what, err)
		}
		s.apply(l, folders)
	}
	for _, s := range powerSteps[i+1:] {
		if s.key != "" && s.key == dropped {
			continue
		}
		if err := s.do(r); err != nil {
			t.Fatalf("killed at %s, then %s: %v", killed, s.what, err)
		}
		s.apply(l, folders)
	}
	if err := c.Materialize(); err != nil {
		t.Fatal(err)
	}
	got := onDisk(t, base)
	for _, k := range sortedKeys(l, got) {
		if !slices.Equal(got[k], l[k]) {
			t.Errorf("killed at %s, cut after the next run: %s is at %q, want %q", killed, k, got[k], l[k])
		}
	}
	if gotFolders := foldersOnDisk(t, base); !maps.Equal(gotFolders, folders) {
		t.Errorf("killed at %s, cut after the next run: folders %s, want %s", killed, gotFolders, folders)
	}
}

func equalLayouts(a, b layout) bool {
	return maps.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

func sortedKeys(ls ...layout) []string {
	var keys []string
	for _, l := range ls {
		for k := range l {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}
