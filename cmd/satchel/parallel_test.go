package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

// parallelAccount is one account of a several-account configuration:
// where its server listens, its password, and lines added to the
// account (at its indentation).
type parallelAccount struct {
	name, user, password, extra string
	port                        int
}

// writeParallelConfig writes a configuration of several accounts, in the order
// given, with top added at the top level, and returns its path.
func writeParallelConfig(t *testing.T, dir, top string, accounts []parallelAccount) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(top)
	b.WriteString("accounts:\n")
	for _, a := range accounts {
		fmt.Fprintf(&b, `  - name: %s
    imap:
      host: 127.0.0.1
      port: %d
      tls: none
      user: %s
      password_command: "printf '%%s\\n' '%s'"
    maildir: %s
    index: %s
%s`, a.name, a.port, a.user, a.password, filepath.Join(dir, "Mail", a.name), filepath.Join(dir, "state", a.name+".db"), a.extra)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// summaryOrder lists the accounts whose summary lines stdout holds, in
// the order printed.
func summaryOrder(stdout string) []string {
	var out []string
	for line := range strings.Lines(stdout) {
		if name, _, ok := strings.Cut(line, ": "); ok && strings.Contains(line, " mailboxes, ") {
			out = append(out, name)
		}
	}
	return out
}

// waitFor polls until cond holds, failing the test once ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			t.Errorf("gave up waiting: %s", what)
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// TestSyncAccountsAtOnce: three accounts on three servers, each
// server's first connection held until every account has connected: a
// sync of one account after another would wait forever for the second
// to connect. Then the first account is held until the other two have
// finished (their post hooks have run), and still its output comes
// first: output follows the configuration, not the finishing order.
func TestSyncAccountsAtOnce(t *testing.T) {
	dir := t.TempDir()
	names := []string{"first", "second", "third"}
	var proxies []*imaptest.Proxy
	var accounts []parallelAccount
	for i, name := range names {
		srv := imaptest.StartMemory(t)
		srv.Append("INBOX", []byte(fmt.Sprintf("Subject: %s\r\n\r\nbody %d\r\n", name, i)), nil, time.Now())
		p := imaptest.NewProxy(t, srv.Addr)
		p.Stall()
		proxies = append(proxies, p)
		port, _ := strconv.Atoi(p.Addr[strings.LastIndexByte(p.Addr, ':')+1:])
		accounts = append(accounts, parallelAccount{name: name, user: srv.User, password: srv.Password, port: port,
			extra: fmt.Sprintf("    hooks:\n      post: touch %s\n", filepath.Join(dir, name+".done"))})
	}
	cfg := writeParallelConfig(t, dir, "", accounts)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		if !waitFor(t, ctx, "every account connected", func() bool {
			return proxies[0].Conns() > 0 && proxies[1].Conns() > 0 && proxies[2].Conns() > 0
		}) {
			return
		}
		proxies[1].Heal()
		proxies[2].Heal()
		if !waitFor(t, ctx, "the second and third accounts synced", func() bool {
			return exists(filepath.Join(dir, "second.done")) && exists(filepath.Join(dir, "third.done"))
		}) {
			return
		}
		if exists(filepath.Join(dir, "first.done")) {
			t.Error("the first account finished while its server was held")
		}
		proxies[0].Heal()
	}()

	type ran struct {
		code        int
		out, stderr string
	}
	done := make(chan ran, 1)
	go func() {
		code, out, errs := runCLI(t, "--config", cfg, "-v", "sync")
		done <- ran{code, out, errs}
	}()
	var r ran
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("sync did not finish: the accounts did not connect at the same time")
	}
	if r.code != exitOK {
		t.Fatalf("exit %d\nstderr %s", r.code, r.stderr)
	}
	if got := summaryOrder(r.out); strings.Join(got, " ") != "first second third" {
		t.Errorf("summaries in the order %q, want the configuration's\n%s", got, r.out)
	}
	for _, name := range names {
		if files, _ := filepath.Glob(filepath.Join(dir, "Mail", name, "INBOX", "new", "*")); len(files) != 1 {
			t.Errorf("account %s: %d messages downloaded, want 1", name, len(files))
		}
	}
}

// TestSyncAccountsAtOnceWrongPassword: one account with a wrong password
// among three synced at once exits 3 as it did one after another, with
// its one error line, and the others' summaries in order.
func TestSyncAccountsAtOnceWrongPassword(t *testing.T) {
	dir := t.TempDir()
	var accounts []parallelAccount
	for _, name := range []string{"good1", "bad", "good2"} {
		srv := imaptest.StartMemory(t)
		srv.Append("INBOX", []byte("Subject: x\r\n\r\nbody\r\n"), nil, time.Now())
		pw := srv.Password
		if name == "bad" {
			pw = "not-" + pw
		}
		accounts = append(accounts, parallelAccount{name: name, user: srv.User, password: pw, port: srv.Port})
	}
	code, out, errs := runCLI(t, "--config", writeParallelConfig(t, dir, "", accounts), "-v", "sync")
	if code != exitPartial {
		t.Errorf("exit %d, want 3\nstderr %s", code, errs)
	}
	var lines []string
	for line := range strings.Lines(errs) {
		if strings.HasPrefix(line, "satchel: ") { // -v also logs each message
			lines = append(lines, line)
		}
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "satchel: bad: authentication failed") {
		t.Errorf("stderr %q, want one line for the account bad", errs)
	}
	if got := summaryOrder(out); strings.Join(got, " ") != "good1 good2" {
		t.Errorf("summaries %q, want good1 good2\n%s", got, out)
	}
}

// TestSyncAccountsOneAtATime: parallel_accounts: 1 syncs the accounts
// one after another, in order: each account's pre hook runs after the
// post hook of the one before.
func TestSyncAccountsOneAtATime(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "hooks.log")
	var accounts []parallelAccount
	for _, name := range []string{"one", "two", "three"} {
		srv := imaptest.StartMemory(t)
		srv.Append("INBOX", []byte("Subject: x\r\n\r\nbody\r\n"), nil, time.Now())
		accounts = append(accounts, parallelAccount{name: name, user: srv.User, password: srv.Password, port: srv.Port,
			extra: fmt.Sprintf("    hooks:\n      pre: echo pre $SATCHEL_ACCOUNT >> %[1]s\n      post: echo post $SATCHEL_ACCOUNT >> %[1]s\n", log)})
	}
	code, out, errs := runCLI(t, "--config", writeParallelConfig(t, dir, "parallel_accounts: 1\n", accounts), "-v", "sync")
	if code != exitOK {
		t.Fatalf("exit %d\nstderr %s", code, errs)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), "pre one\npost one\npre two\npost two\npre three\npost three\n"; got != want {
		t.Errorf("hooks ran\n%s\nwant\n%s", got, want)
	}
	if got := summaryOrder(out); strings.Join(got, " ") != "one two three" {
		t.Errorf("summaries %q, want one two three\n%s", got, out)
	}
}
