package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/store"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

// runCLI runs the command line in-process and returns its exit code,
// stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"satchel"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

type account struct {
	dir, config, maildir, index string
}

// writeConfig writes a one-account configuration for a test server; extra
// is appended to the account's imap section.
func writeConfig(t *testing.T, host string, port int, user, password, extra string) account {
	t.Helper()
	dir := t.TempDir()
	a := account{dir: dir, config: filepath.Join(dir, "config.yaml"), maildir: filepath.Join(dir, "Mail"), index: filepath.Join(dir, "state", "personal.db")}
	pw := fmt.Sprintf("password_command: \"printf '%%s\\\\n' '%s'\"", password)
	cfg := fmt.Sprintf(`accounts:
  - name: personal
    imap:
      host: %s
      port: %d
      tls: none
      user: %s
      %s
%s    maildir: %s
    index: %s
`, host, port, user, pw, extra, a.maildir, a.index)
	if err := os.WriteFile(a.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// assertNothingWritten checks that a failed run left no Maildir and no
// index behind.
func assertNothingWritten(t *testing.T, a account) {
	t.Helper()
	for _, p := range []string{a.maildir, a.index, filepath.Dir(a.index)} {
		if exists(p) {
			t.Errorf("%s was created by a run that failed", p)
		}
	}
}

func oneLine(t *testing.T, stderr string) string {
	t.Helper()
	s := strings.TrimRight(stderr, "\n")
	if s == "" || strings.Contains(s, "\n") {
		t.Fatalf("want a one-line error, got %q", stderr)
	}
	return s
}

func TestSyncAndStatus(t *testing.T) {
	srv := imaptest.StartMemory(t)
	srv.CreateMailbox("Archive/2024")
	srv.Append("INBOX", []byte("Subject: hi\r\n\r\nhello\r\n"), nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	srv.Append("Archive/2024", []byte("Subject: old\r\n\r\nold\r\n"), []string{`\Seen`}, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")

	// -v: the summary line prints on a terminal or with -v.
	code, out, errs := runCLI(t, "--config", a.config, "-v", "sync")
	if code != exitOK {
		t.Fatalf("sync: exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "2 downloaded") {
		t.Fatalf("sync summary %q does not say 2 downloaded", out)
	}
	for _, p := range []string{"INBOX/new", "Archive/2024/cur"} {
		ents, err := os.ReadDir(filepath.Join(a.maildir, p))
		if err != nil || len(ents) != 1 {
			t.Fatalf("%s: %d files (%v), want 1", p, len(ents), err)
		}
	}

	code, out, _ = runCLI(t, "--config", a.config, "--json", "status")
	if code != exitOK {
		t.Fatalf("status: exit %d", code)
	}
	var doc struct {
		Accounts []statusAccount `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	// The in-memory server creates "Archive" as a mailbox of its own.
	if len(doc.Accounts) != 1 || len(doc.Accounts[0].Mailboxes) != 3 {
		t.Fatalf("status: %+v", doc)
	}
	for _, m := range doc.Accounts[0].Mailboxes {
		want := 1
		if m.Name == "Archive" {
			want = 0
		}
		if m.LocalN != want || m.RemoteN != uint32(want) || m.LastSync == nil || m.Mode != "full" {
			t.Errorf("status of %s: %+v", m.Name, m)
		}
	}

	code, out, _ = runCLI(t, "--config", a.config, "check")
	if code != exitOK || !strings.Contains(out, "sync mode: full") || !strings.Contains(out, "IMAP4rev1") ||
		!strings.Contains(out, `namespaces: personal "" (separator "/"); other users none; shared none`) {
		t.Fatalf("check: exit %d, %q", code, out)
	}
}

func TestBadConfigExit2(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("accounts:\n  - name: x\n    imap:\n      host: h\n      prot: 1\n"), 0o600)
	code, _, errs := runCLI(t, "--config", cfg, "sync")
	if code != exitUsage {
		t.Fatalf("exit %d, want 2", code)
	}
	line := oneLine(t, errs)
	if !strings.Contains(line, "config.yaml:5") || !strings.Contains(line, "prot") {
		t.Fatalf("error %q does not name the file, line and key", line)
	}
	code, _, errs = runCLI(t, "--config", filepath.Join(dir, "missing.yaml"), "status")
	if code != exitUsage || !strings.Contains(errs, "missing.yaml") {
		t.Fatalf("missing config: exit %d, %q", code, errs)
	}
	code, _, _ = runCLI(t, "--config", cfg, "sync", "--no-such-flag")
	if code != exitUsage {
		t.Fatalf("unknown flag: exit %d, want 2", code)
	}
}

func TestPlaintextToRemoteHostRefused(t *testing.T) {
	a := writeConfig(t, "imap.example.org", 143, "me", "secret", "")
	code, _, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitUsage {
		t.Fatalf("exit %d, want 2", code)
	}
	if line := oneLine(t, errs); !strings.Contains(line, "tls") {
		t.Fatalf("error %q does not say how to fix tls", line)
	}
	assertNothingWritten(t, a)
}

func TestUnreachableServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	a := writeConfig(t, "127.0.0.1", port, "me", "secret", "")
	code, _, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitFailure {
		t.Fatalf("exit %d, want 1", code)
	}
	if line := oneLine(t, errs); !strings.Contains(line, "cannot connect") || !strings.Contains(line, "imap.host") {
		t.Fatalf("error %q does not say what to check", line)
	}
	assertNothingWritten(t, a)
}

func TestWrongPassword(t *testing.T) {
	srv := imaptest.StartMemory(t)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "not-"+srv.Password, "")
	code, _, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitFailure {
		t.Fatalf("exit %d, want 1", code)
	}
	line := oneLine(t, errs)
	if !strings.Contains(line, "authentication failed") || !strings.Contains(line, "password_command") {
		t.Fatalf("error %q does not say what to fix", line)
	}
	if strings.Contains(line, "not-"+srv.Password) {
		t.Fatal("the error shows the password")
	}
	assertNothingWritten(t, a)
}

func TestFailingPasswordCommand(t *testing.T) {
	srv := imaptest.StartMemory(t)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "x", "")
	cfg, _ := os.ReadFile(a.config)
	cfg = bytes.Replace(cfg, []byte(`password_command: "printf '%s\\n' 'x'"`), []byte(`password_command: "echo vault locked >&2; exit 3"`), 1)
	os.WriteFile(a.config, cfg, 0o600)
	code, _, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitFailure {
		t.Fatalf("exit %d, want 1 (stderr %q)", code, errs)
	}
	line := oneLine(t, errs)
	if !strings.Contains(line, "password_command of account personal failed") || !strings.Contains(line, "vault locked") {
		t.Fatalf("error %q", line)
	}
}

func TestTraceRedactsPassword(t *testing.T) {
	srv := imaptest.StartMemory(t)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	trace := filepath.Join(a.dir, "trace.log")
	code, _, errs := runCLI(t, "--config", a.config, "--trace", trace, "check")
	if code != exitOK {
		t.Fatalf("check: exit %d, %q", code, errs)
	}
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(srv.Password)) {
		t.Fatalf("trace holds the password:\n%s", data)
	}
	if !bytes.Contains(data, []byte("***")) || !bytes.Contains(data, []byte("C: ")) || !bytes.Contains(data, []byte("S: ")) {
		t.Fatalf("trace does not record a redacted login:\n%s", data)
	}
	if fi, _ := os.Stat(trace); fi.Mode().Perm() != 0o600 {
		t.Fatalf("trace file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestLockHeldExit75(t *testing.T) {
	srv := imaptest.StartMemory(t)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	if code, _, errs := runCLI(t, "--config", a.config, "sync"); code != exitOK {
		t.Fatalf("first sync: %d %q", code, errs)
	}
	l, err := store.Lock(context.Background(), a.index+".lock", false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	code, _, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitLocked {
		t.Fatalf("exit %d, want 75", code)
	}
	if !strings.Contains(oneLine(t, errs), "locked") {
		t.Fatalf("stderr %q", errs)
	}
	code, _, errs = runCLI(t, "--config", a.config, "-q", "sync")
	if code != exitLocked || errs != "" {
		t.Fatalf("-q: exit %d, stderr %q; want 75 and silence", code, errs)
	}
}

// TestUIDValidityChangeIsReported: a renumbered mailbox is re-associated,
// not refused, and the run says so on stderr (a warning, exit 0).
func TestUIDValidityChangeIsReported(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.CreateMailbox("Lists")
	srv.Append("Lists", []byte("Subject: a\r\n\r\na\r\n"), nil, time.Now().Truncate(time.Second))
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "unused", "")
	if code, _, errs := runCLI(t, "--config", a.config, "sync"); code != exitOK {
		t.Fatalf("first sync: %d %q", code, errs)
	}
	ix, err := store.Open(context.Background(), a.index)
	if err != nil {
		t.Fatal(err)
	}
	mb, _, _ := ix.Mailbox(context.Background(), "Lists")
	mb.UIDValidity++ // as if the server had renumbered the mailbox
	if err := ix.SaveMailbox(context.Background(), mb); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	code, _, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitOK {
		t.Fatalf("exit %d, want 0 (stderr %q)", code, errs)
	}
	if !strings.Contains(errs, "renumbered") || !strings.Contains(errs, "Lists") {
		t.Fatalf("stderr %q does not report the renumbering", errs)
	}
	if n, _ := os.ReadDir(filepath.Join(a.maildir, "Lists", "new")); len(n) != 1 {
		t.Fatalf("Lists/new holds %d files, want 1 (no second copy)", len(n))
	}
}

func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	code, out, errs := runCLI(t, "demo", dir)
	if code != exitOK {
		t.Fatalf("demo: exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "first sync: demo: 6 mailboxes, 11 downloaded") || !strings.Contains(out, "0 downloaded") {
		t.Fatalf("demo output:\n%s", out)
	}
	for _, p := range []string{"Mail/INBOX/cur", "Mail/INBOX/new", "Mail/Travail/Réunions/new", "satchel.db"} {
		if !exists(filepath.Join(dir, p)) {
			t.Errorf("%s missing after the demo", p)
		}
	}
	if !strings.Contains(out, "mutt -f "+filepath.Join(dir, "Mail", "INBOX")) {
		t.Errorf("demo does not say how to open the mail with mutt:\n%s", out)
	}
	// The notmuch line works as printed.
	if nm, err := exec.LookPath("notmuch"); err == nil {
		cfg := filepath.Join(dir, "notmuch-config")
		if !strings.Contains(out, "NOTMUCH_CONFIG="+cfg+" notmuch new") {
			t.Fatalf("demo does not say how to index the mail with notmuch:\n%s", out)
		}
		cmd := exec.Command(nm, "new", "--quiet")
		cmd.Env = append(os.Environ(), "NOTMUCH_CONFIG="+cfg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("notmuch new: %v\n%s", err, b)
		}
		cmd = exec.Command(nm, "count", "*")
		cmd.Env = append(os.Environ(), "NOTMUCH_CONFIG="+cfg)
		if b, err := cmd.Output(); err != nil || strings.TrimSpace(string(b)) != "11" {
			t.Fatalf("notmuch count: %q %v", b, err)
		}
	}
}

func TestExitCodePrecedence(t *testing.T) {
	tests := []struct {
		name string
		o    outcome
		want int
	}{
		{"clean", outcome{accounts: 2}, exitOK},
		{"all failed", outcome{accounts: 2, failedAccounts: 2}, exitFailure},
		{"one of two failed", outcome{accounts: 2, failedAccounts: 1}, exitPartial},
		{"mailbox failed", outcome{accounts: 1, failures: 1}, exitPartial},
		{"safety beats partial", outcome{accounts: 2, failedAccounts: 1, safety: 1}, exitSafety},
		{"failure beats safety", outcome{accounts: 1, failedAccounts: 1, safety: 1}, exitFailure},
		{"partial beats locked", outcome{accounts: 2, failures: 1, lockedAccounts: 1}, exitPartial},
		{"locked", outcome{accounts: 2, lockedAccounts: 1}, exitLocked},
		{"usage beats all", outcome{accounts: 1, failedAccounts: 1, usage: true}, exitUsage},
		{"over quota", outcome{accounts: 2, overQuota: 1}, exitOverQuota},
		{"every account over quota", outcome{accounts: 1, overQuota: 1}, exitOverQuota},
		{"partial beats over quota", outcome{accounts: 2, failures: 1, overQuota: 1}, exitPartial},
		{"over quota beats locked", outcome{accounts: 2, overQuota: 1, lockedAccounts: 1}, exitOverQuota},
	}
	for _, tt := range tests {
		if got := tt.o.code(); got != tt.want {
			t.Errorf("%s: code %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "--version")
	if code != exitOK || !strings.Contains(out, "satchel version") {
		t.Fatalf("--version: %d %q", code, out)
	}
	code, _, errs := runCLI(t, "frobnicate")
	if code != exitUsage || !strings.Contains(errs, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errs)
	}
}

// TestReindex: with the index deleted, reindex pairs every file with its
// server message: nothing is downloaded or uploaded, a local file the
// server lacks is kept and not uploaded, and the next sync does nothing.
func TestReindex(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.CreateMailbox("Lists")
	for i := range 5 {
		srv.Append("INBOX", []byte(fmt.Sprintf("Subject: m%d\r\nMessage-ID: <m%d@x>\r\n\r\nbody %d\r\n", i, i, i)), []string{`\Seen`}, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	srv.Append("Lists", []byte("Subject: l\r\nMessage-ID: <l@x>\r\n\r\nl\r\n"), nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "unused", "")
	if code, _, errs := runCLI(t, "--config", a.config, "sync"); code != exitOK {
		t.Fatalf("first sync: %d %q", code, errs)
	}
	// A message the server loses while the index is gone.
	msgs := srv.Messages("INBOX")
	srv.Expunge("INBOX", msgs[0].UID)
	for _, ext := range []string{"", "-wal", "-shm"} {
		os.Remove(a.index + ext)
	}
	code, out, errs := runCLI(t, "--config", a.config, "-v", "reindex")
	if code != exitOK {
		t.Fatalf("reindex: %d %q", code, errs)
	}
	if !strings.Contains(out, "0 downloaded") {
		t.Fatalf("reindex transferred mail: %q", out)
	}
	if n := len(srv.Messages("INBOX")); n != 4 {
		t.Fatalf("INBOX on the server has %d messages, want 4 (nothing uploaded)", n)
	}
	cur, _ := os.ReadDir(filepath.Join(a.maildir, "INBOX", "cur"))
	if len(cur) != 5 {
		t.Fatalf("INBOX/cur has %d files, want 5 (nothing removed)", len(cur))
	}
	code, out, errs = runCLI(t, "--config", a.config, "-v", "sync")
	if code != exitOK || !strings.Contains(out, "0 downloaded") || !strings.Contains(out, "0 flag updates, 0 removed") {
		t.Fatalf("sync after reindex: %d %q %q", code, out, errs)
	}
}

// TestSyncFlagsAfterAccount: flags may follow the account names, and -q
// may follow the command, as in the README's and cron's examples.
func TestSyncFlagsAfterAccount(t *testing.T) {
	srv := imaptest.StartMemory(t)
	srv.CreateMailbox("Archive")
	srv.Append("INBOX", []byte("Subject: a\r\n\r\na\r\n"), nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	srv.Append("Archive", []byte("Subject: b\r\n\r\nb\r\n"), nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	code, out, errs := runCLI(t, "--config", a.config, "--json", "sync", "personal", "--mailbox", "INBOX")
	if code != exitOK {
		t.Fatalf("exit %d: %q", code, errs)
	}
	if !strings.Contains(out, `"name": "INBOX"`) || strings.Contains(out, `"name": "Archive"`) {
		t.Fatalf("--mailbox after the account was not applied:\n%s", out)
	}
	code, out, errs = runCLI(t, "--config", a.config, "sync", "-q")
	if code != exitOK || out != "" || errs != "" {
		t.Fatalf("sync -q: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, _, errs = runCLI(t, "--config", a.config, "sync", "personal", "--no-such-flag")
	if code != exitUsage {
		t.Fatalf("unknown flag after the account: exit %d (%q)", code, errs)
	}
}
