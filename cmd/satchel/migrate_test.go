package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/store"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

// TestMigrateFolders: on a hosting-style server, an account synced into
// an index that keeps the whole server names has INBOX.Archive in
// INBOX/Archive. migrate-folders warns about mail readers' paths, prints
// each move; --dry-run changes nothing; a folder already at the new place
// fails the run with exit 3, naming both; once it is cleared the move
// happens, and a further run has nothing to do. A held lock is exit 75.
func TestMigrateFolders(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{Prefix: "INBOX.", Separator: "."})
	srv.CreateMailbox("INBOX.Archive")
	srv.Append("INBOX.Archive", []byte("Subject: old\r\n\r\nold\r\n"), []string{`\Seen`}, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")

	// An index as an earlier satchel made it.
	ctx := context.Background()
	if err := os.MkdirAll(filepath.Dir(a.index), 0o700); err != nil {
		t.Fatal(err)
	}
	ix, err := store.Open(ctx, a.index)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.SetMeta(ctx, "folder_names", "full"); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	if code, _, errs := runCLI(t, "--config", a.config, "sync"); code != exitOK {
		t.Fatalf("sync: exit %d, %q", code, errs)
	}
	oldDir, newDir := filepath.Join(a.maildir, "INBOX", "Archive"), filepath.Join(a.maildir, "Archive")
	if !exists(filepath.Join(oldDir, "cur")) {
		t.Fatalf("the old index has no folder INBOX/Archive")
	}
	const move = "personal: INBOX.Archive: INBOX/Archive → Archive\n"

	code, out, errs := runCLI(t, "--config", a.config, "migrate-folders", "--dry-run")
	if code != exitOK || !strings.Contains(out, move) || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("--dry-run: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, w := range []string{"mutt", "notmuch", "sync first"} {
		if !strings.Contains(errs, w) {
			t.Errorf("the warning does not mention %s: %q", w, errs)
		}
	}
	if !exists(filepath.Join(oldDir, "cur")) || exists(newDir) {
		t.Fatal("--dry-run moved the folder")
	}

	// A folder of the user's where Archive would go.
	for _, sub := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(newDir, sub), 0o700)
	}
	code, out, errs = runCLI(t, "--config", a.config, "migrate-folders", "personal")
	if code != exitPartial || !strings.Contains(out, "(not moved)") {
		t.Fatalf("collision: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if !strings.Contains(errs, "personal: INBOX.Archive: ") || !strings.Contains(errs, "folder INBOX/Archive") || !strings.Contains(errs, "to Archive") {
		t.Errorf("the error does not name both folders: %q", errs)
	}
	if !exists(filepath.Join(oldDir, "cur")) {
		t.Fatal("the colliding folder moved")
	}

	os.RemoveAll(newDir)
	code, out, errs = runCLI(t, "--config", a.config, "migrate-folders", "personal")
	if code != exitOK || !strings.Contains(out, move) || !strings.Contains(out, `leave the prefix "INBOX." out from now on`) {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if ents, err := os.ReadDir(filepath.Join(newDir, "cur")); err != nil || len(ents) != 1 || exists(oldDir) {
		t.Fatalf("Archive/cur: %d files (%v); INBOX/Archive still there: %v", len(ents), err, exists(oldDir))
	}
	code, out, _ = runCLI(t, "--config", a.config, "migrate-folders")
	if code != exitOK || !strings.Contains(out, "personal: nothing to do") {
		t.Errorf("second run: exit %d, %q", code, out)
	}
	if code, out, errs := runCLI(t, "--config", a.config, "-v", "sync"); code != exitOK || !strings.Contains(out, "0 downloaded") {
		t.Errorf("sync after the migration: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	l, err := store.Lock(ctx, a.index+".lock", false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if code, _, errs := runCLI(t, "--config", a.config, "migrate-folders"); code != exitLocked || !strings.Contains(errs, "lock") {
		t.Errorf("locked: exit %d, %q", code, errs)
	}
}
