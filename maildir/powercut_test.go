package maildir_test

import (
	"context"
	"errors"
	"os"
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
	// dirs says the step creates directories.
	dirs bool
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
		giveUp: true}
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
	return step{what: "init " + folder, do: func(r maildir.Root) error { return r.Folder(folder).Init() }, effect: func(layout) {}, dirs: true}
}

func mkdirAll(rel string) step {
	return step{what: "mkdir " + rel, do: func(r maildir.Root) error { return r.MkdirAll(rel) }, effect: func(layout) {}, dirs: true}
}

// powerSteps is a day of a Maildir's life: deliveries, flag changes in
// new/ and cur/, a move between folders, a removal, nested folders and a
// plain hierarchy level.
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
}

// runSteps runs the steps from the first until one fails; it returns the
// layout the acknowledged steps promise and the index of the step that
// failed (len(powerSteps) if none).
func runSteps(t *testing.T, r maildir.Root, first int, l layout) (layout, int) {
	for i := first; i < len(powerSteps); i++ {
		s := &powerSteps[i]
		if err := s.do(r); err != nil {
			if !errors.Is(err, maildirtest.ErrPowerCut) {
				t.Fatalf("%s: %v", s.what, err)
			}
			return l, i
		}
		s.effect(l)
	}
	return l, len(powerSteps)
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
// no file is empty or cut short.
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
	acked, i := runSteps(t, maildir.NewRootFS(base, c), 0, layout{})
	var cut *step
	if i < len(powerSteps) {
		cut = &powerSteps[i]
	}
	if err := c.Materialize(); err != nil {
		t.Fatal(err)
	}
	got := onDisk(t, base)
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
			what := "no step"
			if cut != nil {
				what = cut.what
			}
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
	if _, i := runSteps(t, maildir.NewRootFS(base, c), 0, layout{}); i < len(powerSteps) {
		t.Fatalf("%s failed without a cut", powerSteps[i].what)
	}
	return c.Ops()
}

// TestKillThenPowerCut kills the process at every operation of
// powerSteps in turn, which leaves the killed run's changes on the disk
// whether fsynced or not, and runs again: the step it was in (settled if
// its work is found done, as a recovering engine would, else called
// again; a delivery not found is given up) and the rest. Then the power
// is cut: everything the second run acknowledged, including work it found
// done, must be durable.
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
	l, i := runSteps(t, r, 0, layout{})
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
		s.effect(l)
	case s.giveUp:
		dropped = s.key
	default:
		if err := s.do(r); err != nil {
			t.Fatalf("killed at %s: %s again: %v", killed, s.what, err)
		}
		s.effect(l)
	}
	for _, s := range powerSteps[i+1:] {
		if s.key != "" && s.key == dropped {
			continue
		}
		if err := s.do(r); err != nil {
			t.Fatalf("killed at %s, then %s: %v", killed, s.what, err)
		}
		s.effect(l)
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
