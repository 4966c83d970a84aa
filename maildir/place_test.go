package maildir

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// copyingFS is the operating system's file system given to a Dir as if it
// were another one: PlaceLazy copies into it instead of linking.
type copyingFS struct{ osFS }

// TestPlaceAll: every message of one folder the other lacks is placed
// under its own name, with its mtime, as a hard link on one file system
// and as a copy otherwise; a message the target has already (under any
// flags) is left alone, and nothing is left in tmp/.
func TestPlaceAll(t *testing.T) {
	date := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		link bool
	}{{"link", true}, {"copy", false}} {
		t.Run(tc.name, func(t *testing.T) {
			from := newDir(t)
			touch(t, from, subNew, "1700000000.a.host", "new one\n")
			touch(t, from, subCur, "1700000001.b.host:2,S", "seen one\n")
			touch(t, from, subCur, "1700000002.c.host:2,", "had it\n")
			for _, n := range []string{"new/1700000000.a.host", "cur/1700000001.b.host:2,S", "cur/1700000002.c.host:2,"} {
				if err := os.Chtimes(filepath.Join(from.Path, n), date, date); err != nil {
					t.Fatal(err)
				}
			}
			to := Dir{Path: filepath.Join(t.TempDir(), "target")}
			if !tc.link {
				to.fsys = copyingFS{}
			}
			if err := to.Init(); err != nil {
				t.Fatal(err)
			}
			touch(t, to, subCur, "1700000002.c.host:2,F", "had it\n")

			n, err := to.PlaceAll(t.Context(), from)
			if err != nil || n != 2 {
				t.Fatalf("PlaceAll = %d, %v; want 2 placed", n, err)
			}
			if got, want := names(t, to, subCur), []string{"1700000001.b.host:2,S", "1700000002.c.host:2,F"}; !slices.Equal(got, want) {
				t.Errorf("cur/ = %q, want %q", got, want)
			}
			if got, want := names(t, to, subNew), []string{"1700000000.a.host"}; !slices.Equal(got, want) {
				t.Errorf("new/ = %q, want %q", got, want)
			}
			if got := names(t, to, subTmp); len(got) != 0 {
				t.Errorf("tmp/ = %q, want nothing", got)
			}
			src, _ := os.Stat(filepath.Join(from.Path, subCur, "1700000001.b.host:2,S"))
			dst, err := os.Stat(filepath.Join(to.Path, subCur, "1700000001.b.host:2,S"))
			if err != nil {
				t.Fatal(err)
			}
			if os.SameFile(src, dst) != tc.link {
				t.Errorf("placed file is a hard link: %v, want %v", os.SameFile(src, dst), tc.link)
			}
			if !dst.ModTime().Equal(date) || dst.Mode().Perm() != 0o600 {
				t.Errorf("placed file: mtime %v, mode %v; want %v, 0600", dst.ModTime(), dst.Mode().Perm(), date)
			}
			if data, _ := os.ReadFile(filepath.Join(to.Path, subCur, "1700000001.b.host:2,S")); string(data) != "seen one\n" {
				t.Errorf("placed file holds %q", data)
			}

			// Again: nothing is missing.
			if n, err := to.PlaceAll(t.Context(), from); err != nil || n != 0 {
				t.Errorf("second PlaceAll = %d, %v; want 0", n, err)
			}
		})
	}
}
