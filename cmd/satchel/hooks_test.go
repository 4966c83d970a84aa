package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

// hooksConfig writes a one-account configuration for srv with the given
// hooks (YAML-quoted here).
func hooksConfig(t *testing.T, srv *imaptest.Server, pre, post string) account {
	t.Helper()
	var extra strings.Builder
	extra.WriteString("    hooks:\n")
	if pre != "" {
		extra.WriteString("      pre: " + yamlString(pre) + "\n")
	}
	if post != "" {
		extra.WriteString("      post: " + yamlString(post) + "\n")
	}
	return writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, extra.String())
}

// readEnv reads a file of NAME=value lines.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the hook did not run: %v", err)
	}
	env := map[string]string{}
	for line := range strings.Lines(string(data)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		env[k] = v
	}
	return env
}

// TestHooks: pre runs before the sync, post after it with the outcome in
// its environment, run after run.
func TestHooks(t *testing.T) {
	srv := imaptest.StartMemory(t)
	date := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	srv.Append("INBOX", []byte("Subject: one\r\n\r\n1\r\n"), nil, date)
	srv.Append("INBOX", []byte("Subject: two\r\n\r\n2\r\n"), nil, date)
	dir := t.TempDir()
	log, envFile := filepath.Join(dir, "hooks.log"), filepath.Join(dir, "post.env")
	// pre records whether the Maildir existed yet: it runs before the
	// first sync creates it.
	pre := fmt.Sprintf(`if [ -d "$SATCHEL_MAILDIR" ]; then echo "pre $SATCHEL_HOOK $SATCHEL_ACCOUNT maildir"; else echo "pre $SATCHEL_HOOK $SATCHEL_ACCOUNT none"; fi >> %s`, log)
	post := fmt.Sprintf(`echo "post $SATCHEL_HOOK" >> %s; env | grep '^SATCHEL_' > %s`, log, envFile)
	a := hooksConfig(t, srv, pre, post)

	code, _, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitOK {
		t.Fatalf("sync: exit %d, stderr %q", code, errs)
	}
	got, _ := os.ReadFile(log)
	if want := "pre pre personal none\npost post\n"; string(got) != want {
		t.Errorf("hooks log %q, want %q", got, want)
	}
	env := readEnv(t, envFile)
	want := map[string]string{
		"SATCHEL_HOOK": "post", "SATCHEL_ACCOUNT": "personal", "SATCHEL_MAILDIR": a.maildir, "SATCHEL_STATUS": "ok",
		"SATCHEL_MAILBOXES": "1", "SATCHEL_DOWNLOADED": "2", "SATCHEL_UPLOADED": "0", "SATCHEL_FLAGS": "0",
		"SATCHEL_REMOVED": "0", "SATCHEL_DELETED": "0", "SATCHEL_MOVED": "0", "SATCHEL_FAILED": "0", "SATCHEL_HELD": "0",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("post hook saw %s=%q, want %q", k, env[k], v)
		}
	}

	// Read one message locally and delete the other: the next post hook
	// counts a flag change and a deletion, and no download.
	files, _ := filepath.Glob(filepath.Join(a.maildir, "INBOX", "new", "*"))
	slices.Sort(files)
	if len(files) != 2 {
		t.Fatalf("INBOX/new holds %q, want 2 files", files)
	}
	if err := os.Rename(files[0], filepath.Join(a.maildir, "INBOX", "cur", filepath.Base(files[0])+":2,S")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCLI(t, "--config", a.config, "sync"); code != exitOK {
		t.Fatalf("second sync: exit %d, stderr %q", code, errs)
	}
	env = readEnv(t, envFile)
	for k, v := range map[string]string{"SATCHEL_DOWNLOADED": "0", "SATCHEL_FLAGS": "1", "SATCHEL_DELETED": "1", "SATCHEL_STATUS": "ok"} {
		if env[k] != v {
			t.Errorf("second post hook saw %s=%q, want %q", k, env[k], v)
		}
	}
	got, _ = os.ReadFile(log)
	if want := "pre pre personal none\npost post\npre pre personal maildir\npost post\n"; string(got) != want {
		t.Errorf("hooks log %q, want %q", got, want)
	}

	// A dry run acts on nothing, hooks included.
	if code, _, errs := runCLI(t, "--config", a.config, "sync", "--dry-run"); code != exitOK {
		t.Fatalf("dry run: exit %d, stderr %q", code, errs)
	}
	if got2, _ := os.ReadFile(log); string(got2) != string(got) {
		t.Errorf("a dry run ran hooks: log %q", got2)
	}
}

// TestPreHookFails: the account is not synced at all (its post hook does
// not run either) and counts as failed: exit 1 alone, 3 beside an account
// that synced.
func TestPreHookFails(t *testing.T) {
	srv := imaptest.StartMemory(t)
	srv.Append("INBOX", []byte("Subject: one\r\n\r\n1\r\n"), nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	marker := filepath.Join(dir, "post-ran")
	a := hooksConfig(t, srv, "echo mount failed >&2; exit 7", "touch "+marker)

	code, out, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitFailure {
		t.Fatalf("exit %d, want 1 (stderr %q)", code, errs)
	}
	want := "mount failed\nsatchel: personal: hooks.pre failed (exit status 7); the account was not synced; check accounts.hooks.pre\n"
	if errs != want || out != "" {
		t.Errorf("stdout %q\nstderr %q\nwant stderr %q", out, errs, want)
	}
	if exists(marker) {
		t.Error("the post hook ran after a failed pre hook")
	}
	assertNothingWritten(t, a)

	// A second account, without hooks, syncs: the run is partial.
	cfg, _ := os.ReadFile(a.config)
	second := fmt.Sprintf(`  - name: work
    imap: {host: %s, port: %d, tls: none, user: %s, password_command: "echo %s"}
    maildir: %s
    index: %s
`, srv.Host, srv.Port, srv.User, srv.Password, filepath.Join(dir, "Work"), filepath.Join(dir, "work.db"))
	os.WriteFile(a.config, append(cfg, second...), 0o600)
	code, _, errs = runCLI(t, "--config", a.config, "--json", "sync")
	if code != exitPartial {
		t.Fatalf("two accounts: exit %d, want 3 (stderr %q)", code, errs)
	}
	if !exists(filepath.Join(dir, "Work", "INBOX", "new")) {
		t.Error("the account without hooks was not synced")
	}
}

// TestPostHookFails: the mail is synced, the failure is reported, and the
// run exits 3. The hook's stdout goes to satchel's stdout, to stderr with
// --json, and nowhere with -q; its stderr always to stderr.
func TestPostHookFails(t *testing.T) {
	srv := imaptest.StartMemory(t)
	srv.Append("INBOX", []byte("Subject: one\r\n\r\n1\r\n"), nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	a := hooksConfig(t, srv, "", "echo indexed 1 file; echo database locked >&2; exit 1")
	failed := "satchel: personal: hooks.post failed (exit status 1); check accounts.hooks.post\n"

	code, out, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitPartial {
		t.Fatalf("exit %d, want 3 (stderr %q)", code, errs)
	}
	if !strings.Contains(out, "indexed 1 file\n") || errs != "database locked\n"+failed {
		t.Errorf("stdout %q\nstderr %q", out, errs)
	}
	if files, _ := filepath.Glob(filepath.Join(a.maildir, "INBOX", "new", "*")); len(files) != 1 {
		t.Errorf("INBOX/new holds %q, want the message", files)
	}

	code, out, errs = runCLI(t, "--config", a.config, "--json", "sync")
	var doc struct{ Accounts []jsonAccount }
	if code != exitPartial || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Accounts) != 1 {
		t.Errorf("--json: exit %d, stdout is not the JSON document: %q", code, out)
	}
	if !strings.Contains(errs, "indexed 1 file\n") || !strings.HasSuffix(errs, failed) {
		t.Errorf("--json: stderr %q", errs)
	}

	code, out, errs = runCLI(t, "--config", a.config, "-q", "sync")
	if code != exitPartial || out != "" || errs != "database locked\n"+failed {
		t.Errorf("-q: exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
}

// TestPostHookStatus: the post hook hears how the sync went, also when it
// failed.
func TestPostHookStatus(t *testing.T) {
	srv := imaptest.StartMemory(t)
	envFile := filepath.Join(t.TempDir(), "post.env")
	a := hooksConfig(t, srv, "", "env | grep '^SATCHEL_' > "+envFile)
	cfg, _ := os.ReadFile(a.config)
	os.WriteFile(a.config, []byte(strings.Replace(string(cfg), srv.Password, "wrong", 1)), 0o600)
	if code, _, errs := runCLI(t, "--config", a.config, "sync"); code != exitFailure {
		t.Fatalf("exit %d, want 1 (stderr %q)", code, errs)
	}
	if env := readEnv(t, envFile); env["SATCHEL_STATUS"] != "failed" || env["SATCHEL_MAILBOXES"] != "0" {
		t.Errorf("post hook after a failed login saw %v", env)
	}
}
