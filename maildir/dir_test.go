package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestInit(t *testing.T) {
	base := t.TempDir()
	d := Dir{Path: filepath.Join(base, "x", "y", "z")}
	if err := d.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		fi, err := os.Stat(filepath.Join(d.Path, sub))
		if err != nil || !fi.IsDir() {
			t.Errorf("%s/: %v", sub, err)
		}
	}
	touch(t, d, "cur", "k:2,S", "m")
	if err := d.Init(); err != nil {
		t.Fatalf("second Init: %v", err)
	}
	if n, err := d.Count(); err != nil || n != 1 {
		t.Errorf("after second Init Count = %d, %v; want 1", n, err)
	}
}

func TestInitRefusesFiles(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (Dir{Path: file}).Init(); err == nil {
		t.Error("Init on a regular file succeeded")
	}
	box := filepath.Join(base, "box")
	if err := os.MkdirAll(box, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(box, "cur"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (Dir{Path: box}).Init(); err == nil {
		t.Error("Init with a regular file named cur succeeded")
	}
	if err := (Dir{}).Init(); err == nil {
		t.Error("Init with an empty path succeeded")
	}
}

func TestScanAndCount(t *testing.T) {
	d := newDir(t)
	touch(t, d, "new", "a", "")
	touch(t, d, "new", "b:2,F", "")
	touch(t, d, "cur", "c:2,RS", "")
	touch(t, d, "new", "d:2,", "")  // moved to cur/ during a scan:
	touch(t, d, "cur", "d:2,S", "") // reported once, from cur/
	touch(t, d, "cur", ".hidden:2,S", "")
	touch(t, d, "new", ".x", "")
	touch(t, d, "cur", ":2,S", "")
	if err := os.Mkdir(filepath.Join(d.Path, "cur", "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}

	got, err := d.Scan()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Entry{
		"a": {Key: "a", Subdir: "new", Name: "a", Flags: mail.NewFlags()},
		"b": {Key: "b", Subdir: "new", Name: "b:2,F", Flags: mail.NewFlags(mail.FlagFlagged)},
		"c": {Key: "c", Subdir: "cur", Name: "c:2,RS", Flags: mail.NewFlags(mail.FlagAnswered, mail.FlagSeen)},
		"d": {Key: "d", Subdir: "cur", Name: "d:2,S", Flags: mail.NewFlags(mail.FlagSeen)},
	}
	if len(got) != len(want) {
		t.Errorf("Scan found %d entries %v, want %d", len(got), got, len(want))
	}
	for k, w := range want {
		assertEntry(t, got[k], w)
	}

	// Count counts files, the duplicate too.
	if n, err := d.Count(); err != nil || n != 5 {
		t.Errorf("Count = %d, %v; want 5", n, err)
	}
}

// TestFolderScan: the folder's listing is Dir.Scan's as key → flags,
// whichever of new/ and cur/ holds more, a key in both reported from cur/,
// and it keeps the string same gives for each key.
func TestFolderScan(t *testing.T) {
	for _, curs := range []int{1, 5} {
		d := newDir(t)
		touch(t, d, "new", "a", "")
		touch(t, d, "new", "b:2,F", "")
		touch(t, d, "new", "d:2,", "")
		touch(t, d, "cur", "d:2,S", "")
		for i := range curs - 1 {
			touch(t, d, "cur", fmt.Sprintf("c%d:2,R", i), "")
		}
		ents, err := d.Scan()
		if err != nil {
			t.Fatal(err)
		}
		asked := map[string]bool{}
		got, err := Folder{d}.ScanShared(func(k string) string {
			asked[k] = true
			return strings.Clone(k)
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ents) || !got["d"].Equal(mail.NewFlags(mail.FlagSeen)) {
			t.Errorf("%d in cur/: listing %v, want %v", curs, got, ents)
		}
		for k, e := range ents {
			if fl, ok := got[k]; !ok || !fl.Equal(e.Flags) || !asked[k] {
				t.Errorf("%d in cur/: %q = %v, %v (asked %v), want %v", curs, k, fl, ok, asked[k], e.Flags)
			}
		}
	}
}

func TestScanMissingFolder(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "none")}
	if _, err := d.Scan(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Scan of a missing folder: %v, want fs.ErrNotExist", err)
	}
	if _, err := d.Count(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Count of a missing folder: %v, want fs.ErrNotExist", err)
	}
}

func assertEntry(t *testing.T, got, want Entry) {
	t.Helper()
	if got.Key != want.Key || got.Subdir != want.Subdir || got.Name != want.Name || !got.Flags.Equal(want.Flags) {
		t.Errorf("entry = %+v (flags %v), want %+v (flags %v)", got, got.Flags, want, want.Flags)
	}
}

func TestFind(t *testing.T) {
	d := newDir(t)
	touch(t, d, "new", "n", "")
	touch(t, d, "cur", "c:2,S", "")
	touch(t, d, "cur", "cc:2,F", "") // shares a prefix with "c"
	tests := []struct {
		key  string
		ok   bool
		want Entry
	}{
		{"n", true, Entry{Key: "n", Subdir: "new", Name: "n", Flags: mail.NewFlags()}},
		{"c", true, Entry{Key: "c", Subdir: "cur", Name: "c:2,S", Flags: mail.NewFlags(mail.FlagSeen)}},
		{"cc", true, Entry{Key: "cc", Subdir: "cur", Name: "cc:2,F", Flags: mail.NewFlags(mail.FlagFlagged)}},
		{"absent", false, Entry{}},
	}
	for _, tt := range tests {
		e, ok, err := d.Find(tt.key)
		if err != nil {
			t.Errorf("Find(%q): %v", tt.key, err)
			continue
		}
		if ok != tt.ok {
			t.Errorf("Find(%q) ok = %v, want %v", tt.key, ok, tt.ok)
			continue
		}
		if ok {
			assertEntry(t, e, tt.want)
			if got := e.Path(d); got != filepath.Join(d.Path, tt.want.Subdir, tt.want.Name) {
				t.Errorf("Path = %q", got)
			}
		}
	}
}

func TestSetFlags(t *testing.T) {
	tests := []struct {
		name             string
		sub, file        string
		flags            mail.Flags
		wantSub, wantNew string
	}{
		{"unseen flag stays in new", "new", "k", mail.NewFlags(mail.FlagFlagged), "new", "k:2,F"},
		{"seen moves new to cur", "new", "k", mail.NewFlags(mail.FlagSeen), "cur", "k:2,S"},
		{"seen and flagged sorted", "new", "k:2,", mail.NewFlags(mail.FlagSeen, mail.FlagFlagged), "cur", "k:2,FS"},
		{"unseen stays in cur", "cur", "k:2,S", mail.NewFlags(), "cur", "k:2,"},
		{"keywords ignored, no change", "cur", "k:2,FS", mail.NewFlags(mail.FlagSeen, mail.FlagFlagged, "$Junk"), "cur", "k:2,FS"},
		{"other programs' letters kept", "cur", "k:2,Sab", mail.NewFlags(mail.FlagFlagged), "cur", "k:2,Fab"},
		{"name without info gets one", "cur", "k", mail.NewFlags(), "cur", "k:2,"},
		{"unsorted info normalised", "cur", "k:2,SF", mail.NewFlags(mail.FlagSeen, mail.FlagFlagged), "cur", "k:2,FS"},
		{"deleted and draft", "new", "k:2,F", mail.NewFlags(mail.FlagDeleted, mail.FlagDraft), "new", "k:2,DT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t)
			touch(t, d, tt.sub, tt.file, "message")
			got, err := d.SetFlags("k", tt.flags)
			if err != nil {
				t.Fatalf("SetFlags: %v", err)
			}
			_, wantFlags, _ := ParseName(tt.wantNew)
			want := Entry{Key: "k", Subdir: tt.wantSub, Name: tt.wantNew, Flags: wantFlags}
			assertEntry(t, got, want)
			body, err := os.ReadFile(filepath.Join(d.Path, tt.wantSub, tt.wantNew))
			if err != nil || string(body) != "message" {
				t.Errorf("renamed file: %q, %v", body, err)
			}
			if n, err := d.Count(); err != nil || n != 1 {
				t.Errorf("Count = %d, %v; want 1 (old name left behind?)", n, err)
			}
			found, ok, err := d.Find("k")
			if err != nil || !ok {
				t.Fatalf("Find after SetFlags: %v, %v", ok, err)
			}
			assertEntry(t, found, want)
		})
	}
}

func TestMissingAndInvalidKeys(t *testing.T) {
	d := newDir(t)
	touch(t, d, "cur", "present:2,S", "")
	if _, err := d.SetFlags("absent", mail.NewFlags(mail.FlagSeen)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SetFlags of a missing key: %v, want fs.ErrNotExist", err)
	}
	if err := d.Remove("absent"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove of a missing key: %v, want fs.ErrNotExist", err)
	}
	for _, key := range []string{"", "../cur/present", "present:2,S", ".hidden", "a/b"} {
		if _, _, err := d.Find(key); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Find(%q): %v, want fs.ErrInvalid", key, err)
		}
		if _, err := d.SetFlags(key, mail.NewFlags()); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("SetFlags(%q): %v, want fs.ErrInvalid", key, err)
		}
		if err := d.Remove(key); !errors.Is(err, fs.ErrInvalid) || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Remove(%q): %v, want fs.ErrInvalid", key, err)
		}
	}
	if l := names(t, d, "cur"); len(l) != 1 || l[0] != "present:2,S" {
		t.Errorf("cur/ = %q, want the file untouched", l)
	}
}

func TestRemove(t *testing.T) {
	for _, sub := range []string{"new", "cur"} {
		t.Run(sub, func(t *testing.T) {
			d := newDir(t)
			touch(t, d, sub, "gone:2,S", "")
			touch(t, d, sub, "gone2:2,S", "") // a key with "gone" as prefix stays
			if err := d.Remove("gone"); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if _, ok, err := d.Find("gone"); ok || err != nil {
				t.Errorf("Find after Remove: %v, %v", ok, err)
			}
			if l := names(t, d, sub); len(l) != 1 || l[0] != "gone2:2,S" {
				t.Errorf("%s/ = %q, want only gone2:2,S", sub, l)
			}
			if err := d.Remove("gone"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("second Remove: %v, want fs.ErrNotExist", err)
			}
		})
	}
}

// TestFindAndScanWhileReaderMoves plays a mail reader that moves every
// message from new/ to cur/ while Find and Scan run: neither may report
// a message as gone.
func TestFindAndScanWhileReaderMoves(t *testing.T) {
	d := newDir(t)
	const n = 200
	keys := make([]string, n)
	for i := range n {
		keys[i] = fmt.Sprintf("k%03d", i)
		touch(t, d, "new", keys[i], "")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, k := range keys {
			if err := os.Rename(filepath.Join(d.Path, "new", k), filepath.Join(d.Path, "cur", k+":2,S")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for moving := true; moving; {
		select {
		case <-done:
			moving = false
		default:
		}
		m, err := d.Scan()
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != n {
			t.Fatalf("Scan found %d messages during moves, want %d", len(m), n)
		}
		for _, k := range []string{keys[0], keys[n/2], keys[n-1]} {
			if _, ok, err := d.Find(k); !ok || err != nil {
				t.Fatalf("Find(%q) during moves: %v, %v", k, ok, err)
			}
		}
	}
	m, err := d.Scan()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if e := m[k]; e.Subdir != "cur" || !e.Flags.Has(mail.FlagSeen) {
			t.Fatalf("after moves %q = %+v", k, e)
		}
	}
}
