package synctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Notmuch is a notmuch configuration for a test's Maildir, as the README
// sets notmuch up (maildir.synchronize_flags=true, satchel's identity
// file ignored), kept apart from the user's: Env is what a child process
// needs to use it and nothing else.
type Notmuch struct {
	Bin    string   // the notmuch command
	Config string   // the configuration file
	Env    []string // HOME, NOTMUCH_CONFIG and XDG directories, to add to a child's
}

// NewNotmuch writes the configuration for a database at root (created if
// missing). Without notmuch the test is skipped, loudly, or fails where
// SATCHEL_REQUIRE_NOTMUCH=1 (CI). what names what goes untested.
func NewNotmuch(t testing.TB, root, what string) *Notmuch {
	t.Helper()
	bin, err := exec.LookPath("notmuch")
	if err != nil {
		msg := fmt.Sprintf("*** NOTMUCH NOT FOUND: %s is not tested; install notmuch (apt-get install notmuch) ***", what)
		if os.Getenv("SATCHEL_REQUIRE_NOTMUCH") == "1" {
			t.Fatal(msg + " (SATCHEL_REQUIRE_NOTMUCH=1)")
		}
		t.Skip(msg)
	}
	home := t.TempDir()
	cfg := filepath.Join(home, "notmuch-config")
	err = os.WriteFile(cfg, []byte(fmt.Sprintf(`[database]
path=%s
[user]
name=Satchel Test
primary_email=me@example.org
[new]
tags=unread;inbox;
ignore=.satchel-id
[search]
exclude_tags=
[maildir]
synchronize_flags=true
`, root)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	return &Notmuch{Bin: bin, Config: cfg, Env: []string{"HOME=" + home, "NOTMUCH_CONFIG=" + cfg, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home}}
}
