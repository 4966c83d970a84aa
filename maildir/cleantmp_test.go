package maildir

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCleanTmp: satchel's own leftovers and files older than 36 hours
// go; another program's fresh delivery stays.
func TestCleanTmp(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	write := func(name string, age time.Duration) string {
		p := filepath.Join(d.Path, "tmp", name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, now.Add(-age), now.Add(-age))
		return p
	}
	own := write("1700000000.M1P2Q3Rabcd.host", time.Minute)
	old := write("1600000000.other.host", 37*time.Hour)
	fresh := write("1700000001.other.host", time.Hour)
	if err := (Folder{Dir: d}).CleanTmp([]string{"1700000000.M1P2Q3Rabcd.host", "../escape"}, now); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{own: false, old: false, fresh: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: present %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
