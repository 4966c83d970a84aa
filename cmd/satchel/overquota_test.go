package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

// TestSyncOverQuota: a Gmail account over its bandwidth limit in the
// middle of its first sync, beside an account that syncs. The Gmail
// account stops with one line that says what happened and that the next
// run resumes, the other syncs, and the exit code is 5; the next run,
// the allowance back, completes with 0.
func TestSyncOverQuota(t *testing.T) {
	dir := t.TempDir()
	gm := imaptest.StartGmail(t, imaptest.GmailOptions{Limits: imaptest.GmailLimits{OverQuotaAfterBytes: 40 << 10}})
	for i := range 200 {
		body := fmt.Sprintf("Subject: m%d\r\nMessage-ID: <m%d@example.org>\r\n\r\n%s", i, i, strings.Repeat("line of text\r\n", 100))
		gm.GmailAdd(imaptest.GmailMessage{Body: []byte(body), Labels: []string{`\Inbox`}})
	}
	other := imaptest.StartMemory(t)
	other.Append("INBOX", []byte("Subject: x\r\n\r\nbody\r\n"), nil, time.Now())
	cfg := writeParallelConfig(t, dir, "", []parallelAccount{
		{name: "gmail", user: gm.User, password: gm.Password, port: gm.Port},
		{name: "other", user: other.User, password: other.Password, port: other.Port},
	})

	code, _, errs := runCLI(t, "--config", cfg, "sync")
	if code != exitOverQuota {
		t.Fatalf("exit %d, want %d\nstderr %s", code, exitOverQuota, errs)
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "satchel: gmail: stopped: the server says the account is over its bandwidth or command limit") ||
		!strings.Contains(lines[0], "the next sync resumes") {
		t.Fatalf("stderr %q, want one line for the account gmail", errs)
	}

	gm.GmailSetLimits(imaptest.GmailLimits{})
	if code, _, errs := runCLI(t, "--config", cfg, "sync"); code != exitOK {
		t.Fatalf("the next run: exit %d\nstderr %s", code, errs)
	}
}

// TestCheckGmail: check says how a Gmail account's labels are synced, and
// that label mode cannot work on a server that is not Gmail.
func TestCheckGmail(t *testing.T) {
	dir := t.TempDir()
	gm := imaptest.StartGmail(t, imaptest.GmailOptions{})
	other := imaptest.StartMemory(t)
	cfg := writeParallelConfig(t, dir, "", []parallelAccount{
		{name: "gmail", user: gm.User, password: gm.Password, port: gm.Port},
		{name: "other", user: other.User, password: other.Password, port: other.Port},
	})
	code, out, errs := runCLI(t, "--config", cfg, "check")
	if code != exitOK {
		t.Fatalf("exit %d\nstderr %s", code, errs)
	}
	if !strings.Contains(out, "gmail: labels as folders (gmail.labels)") || strings.Count(out, "gmail: labels") != 1 {
		t.Fatalf("check output lacks the Gmail line, or gives it twice:\n%s", out)
	}
	code, out, _ = runCLI(t, "--json", "--config", cfg, "check")
	if code != exitOK || !strings.Contains(out, `"gmail": "folders"`) || strings.Count(out, `"gmail": `) != 1 {
		t.Fatalf("check --json: exit %d\n%s", code, out)
	}
}
