package maildir

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// newDir returns an initialised, empty Maildir in a temporary directory.
func newDir(t *testing.T) Dir {
	t.Helper()
	d := Dir{Path: filepath.Join(t.TempDir(), "box")}
	if err := d.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return d
}

// names lists the entries of one subdirectory of d, sorted.
func names(t *testing.T, d Dir, sub string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(d.Path, sub))
	if err != nil {
		t.Fatal(err)
	}
	var l []string
	for _, de := range des {
		l = append(l, de.Name())
	}
	slices.Sort(l)
	return l
}

// touch creates a file in a subdirectory of d holding content.
func touch(t *testing.T, d Dir, sub, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(d.Path, sub, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// assertEmpty fails unless tmp/, new/ and cur/ of d are all empty.
func assertEmpty(t *testing.T, d Dir) {
	t.Helper()
	for _, sub := range []string{subTmp, subNew, subCur} {
		if l := names(t, d, sub); len(l) != 0 {
			t.Errorf("%s/ holds %q, want nothing", sub, l)
		}
	}
}
