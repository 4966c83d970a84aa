package maildir

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// deliverOne delivers body into d and returns the path of its file.
func deliverOne(t *testing.T, d Dir, body string, flags mail.Flags, date time.Time) string {
	t.Helper()
	del, err := d.Deliver(context.Background(), strings.NewReader(body), flags, date)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(d.Path, del.Subdir, del.Name)
}

// stageLinked stages src into d under a new key and commits it,
// returning the new file's path and whether it was copied.
func stageLinked(t *testing.T, d Dir, src string, flags mail.Flags) (string, bool) {
	t.Helper()
	key := NewKey()
	st, copied, err := d.StageLink(context.Background(), key, src, flags)
	if err != nil {
		t.Fatal(err)
	}
	del, err := st.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SyncDirs(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(d.Path, del.Subdir, del.Name), copied
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}

func TestStageLinkSharesTheFile(t *testing.T) {
	root := t.TempDir()
	a, b := Dir{Path: filepath.Join(root, "a")}, Dir{Path: filepath.Join(root, "b")}
	for _, d := range []Dir{a, b} {
		if err := d.Init(); err != nil {
			t.Fatal(err)
		}
	}
	date := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	src := deliverOne(t, a, "Subject: x\r\n\r\nbody\r\n", mail.NewFlags(mail.FlagSeen), date)
	dst, copied := stageLinked(t, b, src, mail.NewFlags(mail.FlagFlagged))
	if copied {
		t.Fatal("a link on one file system was made as a copy")
	}
	if !sameFile(t, src, dst) {
		t.Fatal("the two names are not one file")
	}
	if filepath.Base(filepath.Dir(dst)) != "new" || !strings.HasSuffix(dst, ":2,F") {
		t.Fatalf("linked file %s: want new/ with its own flags F", dst)
	}
	if got := names(t, b, "tmp"); len(got) != 0 {
		t.Fatalf("tmp/ left with %v", got)
	}
	// Removing one name keeps the other whole.
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(dst)
	if err != nil || string(data) != "Subject: x\n\nbody\n" {
		t.Fatalf("after removing the first name: %q, %v", data, err)
	}
	// A source that is gone says so.
	if _, _, err := b.StageLink(context.Background(), NewKey(), src, mail.Flags{}); !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing source: %v", err)
	}
}

// refusingFS is the operating system's file system whose links fail with
// a given error, as across file systems (EXDEV) or on one without links.
type refusingFS struct {
	osFS
	err error
}

func (r refusingFS) Link(string, string) error { return &os.LinkError{Op: "link", Err: r.err} }

// plainFS has no Link method at all.
type plainFS struct{ FS }

func TestStageLinkCopiesWhereLinksAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		fsys FS
	}{
		{"EXDEV", refusingFS{err: syscall.EXDEV}},
		{"EPERM", refusingFS{err: syscall.EPERM}},
		{"EMLINK", refusingFS{err: syscall.EMLINK}},
		{"no links", plainFS{osFS{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			a := Dir{Path: filepath.Join(root, "a")}
			b := Dir{Path: filepath.Join(root, "b"), fsys: tc.fsys}
			for _, d := range []Dir{a, b} {
				if err := d.Init(); err != nil {
					t.Fatal(err)
				}
			}
			date := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
			src := deliverOne(t, a, "Subject: y\r\n\r\nline\r\n", mail.Flags{}, date)
			dst, copied := stageLinked(t, b, src, mail.NewFlags(mail.FlagSeen))
			if !copied || sameFile(t, src, dst) {
				t.Fatalf("copied = %v, same file = %v: want a copy", copied, sameFile(t, src, dst))
			}
			assertCopy(t, src, dst)
		})
	}
	t.Run("EIO is an error", func(t *testing.T) {
		root := t.TempDir()
		a := Dir{Path: filepath.Join(root, "a")}
		b := Dir{Path: filepath.Join(root, "b"), fsys: refusingFS{err: syscall.EIO}}
		for _, d := range []Dir{a, b} {
			if err := d.Init(); err != nil {
				t.Fatal(err)
			}
		}
		src := deliverOne(t, a, "Subject: z\r\n\r\n", mail.Flags{}, time.Time{})
		if _, _, err := b.StageLink(context.Background(), NewKey(), src, mail.Flags{}); err == nil {
			t.Fatal("an I/O error was taken for a refusal")
		}
	})
}

// TestStageLinkAcrossFileSystems links from a Maildir on one file system
// into one on another: the link fails with EXDEV and a copy is made.
func TestStageLinkAcrossFileSystems(t *testing.T) {
	other := os.Getenv("SATCHEL_OTHER_FS")
	if other == "" {
		other = "/dev/shm"
	}
	here := t.TempDir()
	var sa, sb syscall.Stat_t
	if err := syscall.Stat(here, &sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(other, &sb); err != nil || sa.Dev == sb.Dev {
		if os.Getenv("SATCHEL_REQUIRE_OTHER_FS") != "" {
			t.Fatalf("no second file system at %s (SATCHEL_OTHER_FS) beside %s", other, here)
		}
		t.Skipf("no second file system at %s beside %s; set SATCHEL_OTHER_FS", other, here)
	}
	there, err := os.MkdirTemp(other, "satchel-link-")
	if err != nil {
		t.Skipf("cannot write on %s: %v", other, err)
	}
	t.Cleanup(func() { os.RemoveAll(there) })
	a, b := Dir{Path: filepath.Join(here, "a")}, Dir{Path: filepath.Join(there, "b")}
	for _, d := range []Dir{a, b} {
		if err := d.Init(); err != nil {
			t.Fatal(err)
		}
	}
	src := deliverOne(t, a, "Subject: far\r\n\r\naway\r\n", mail.Flags{}, time.Date(2022, 1, 2, 3, 4, 5, 0, time.UTC))
	dst, copied := stageLinked(t, b, src, mail.Flags{})
	if !copied {
		t.Fatal("a link across file systems was not a copy")
	}
	assertCopy(t, src, dst)
}

// assertCopy checks that dst holds src's bytes and mtime, mode 0600.
func assertCopy(t *testing.T, src, dst string) {
	t.Helper()
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("copy holds %q, want %q", got, want)
	}
	fs, _ := os.Stat(src)
	fd, _ := os.Stat(dst)
	if !fd.ModTime().Equal(fs.ModTime()) {
		t.Fatalf("copy's mtime %v, want %v", fd.ModTime(), fs.ModTime())
	}
	if fd.Mode().Perm() != 0o600 {
		t.Fatalf("copy's mode %v, want 0600", fd.Mode().Perm())
	}
}
