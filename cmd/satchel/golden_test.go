package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/store"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

// updateGolden rewrites the golden files from what the commands print:
// go test ./cmd/satchel -run Golden -update.
var updateGolden = flag.Bool("update", false, "rewrite cmd/satchel/testdata/golden from the commands' output")

// goldenRun is one command line of a golden story: its exit code and
// output, normalised so that a run on another machine, at another time,
// prints the same.
type goldenRun struct {
	t    *testing.T
	subs []goldenSub // longest first
}

// goldenSub replaces what differs between runs: a regular expression and
// its replacement.
type goldenSub struct {
	re   *regexp.Regexp
	with string
}

// goldenRewrites are the parts of the output that change from run to run.
var goldenRewrites = []goldenSub{
	// A Maildir key: <seconds>.M<µs>P<pid>Q<n>R<random>.<host>.
	{regexp.MustCompile(`\d{9,}\.M\d+P\d+Q\d+R[0-9a-f]{16}\.[^\s:"/]+`), "$$KEY"},
	// Durations: the summary lines' "in 1.2s", the JSON "seconds".
	{regexp.MustCompile(`in (\d+(\.\d+)?(h|ms|µs|ns|m|s))+`), "in $$DURATION"},
	{regexp.MustCompile(`"seconds": [0-9.e-]+`), `"seconds": $$SECONDS`},
	// The last sync, in status, in local time and in JSON.
	{regexp.MustCompile(`\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?([-+]\d\d:\d\d|Z)?`), "$$TIME"},
	// A watch cycle's line starts with the time.
	{regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d `), "$$CLOCK "},
	// -v logs what was done message by message, in the order of
	// concurrent connections; the summary is what is compared.
	{regexp.MustCompile(`(?m)^time=\S+ level=(DEBUG|INFO) .*\n`), ""},
}

func newGoldenRun(t *testing.T, dir string, servers ...*imaptest.Server) *goldenRun {
	g := &goldenRun{t: t}
	for _, s := range servers {
		g.subs = append(g.subs, goldenSub{regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("%s:%d", s.Host, s.Port))), "$$SERVER"})
		g.subs = append(g.subs, goldenSub{regexp.MustCompile(`\b` + regexp.QuoteMeta(fmt.Sprint(s.Port)) + `\b`), "$$PORT"})
	}
	g.subs = append(g.subs, goldenSub{regexp.MustCompile(regexp.QuoteMeta(dir)), "$$DIR"})
	return g
}

func (g *goldenRun) normalise(s string) string {
	for _, r := range g.subs {
		s = r.re.ReplaceAllString(s, r.with)
	}
	for _, r := range goldenRewrites {
		s = r.re.ReplaceAllString(s, r.with)
	}
	return s
}

// run runs the command line and compares what it did with the golden
// file name.
func (g *goldenRun) run(name string, args ...string) {
	g.t.Helper()
	code, out, errs := runCLI(g.t, args...)
	g.check(name, args, code, out, errs)
}

// check compares one command's exit code and output with the golden file
// name, or writes it with -update.
func (g *goldenRun) check(name string, args []string, code int, out, errs string) {
	g.t.Helper()
	var shown []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--config" {
			i++
			continue
		}
		shown = append(shown, args[i])
	}
	got := g.normalise(fmt.Sprintf("$ satchel %s\nexit %d\n-- stdout --\n%s-- stderr --\n%s", strings.Join(shown, " "), code, out, errs))
	path := filepath.Join("testdata", "golden", name+".txt")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			g.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		g.t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		g.t.Errorf("%s: the output differs from %s:\n%s", name, path, lineDiff(got, string(want)))
	}
}

// TestGoldenCommands runs each command of a short story against the
// in-memory server and compares exit code, stdout and stderr with the
// golden files: a first sync planned and done, a change on each side
// synced, status, check, mailboxes and verify over the result, a verify
// that finds a lost file, the account restored to another server, and a
// lock held by another run.
func TestGoldenCommands(t *testing.T) {
	srv := imaptest.StartMemory(t)
	srv.CreateMailbox("Archive")
	for i := range 3 {
		srv.Append("INBOX", testMsg(fmt.Sprint("inbox ", i)), nil, testDate)
	}
	for i := range 2 {
		srv.Append("Archive", testMsg(fmt.Sprint("archive ", i)), []string{`\Seen`, "$label1"}, testDate)
	}
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	g := newGoldenRun(t, a.dir, srv)
	cfg := []string{"--config", a.config}
	args := func(rest ...string) []string { return append(append([]string{}, cfg...), rest...) }

	g.run("sync-dry-run", args("sync", "--dry-run")...)
	g.run("sync-dry-run-json", args("--json", "sync", "--dry-run")...)
	g.run("status-never-synced", args("status")...)
	g.run("sync-summary", args("-v", "sync")...)

	writeLocalMessage(t, a, "INBOX", "draft one")
	srv.Append("Archive", testMsg("archive new"), nil, testDate)
	g.run("sync-json", args("--json", "sync")...)
	g.run("sync-quiet-nothing", args("sync")...)

	g.run("status", args("status")...)
	g.run("status-json", args("--json", "status")...)
	g.run("check", args("check")...)
	g.run("check-json", args("--json", "check")...)
	g.run("mailboxes", args("mailboxes")...)
	g.run("mailboxes-json", args("--json", "mailboxes")...)
	g.run("verify", args("verify")...)
	g.run("verify-json", args("--json", "verify", "--deep")...)
	g.run("migrate-folders-nothing", args("migrate-folders")...)

	// Restored to another, empty server: the Maildir's files are placed in
	// the other account's and uploaded, the keywords follow.
	other := imaptest.StartMemory(t)
	dir := t.TempDir()
	g.subs = append([]goldenSub{{regexp.MustCompile(regexp.QuoteMeta(dir)), "$$DIR2"}}, g.subs...)
	g.subs = append([]goldenSub{
		{regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("%s:%d", other.Host, other.Port))), "$$SERVER2"},
	}, g.subs...)
	src := restoreSide{name: "personal", srv: srv, maildir: a.maildir, index: a.index}
	dst := newRestoreAccount(dir, "new", other)
	two := writeAccounts(t, dir, src, dst)
	// The in-memory servers take their own password only.
	data, err := os.ReadFile(two)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.ReplaceAll(string(data), `password_command: "echo x"`, fmt.Sprintf("password_command: \"echo %s\"", srv.Password)))
	if err := os.WriteFile(two, data, 0o600); err != nil {
		t.Fatal(err)
	}
	g.run("restore-to-json", "--config", two, "--json", "restore", "personal", "--to", "new")
	g.run("restore-to", "--config", two, "restore", "personal", "--to", "new", "--mailbox", "INBOX")
	g.run("restore-in-place", "--config", two, "restore", "new")
	g.run("verify-restored", "--config", two, "verify", "new")

	// A lost file.
	if err := os.Remove(fileOf(t, a, "INBOX", "inbox 1")); err != nil {
		t.Fatal(err)
	}
	g.run("verify-differences", args("verify")...)
	g.run("verify-differences-json", args("--json", "verify")...)

	l, err := store.Lock(t.Context(), a.index+".lock", false)
	if err != nil {
		t.Fatal(err)
	}
	g.run("sync-locked", args("sync")...)
	g.run("verify-locked", args("verify")...)
	g.run("restore-locked", args("restore", "personal")...)
	l.Unlock()

	bad := writeConfig(t, srv.Host, srv.Port, srv.User, "not-"+srv.Password, "")
	g.subs = append([]goldenSub{{regexp.MustCompile(regexp.QuoteMeta(bad.dir)), "$$DIR3"}}, g.subs...)
	g.run("sync-wrong-password-json", "--config", bad.config, "--json", "sync")
}

// TestGoldenMigrateFolders runs migrate-folders on a hosting-style server
// (INBOX. prefix) against its golden files: the dry run, the moves, and
// nothing left to do.
func TestGoldenMigrateFolders(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{Prefix: "INBOX.", Separator: "."})
	srv.CreateMailbox("INBOX.Archive")
	srv.CreateMailbox("INBOX.Sent")
	srv.Append("INBOX.Archive", testMsg("old"), []string{`\Seen`}, testDate)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	ix, err := func() (*store.Index, error) {
		if err := os.MkdirAll(filepath.Dir(a.index), 0o700); err != nil {
			return nil, err
		}
		return store.Open(t.Context(), a.index)
	}()
	if err != nil {
		t.Fatal(err)
	}
	// An index as an earlier satchel made it: whole server names.
	if err := ix.SetMeta(t.Context(), "folder_names", "full"); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	g := newGoldenRun(t, a.dir, srv)
	mustSyncCLI(t, "--config", a.config, "sync")
	g.run("migrate-folders-dry-run", "--config", a.config, "migrate-folders", "--dry-run")
	g.run("migrate-folders-dry-run-json", "--config", a.config, "--json", "migrate-folders", "--dry-run")
	g.run("migrate-folders", "--config", a.config, "migrate-folders")
	g.run("migrate-folders-again-json", "--config", a.config, "--json", "migrate-folders")
}

// TestGoldenWatch runs a watch with -v and compares the lines it prints
// for its cycles with the golden file: the first sync, then a message
// that arrives on the server.
func TestGoldenWatch(t *testing.T) {
	srv, a := serverWithMail(t)
	r := startWatch(t, a, fastWatch, func(g *globals) { g.verbose = true })
	r.waitFor(t, "the first sync", func() bool { return len(r.snapshot()) > 0 })
	r.settle(t)
	n := len(r.snapshot())
	srv.Append("INBOX", testMsg("arrived"), nil, testDate)
	r.waitFor(t, "a sync of the new message", func() bool { return r.cycleOK(n, "INBOX") && strings.Contains(r.stdout.String(), "1 downloaded") })
	r.settle(t)
	code := r.stop(t)
	g := newGoldenRun(t, a.dir, srv)
	// Only stdout: -v logs to stderr what each cycle looked at.
	g.check("watch-cycles", []string{"-v", "watch"}, code, r.stdout.String(), "")
}
