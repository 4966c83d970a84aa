package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// restoreSide is one account of a restore test's configuration.
type restoreSide struct {
	name    string
	srv     *imaptest.Server
	maildir string
	index   string
	layout  string // "" leaves the configuration's default
	// mailboxMap is the account's mailboxes.map.
	mailboxMap map[string]string
}

// writeAccounts writes a configuration with the given accounts.
func writeAccounts(t *testing.T, dir string, accs ...restoreSide) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("accounts:\n")
	for _, a := range accs {
		fmt.Fprintf(&b, `  - name: %s
    imap:
      host: %s
      port: %d
      tls: none
      user: %s
      password_command: "echo x"
    maildir: %q
    index: %q
`, a.name, a.srv.Host, a.srv.Port, a.srv.User, a.maildir, a.index)
		if a.layout != "" {
			fmt.Fprintf(&b, "    layout: %q\n", a.layout)
		}
		if len(a.mailboxMap) > 0 {
			b.WriteString("    mailboxes:\n      map:\n")
			for _, k := range slices.Sorted(maps.Keys(a.mailboxMap)) {
				fmt.Fprintf(&b, "        %q: %q\n", k, a.mailboxMap[k])
			}
		}
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newRestoreAccount(dir, name string, srv *imaptest.Server) restoreSide {
	return restoreSide{name: name, srv: srv, maildir: filepath.Join(dir, name, "Mail"), index: filepath.Join(dir, name, "state", name+".db")}
}

// restoreMailboxes are the mailboxes of the restore tests: nested,
// a parent that is a mailbox of its own, non-ASCII, spaces.
var restoreMailboxes = []string{"INBOX", "Archive", "Archive/2024", "Sent", "Друзья", "Spaces in name"}

// mailOf describes the mail of a server mailbox: one line per message,
// SHA-256 of its body with LF line ends, its system flags as Maildir
// letters and its INTERNALDATE, sorted.
func mailOf(srv *imaptest.Server, mailbox string) []string {
	var out []string
	for _, m := range srv.Messages(mailbox) {
		body := bytes.ReplaceAll(m.Body, []byte("\r\n"), []byte("\n"))
		out = append(out, fmt.Sprintf("%x %s %d", sha256.Sum256(body), maildir.InfoFromFlags(mail.NewFlags(m.Flags...).System()), m.Date.Unix()))
	}
	slices.Sort(out)
	return out
}

// keywordsOf describes the mail of a server mailbox with its keywords:
// SHA-256 of the body and the keywords, sorted.
func keywordsOf(srv *imaptest.Server, mailbox string) []string {
	var out []string
	for _, m := range srv.Messages(mailbox) {
		out = append(out, fmt.Sprintf("%x %s", sha256.Sum256(m.Body), mail.NewFlags(m.Flags...).Keywords()))
	}
	slices.Sort(out)
	return out
}

// filesOf describes the files of a Maildir folder the way mailOf describes
// messages: content, flags of the name, mtime.
func filesOf(t *testing.T, root, mailbox string) []string {
	t.Helper()
	rel, err := maildir.EncodeName(strings.Split(mailbox, "/"))
	if err != nil {
		t.Fatal(err)
	}
	return folderFilesOf(t, filepath.Join(root, filepath.FromSlash(rel)))
}

// folderFilesOf describes the files of the Maildir folder at folder as
// filesOf does.
func folderFilesOf(t *testing.T, folder string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"cur", "new"} {
		dir := filepath.Join(folder, sub)
		ents, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			_, flags, ok := maildir.ParseName(e.Name())
			if !ok {
				t.Fatalf("%s: not a message file name", p)
			}
			out = append(out, fmt.Sprintf("%x %s %d", sha256.Sum256(data), maildir.InfoFromFlags(flags), fi.ModTime().Unix()))
		}
	}
	slices.Sort(out)
	return out
}

// sameMail fails unless the server's mailboxes hold exactly the mail of
// the Maildir's folders: the same messages, each once.
func sameMail(t *testing.T, srv *imaptest.Server, root string) {
	t.Helper()
	for _, mb := range restoreMailboxes {
		got, want := mailOf(srv, mb), filesOf(t, root, mb)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the server has %d messages, the backup %d; they differ:\n%s", mb, len(got), len(want), listDiff(got, want))
		}
	}
}

// listDiff shows the lines only one of two sorted lists holds (as many
// times as it holds them more), at most 10 of each.
func listDiff(got, want []string) string {
	count := map[string]int{}
	for _, l := range got {
		count[l]++
	}
	for _, l := range want {
		count[l]--
	}
	var b strings.Builder
	extra, missing := 0, 0
	for _, l := range slices.Sorted(func(yield func(string) bool) {
		for l := range count {
			if !yield(l) {
				return
			}
		}
	}) {
		switch n := count[l]; {
		case n > 0 && extra < 10:
			fmt.Fprintf(&b, "  server only (x%d): %s\n", n, l)
			extra++
		case n < 0 && missing < 10:
			fmt.Fprintf(&b, "  backup only (x%d): %s\n", -n, l)
			missing++
		}
	}
	return b.String()
}

// writeBackup writes corpus messages straight into Maildir folders below
// root, as a backup holds them (LF line ends, flags in the name, seen
// mail in cur/, the rest in new/, mtime the date), n per mailbox.
func writeBackup(t *testing.T, root string, seed int64, counts map[string]int) {
	t.Helper()
	rels := map[string]string{}
	for _, mb := range restoreMailboxes {
		rel, err := maildir.EncodeName(strings.Split(mb, "/"))
		if err != nil {
			t.Fatal(err)
		}
		rels[mb] = rel
	}
	writeFolders(t, root, restoreMailboxes, rels, seed, counts)
}

// writeFolders writes a backup as writeBackup does, the messages of each
// of mailboxes into the folder rels gives it, relative to root.
func writeFolders(t *testing.T, root string, mailboxes []string, rels map[string]string, seed int64, counts map[string]int) {
	t.Helper()
	total := 0
	for _, n := range counts {
		total += n
	}
	corpus := imaptest.Corpus(imaptest.CorpusOptions{Seed: seed, Messages: total})
	for _, mb := range mailboxes {
		dir := filepath.Join(root, filepath.FromSlash(rels[mb]))
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range corpus[:counts[mb]] {
			flags := mail.NewFlags(m.Flags...).System()
			name, sub := maildir.NewKey(), "new"
			if flags.Has(mail.FlagSeen) {
				name, sub = name+":2,"+maildir.InfoFromFlags(flags), "cur"
			}
			p := filepath.Join(dir, sub, name)
			if err := os.WriteFile(p, bytes.ReplaceAll(m.Body, []byte("\r\n"), []byte("\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, m.Date, m.Date); err != nil {
				t.Fatal(err)
			}
		}
		corpus = corpus[counts[mb]:]
	}
}

// changingCommand finds, in a trace, a command that changes the server or
// fetches a body.
var changingCommand = regexp.MustCompile(`(?im)^C: \S+ (?:UID )?(APPEND|STORE|EXPUNGE|MOVE|COPY|CREATE|DELETE|RENAME)\b|^C: \S+ UID FETCH \S+ \(UID BODY\.PEEK\[\]`)

// TestRestoreToAnotherAccount: an account synced from one server is
// restored to another, empty one. The first-sync guard holds the large
// mailbox back until --force; then the new server holds what the old one
// did, a sync of either account has nothing to do, a deep verify finds
// nothing, and restoring again uploads nothing.
func TestRestoreToAnotherAccount(t *testing.T) {
	oldSrv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	newSrv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	corpus := imaptest.Corpus(imaptest.CorpusOptions{Seed: 11, Messages: 160})
	counts := map[string]int{"INBOX": 110, "Archive": 10, "Archive/2024": 15, "Sent": 10, "Друзья": 10, "Spaces in name": 5}
	for _, mb := range restoreMailboxes {
		oldSrv.CreateMailbox(mb)
		oldSrv.AppendMany(mb, corpus[:counts[mb]])
		corpus = corpus[counts[mb]:]
	}
	dir := t.TempDir()
	oldAcc, newAcc := newRestoreAccount(dir, "old", oldSrv), newRestoreAccount(dir, "new", newSrv)
	cfg := writeAccounts(t, dir, oldAcc, newAcc)
	if code, _, errs := runCLI(t, "--config", cfg, "sync", "old"); code != exitOK {
		t.Fatalf("sync old: exit %d: %s", code, errs)
	}

	code, out, errs := runCLI(t, "--config", cfg, "restore", "old", "--to", "new")
	if code != exitSafety || !strings.Contains(errs, "INBOX") || !strings.Contains(errs, "--force") {
		t.Fatalf("restore without --force: exit %d (want 4), stdout %q, stderr %q", code, out, errs)
	}
	if n := len(newSrv.Messages("INBOX")); n != 0 {
		t.Fatalf("the guard held INBOX back, yet the server has %d messages in it", n)
	}
	if got := mailOf(newSrv, "Sent"); len(got) != counts["Sent"] {
		t.Fatalf("the small mailboxes were not restored: Sent has %d messages", len(got))
	}
	code, out, errs = runCLI(t, "--config", cfg, "restore", "old", "--to", "new", "--force")
	if code != exitOK {
		t.Fatalf("restore --force: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if !strings.Contains(out, "110 uploaded") {
		t.Errorf("restore summary %q: want the 110 INBOX messages uploaded", out)
	}
	sameMail(t, newSrv, oldAcc.maildir)
	keywords := 0
	for _, mb := range restoreMailboxes {
		if got, want := mailOf(newSrv, mb), mailOf(oldSrv, mb); !slices.Equal(got, want) {
			t.Errorf("%s: the new server differs from the old one:\n%s", mb, listDiff(got, want))
		}
		got, want := keywordsOf(newSrv, mb), keywordsOf(oldSrv, mb)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the new server's keywords differ from the old one's:\n%s", mb, listDiff(got, want))
		}
		for _, l := range want {
			if strings.Contains(l, "$label") {
				keywords++
			}
		}
	}
	if keywords == 0 {
		t.Fatalf("the old server has no keywords: the test shows nothing")
	}

	// A sync of either account has nothing to do.
	for _, a := range []restoreSide{newAcc, oldAcc} {
		before := treeState(t, a.maildir)
		trace := filepath.Join(dir, "trace-"+a.name)
		code, _, errs := runCLI(t, "--config", cfg, "--trace", trace, "sync", a.name)
		if code != exitOK {
			t.Fatalf("sync %s after the restore: exit %d: %s", a.name, code, errs)
		}
		data, _ := os.ReadFile(trace)
		if m := changingCommand.FindString(string(data)); m != "" {
			t.Errorf("sync %s after the restore sent %q", a.name, m)
		}
		if after := treeState(t, a.maildir); after != before {
			t.Errorf("sync %s after the restore changed its Maildir", a.name)
		}
	}
	if code, out, errs := runCLI(t, "--config", cfg, "verify", "new", "--deep"); code != exitOK || !strings.Contains(out, "everything matches") {
		t.Errorf("verify new --deep: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// Restoring again finds everything there.
	before := mailOf(newSrv, "INBOX")
	code, out, errs = runCLI(t, "--config", cfg, "restore", "old", "--to", "new", "--force")
	if code != exitOK || !strings.Contains(out, "0 uploaded") {
		t.Errorf("second restore: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if after := mailOf(newSrv, "INBOX"); !slices.Equal(after, before) {
		t.Errorf("the second restore changed INBOX:\n%s", listDiff(after, before))
	}
}

// TestRestoreInPlace uploads a Maildir backup to its own account's empty
// server: the mailboxes are created, and a sync afterwards has nothing to
// do.
func TestRestoreInPlace(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	dir := t.TempDir()
	acc := newRestoreAccount(dir, "backup", srv)
	writeBackup(t, acc.maildir, 3, map[string]int{"INBOX": 20, "Archive": 3, "Archive/2024": 5, "Sent": 4, "Друзья": 6, "Spaces in name": 2})
	cfg := writeAccounts(t, dir, acc)
	code, out, errs := runCLI(t, "--config", cfg, "--json", "restore", "backup")
	if code != exitOK {
		t.Fatalf("restore: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if !strings.Contains(out, `"created": true`) {
		t.Errorf("restore --json: no mailbox created:\n%s", out)
	}
	sameMail(t, srv, acc.maildir)
	trace := filepath.Join(dir, "trace")
	if code, _, errs := runCLI(t, "--config", cfg, "--trace", trace, "sync", "backup"); code != exitOK {
		t.Fatalf("sync after the restore: exit %d: %s", code, errs)
	}
	data, _ := os.ReadFile(trace)
	if m := changingCommand.FindString(string(data)); m != "" {
		t.Errorf("sync after the restore sent %q", m)
	}
}

// TestRestoreRefusesStaleIndex: an account whose index describes another
// server is not restored in place (a sync would keep its files local as
// mail of a renumbered mailbox); nothing is created on the server.
func TestRestoreRefusesStaleIndex(t *testing.T) {
	oldSrv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	newSrv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	oldSrv.CreateMailbox("Sent")
	appendMsgs(oldSrv, "Sent", 3)
	dir := t.TempDir()
	acc := newRestoreAccount(dir, "acc", oldSrv)
	cfg := writeAccounts(t, dir, acc)
	if code, _, errs := runCLI(t, "--config", cfg, "sync", "acc"); code != exitOK {
		t.Fatalf("sync: exit %d: %s", code, errs)
	}
	acc.srv = newSrv
	cfg = writeAccounts(t, dir, acc)
	code, _, errs := runCLI(t, "--config", cfg, "restore", "acc")
	if code != exitSafety || !strings.Contains(errs, "Move the index away") {
		t.Fatalf("restore with another server's index: exit %d (want 4), stderr %q", code, errs)
	}
	if got := newSrv.Mailboxes(); !slices.Equal(got, []string{"INBOX"}) {
		t.Errorf("the refused restore created mailboxes: %v", got)
	}
}

// TestRestoreKilled restores a Maildir of several thousand messages into
// an empty Dovecot with the satchel binary, killed with SIGKILL in the
// middle of the work several times: in the end the server holds every
// message of the backup exactly once, with its flags and date, and a sync
// has nothing to do.
func TestRestoreKilled(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	bin := filepath.Join(t.TempDir(), "satchel")
	build := exec.Command("go", "build", "-o", bin, "github.com/satchel-mail/satchel/cmd/satchel")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build satchel: %v\n%s", err, out)
	}
	dir := t.TempDir()
	oldAcc, newAcc := newRestoreAccount(dir, "old", srv), newRestoreAccount(dir, "new", srv)
	counts := map[string]int{"INBOX": 1400, "Archive": 500, "Archive/2024": 600, "Sent": 300, "Друзья": 150, "Spaces in name": 50}
	if testing.Short() {
		counts = map[string]int{"INBOX": 400, "Archive": 100, "Archive/2024": 150, "Sent": 100, "Друзья": 40, "Spaces in name": 10}
	}
	writeBackup(t, oldAcc.maildir, 5, counts)
	cfg := writeAccounts(t, dir, oldAcc, newAcc)
	backup := treeState(t, oldAcc.maildir)

	total := 0
	for _, n := range counts {
		total += n
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	// Each kill comes after a number of uploads this run has logged (in
	// all, at most half of the messages); the first one before any, while
	// folders are created and linked.
	kills := []int{0, total * (5 + rng.IntN(10)) / 100, total * (2 + rng.IntN(6)) / 100, total * (10 + rng.IntN(10)) / 100}
	landed := 0
	for i, after := range kills {
		r := runKilled(t, bin, cfg, filepath.Join(dir, fmt.Sprintf("log-%d", i)), after, time.Duration(50+rng.IntN(250))*time.Millisecond)
		switch {
		case r.killed:
			landed++
			t.Logf("run %d: killed after %d uploads", i, r.uploads)
		case r.code != exitOK:
			t.Fatalf("run %d: exit %d; log:\n%s", i, r.code, r.tail)
		default:
			t.Logf("run %d: completed before the kill (%d uploads)", i, r.uploads)
		}
	}
	if landed < 3 {
		t.Fatalf("only %d of %d kills landed during the restore", landed, len(kills))
	}
	if r := runKilled(t, bin, cfg, filepath.Join(dir, "log-final"), -1, 0); r.code != exitOK {
		t.Fatalf("final run: exit %d; log:\n%s", r.code, r.tail)
	}
	completed, forgotten := 0, 0
	logs, _ := filepath.Glob(filepath.Join(dir, "log-*"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		completed += strings.Count(string(data), "completed an interrupted step")
		forgotten += strings.Count(string(data), "interrupted step did not happen")
	}
	t.Logf("interrupted uploads found on the server by the next run: %d; not: %d", completed, forgotten)
	sameMail(t, srv, oldAcc.maildir)
	if after := treeState(t, oldAcc.maildir); after != backup {
		t.Errorf("the restore changed the backup")
	}
	// The target's Maildir holds the same mail, and a sync of it has
	// nothing to do.
	for _, mb := range restoreMailboxes {
		if got, want := filesOf(t, newAcc.maildir, mb), filesOf(t, oldAcc.maildir, mb); !slices.Equal(got, want) {
			t.Errorf("%s: the target Maildir differs from the backup:\n%s", mb, listDiff(got, want))
		}
	}
	trace := filepath.Join(dir, "trace-sync")
	if out, err := exec.Command(bin, "--config", cfg, "--trace", trace, "sync", "new").CombinedOutput(); err != nil {
		t.Fatalf("sync after the restore: %v\n%s", err, out)
	}
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if m := changingCommand.FindString(string(data)); m != "" {
		t.Errorf("sync after the restore sent %q", m)
	}
}

// killedRun is one run of `satchel restore` under TestRestoreKilled.
type killedRun struct {
	code    int
	killed  bool
	uploads int
	tail    string
}

// runKilled runs `satchel -v restore old --to new --force` and kills it
// with SIGKILL once its log shows after uploads (after 0: once delay has
// passed; after -1: never).
func runKilled(t *testing.T, bin, cfg, logPath string, after int, delay time.Duration) killedRun {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--config", cfg, "-v", "restore", "old", "--to", "new", "--force")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "SATCHEL_CONFIG=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	deadline := time.After(5 * time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var r killedRun
wait:
	for {
		select {
		case <-done:
			break wait
		case <-deadline:
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			t.Fatalf("satchel restore did not finish in 5 minutes; log:\n%s", logTail(logPath))
		case <-tick.C:
			switch {
			case after < 0:
			case after == 0 && time.Since(start) >= delay,
				after > 0 && countUploads(logPath) >= after:
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				break wait
			}
		}
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	r.killed = ws.Signaled() && ws.Signal() == syscall.SIGKILL
	r.code = cmd.ProcessState.ExitCode()
	r.uploads = countUploads(logPath)
	r.tail = logTail(logPath)
	return r
}

// countUploads counts the uploads a -v log reports.
func countUploads(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "msg=uploaded") {
			n++
		}
	}
	return n
}

func logTail(path string) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// TestRestoreAcrossNamespaces: a backup of an account on a server
// without a namespace prefix, restored to a hosting-style server whose
// mailboxes live under "INBOX." with "." between levels, lands in the
// mailboxes a sync of the target would make of its folders
// (INBOX.Archive.2024), in the folders such a sync gives them (no
// prefix in folder names); a sync of the target afterwards has nothing to
// do, and restoring back the other way finds the same names.
func TestRestoreAcrossNamespaces(t *testing.T) {
	oldSrv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	newSrv := imaptest.StartDovecot(t, imaptest.DovecotOptions{Prefix: "INBOX.", Separator: "."})
	corpus := imaptest.Corpus(imaptest.CorpusOptions{Seed: 12, Messages: 40})
	boxes := map[string]int{"INBOX": 10, "Archive": 8, "Archive/2024": 12, "Sent": 10}
	for _, mb := range slices.Sorted(maps.Keys(boxes)) {
		oldSrv.CreateMailbox(mb)
		oldSrv.AppendMany(mb, corpus[:boxes[mb]])
		corpus = corpus[boxes[mb]:]
	}
	dir := t.TempDir()
	oldAcc, newAcc := newRestoreAccount(dir, "old", oldSrv), newRestoreAccount(dir, "new", newSrv)
	cfg := writeAccounts(t, dir, oldAcc, newAcc)
	if code, _, errs := runCLI(t, "--config", cfg, "sync", "old"); code != exitOK {
		t.Fatalf("sync old: exit %d: %s", code, errs)
	}
	if code, out, errs := runCLI(t, "--config", cfg, "restore", "old", "--to", "new"); code != exitOK {
		t.Fatalf("restore: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for mb := range boxes {
		if got, want := mailOf(newSrv, newSrv.Name(mb)), mailOf(oldSrv, mb); !slices.Equal(got, want) {
			t.Errorf("%s: %s differs from the old server's %s:\n%s", mb, newSrv.Name(mb), mb, listDiff(got, want))
		}
		if mb == "INBOX" {
			continue
		}
		if got := len(filesOf(t, newAcc.maildir, mb)); got != boxes[mb] {
			t.Errorf("folder %s of the new account holds %d files, want %d", mb, got, boxes[mb])
		}
	}
	if got := newSrv.Mailboxes(); slices.ContainsFunc(got, func(n string) bool { return n != "INBOX" && !strings.HasPrefix(n, "INBOX.") }) {
		t.Errorf("mailboxes made outside the personal namespace: %q", got)
	}
	trace := filepath.Join(dir, "trace-new")
	if code, _, errs := runCLI(t, "--config", cfg, "--trace", trace, "sync", "new"); code != exitOK {
		t.Fatalf("sync new after the restore: exit %d: %s", code, errs)
	}
	data, _ := os.ReadFile(trace)
	if m := changingCommand.FindString(string(data)); m != "" {
		t.Errorf("sync new after the restore sent %q", m)
	}
}
