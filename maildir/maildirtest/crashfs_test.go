package maildirtest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// tree lists the regular files below base, path → contents.
func tree(t *testing.T, base string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(base, p)
		m[filepath.ToSlash(r)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// base returns a directory with a/ and b/, and a/old holding "old",
// all durable.
func base(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, sub := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(d, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d, "a", "old"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, c *CrashFS, name, content string, sync bool) {
	t.Helper()
	f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	_, err = f.Write([]byte(content))
	must(t, err)
	if sync {
		must(t, f.Sync())
	}
	must(t, f.Close())
}

func syncDir(t *testing.T, c *CrashFS, name string) {
	t.Helper()
	f, err := c.OpenFile(name, os.O_RDONLY, 0)
	must(t, err)
	must(t, f.Sync())
	must(t, f.Close())
}

// TestDurabilityModel checks what survives a cut after each pattern of
// writes, renames and fsyncs.
func TestDurabilityModel(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, c *CrashFS, d string)
		want map[string]string
	}{
		{"nothing synced", func(t *testing.T, c *CrashFS, d string) {
			create(t, c, filepath.Join(d, "a", "new"), "data", false)
		}, map[string]string{"a/old": "old"}},
		{"file synced, directory not", func(t *testing.T, c *CrashFS, d string) {
			create(t, c, filepath.Join(d, "a", "new"), "data", true)
		}, map[string]string{"a/old": "old"}},
		{"directory synced, file not", func(t *testing.T, c *CrashFS, d string) {
			create(t, c, filepath.Join(d, "a", "new"), "data", false)
			syncDir(t, c, filepath.Join(d, "a"))
		}, map[string]string{"a/old": "old", "a/new": ""}},
		{"both synced", func(t *testing.T, c *CrashFS, d string) {
			create(t, c, filepath.Join(d, "a", "new"), "data", true)
			syncDir(t, c, filepath.Join(d, "a"))
		}, map[string]string{"a/old": "old", "a/new": "data"}},
		{"written after the file's sync", func(t *testing.T, c *CrashFS, d string) {
			f, err := c.OpenFile(filepath.Join(d, "a", "new"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			must(t, err)
			_, err = f.Write([]byte("da"))
			must(t, err)
			must(t, f.Sync())
			_, err = f.Write([]byte("ta"))
			must(t, err)
			must(t, f.Close())
			syncDir(t, c, filepath.Join(d, "a"))
		}, map[string]string{"a/old": "old", "a/new": "da"}},
		{"rename, target synced", func(t *testing.T, c *CrashFS, d string) {
			must(t, c.Rename(filepath.Join(d, "a", "old"), filepath.Join(d, "b", "old")))
			syncDir(t, c, filepath.Join(d, "b"))
		}, map[string]string{"a/old": "old", "b/old": "old"}},
		{"rename, source synced", func(t *testing.T, c *CrashFS, d string) {
			must(t, c.Rename(filepath.Join(d, "a", "old"), filepath.Join(d, "b", "old")))
			syncDir(t, c, filepath.Join(d, "a"))
		}, map[string]string{}},
		{"rename over a file before the new file's sync", func(t *testing.T, c *CrashFS, d string) {
			create(t, c, filepath.Join(d, "a", "tmp"), "new", false)
			must(t, c.Rename(filepath.Join(d, "a", "tmp"), filepath.Join(d, "a", "old")))
		}, map[string]string{"a/old": "old"}},
		{"rename over a file, directory synced, file not", func(t *testing.T, c *CrashFS, d string) {
			create(t, c, filepath.Join(d, "a", "tmp"), "new", false)
			must(t, c.Rename(filepath.Join(d, "a", "tmp"), filepath.Join(d, "a", "old")))
			syncDir(t, c, filepath.Join(d, "a"))
		}, map[string]string{"a/old": ""}},
		{"remove, not synced", func(t *testing.T, c *CrashFS, d string) {
			must(t, c.Remove(filepath.Join(d, "a", "old")))
		}, map[string]string{"a/old": "old"}},
		{"remove, synced", func(t *testing.T, c *CrashFS, d string) {
			must(t, c.Remove(filepath.Join(d, "a", "old")))
			syncDir(t, c, filepath.Join(d, "a"))
		}, map[string]string{}},
		{"new directory, its entry not synced", func(t *testing.T, c *CrashFS, d string) {
			must(t, c.Mkdir(filepath.Join(d, "c"), 0o700))
			must(t, c.Mkdir(filepath.Join(d, "c", "d"), 0o700))
			create(t, c, filepath.Join(d, "c", "d", "f"), "f", true)
			syncDir(t, c, filepath.Join(d, "c", "d"))
			syncDir(t, c, filepath.Join(d, "c"))
		}, map[string]string{"a/old": "old"}},
		{"new directories, all synced", func(t *testing.T, c *CrashFS, d string) {
			must(t, c.Mkdir(filepath.Join(d, "c"), 0o700))
			must(t, c.Mkdir(filepath.Join(d, "c", "d"), 0o700))
			create(t, c, filepath.Join(d, "c", "d", "f"), "f", true)
			syncDir(t, c, filepath.Join(d, "c", "d"))
			syncDir(t, c, filepath.Join(d, "c"))
			syncDir(t, c, d)
		}, map[string]string{"a/old": "old", "c/d/f": "f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := base(t)
			c, err := New(d, -1)
			must(t, err)
			tt.do(t, c, d)
			must(t, c.Materialize())
			got := tree(t, d)
			if len(got) != len(tt.want) {
				t.Fatalf("after the cut: %q, want %q", got, tt.want)
			}
			for p, w := range tt.want {
				if g, ok := got[p]; !ok || g != w {
					t.Fatalf("after the cut: %q, want %q", got, tt.want)
				}
			}
		})
	}
}

// TestDurableTimesAndMode checks that the mtime and mode a file had at
// its fsync come back.
func TestDurableTimesAndMode(t *testing.T) {
	d := base(t)
	c, err := New(d, -1)
	must(t, err)
	p := filepath.Join(d, "a", "f")
	f, err := c.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	_, err = f.Write([]byte("x"))
	must(t, err)
	must(t, f.Chmod(0o640))
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, c.Chtimes(p, when, when))
	must(t, f.Sync())
	must(t, f.Close())
	syncDir(t, c, filepath.Join(d, "a"))
	must(t, c.Materialize())
	fi, err := os.Stat(p)
	must(t, err)
	if !fi.ModTime().Equal(when) || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mtime %v mode %v, want %v 0640", fi.ModTime(), fi.Mode().Perm(), when)
	}
}

// TestCut checks that the call after the chosen number of operations and
// every later one fails, that uncounted calls fail too, and that the
// OnCut functions run once.
func TestCut(t *testing.T) {
	d := base(t)
	c, err := New(d, 2)
	must(t, err)
	cuts := 0
	c.OnCut(func() { cuts++ })
	must(t, c.Op("commit"))
	must(t, c.Mkdir(filepath.Join(d, "c"), 0o700))
	if err := c.Remove(filepath.Join(d, "a", "old")); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("third operation: %v, want the power cut", err)
	}
	if _, err := os.Stat(filepath.Join(d, "a", "old")); err != nil {
		t.Fatalf("the cut operation was carried out: %v", err)
	}
	if _, err := c.Stat(d); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("stat after the cut: %v", err)
	}
	if err := c.Op("commit"); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("op after the cut: %v", err)
	}
	if cuts != 1 || c.Ops() != 2 || c.Cut() != "op 3: remove a/old" {
		t.Fatalf("cuts %d, ops %d, cut %q", cuts, c.Ops(), c.Cut())
	}
	if tr := c.Trace(10); !slices.Equal(tr, []string{"op 1: commit", "op 2: mkdir c", "CUT op 3: remove a/old"}) {
		t.Fatalf("trace %q", tr)
	}
}

// TestRestart checks that a process crash keeps what was not fsynced on
// the disk, and that a power cut after the restart drops it.
func TestRestart(t *testing.T) {
	d := base(t)
	c, err := New(d, 2)
	must(t, err)
	create(t, c, filepath.Join(d, "a", "f"), "f", true)
	if err := c.Rename(filepath.Join(d, "a", "f"), filepath.Join(d, "b", "f")); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("second operation: %v, want the cut", err)
	}
	c.Restart(-1)
	if _, err := os.Stat(filepath.Join(d, "a", "f")); err != nil {
		t.Fatalf("the killed process's file is gone: %v", err)
	}
	must(t, c.Rename(filepath.Join(d, "a", "f"), filepath.Join(d, "b", "f")))
	syncDir(t, c, filepath.Join(d, "b"))
	if c.Ops() != 4 {
		t.Fatalf("ops %d, want 4", c.Ops())
	}
	must(t, c.Materialize())
	// a/ was never fsynced after f was created in it, b/ was after f
	// arrived: f is in b/ only, whole.
	got := tree(t, d)
	if len(got) != 2 || got["a/old"] != "old" || got["b/f"] != "f" {
		t.Fatalf("after the cut: %q", got)
	}
}
