//go:build unix

package maildir

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// TestModesWhateverTheUmask checks that folders are 0700 and messages
// 0600 under a umask that would widen them (0) and one that would leave
// them unusable (0777). The umask is process-wide: these tests must not
// run in parallel with others.
func TestModesWhateverTheUmask(t *testing.T) {
	for _, umask := range []int{0, 0o777, 0o022} {
		t.Run(fmt.Sprintf("umask=%04o", umask), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)

			base := t.TempDir()
			d := Dir{Path: filepath.Join(base, "a", "b")}
			if err := d.Init(); err != nil {
				t.Fatalf("Init: %v", err)
			}
			for _, p := range []string{"a", "a/b", "a/b/cur", "a/b/new", "a/b/tmp"} {
				assertMode(t, filepath.Join(base, p), fs.ModeDir|0o700)
			}
			for _, flags := range []mail.Flags{mail.NewFlags(), mail.NewFlags(mail.FlagSeen)} {
				got, err := d.Deliver(context.Background(), strings.NewReader("x\r\n"), flags, time.Now())
				if err != nil {
					t.Fatalf("Deliver: %v", err)
				}
				assertMode(t, filepath.Join(d.Path, got.Subdir, got.Name), 0o600)
			}
		})
	}
}

func assertMode(t *testing.T, p string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("mode of %s = %v, want %v", p, fi.Mode(), want)
	}
}
