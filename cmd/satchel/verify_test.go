package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/store"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

type verifyDoc struct {
	Accounts []jsonVerifyAccount `json:"accounts"`
}

func verifyJSON(t *testing.T, args ...string) (int, verifyDoc) {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"--json"}, args...)...)
	var doc verifyDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("verify --json: %v\nstdout %q\nstderr %q", err, out, errs)
	}
	return code, doc
}

// kinds lists "mailbox kind" for each difference of a verify document.
func kinds(doc verifyDoc) []string {
	var out []string
	for _, a := range doc.Accounts {
		for _, m := range a.Mailboxes {
			for _, d := range m.Differences {
				out = append(out, m.Name+" "+d.Kind)
			}
		}
		for _, d := range a.Differences {
			out = append(out, d.Kind)
		}
	}
	slices.Sort(out)
	return out
}

// fileHash describes a file's content.
func fileHash(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

// TestVerifyCLI: verify says so when a synced account matches and exits
// 0; it lists a file removed and a server flag changed and exits 1; only
// --deep finds a byte changed in a file; it changes nothing, not even the
// index, and stays out of an account another run holds.
func TestVerifyCLI(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.CreateMailbox("Archive")
	uids := appendMsgs(srv, "INBOX", 5)
	appendMsgs(srv, "Archive", 3)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "x", "")
	mustSyncCLI(t, "--config", a.config, "sync")

	code, out, errs := runCLI(t, "--config", a.config, "verify")
	if code != exitOK || !strings.Contains(out, "personal: 2 mailboxes, 8 messages compared: everything matches") {
		t.Fatalf("verify of a clean mirror: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// Damage: a file gone, a flag changed on the server, a byte flipped.
	if err := os.Remove(fileOf(t, a, "Archive", "Archive 1")); err != nil {
		t.Fatal(err)
	}
	srv.AddFlags("INBOX", uids[2], `\Flagged`)
	p := fileOf(t, a, "INBOX", "INBOX 4")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-4] ^= 0x20 // a letter of the body changes case
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	maildirBefore, indexBefore := treeState(t, a.maildir), fileHash(t, a.index)

	trace := filepath.Join(t.TempDir(), "trace")
	code, out, _ = runCLI(t, "--config", a.config, "--trace", trace, "verify")
	if code != exitFailure || !strings.Contains(out, "2 differences") ||
		!regexp.MustCompile(`(?m)^    missing-local UID \d+ \S+: the index has it in the Maildir, its file is gone$`).MatchString(out) ||
		!strings.Contains(out, `flags UID `+fmt.Sprint(uids[2])) {
		t.Fatalf("verify of a damaged mirror: exit %d (want 1), stdout:\n%s", code, out)
	}
	tr, _ := os.ReadFile(trace)
	if m := regexp.MustCompile(`(?im)^C: \S+ (SELECT|STORE|EXPUNGE|APPEND|UID FETCH \S+ \(UID BODY)`).Find(tr); m != nil {
		t.Errorf("verify sent %q", m)
	}

	code, doc := verifyJSON(t, "--config", a.config, "verify", "personal", "--deep")
	want := []string{"Archive missing-local", "INBOX content", "INBOX flags"}
	if code != exitFailure || !slices.Equal(kinds(doc), want) || doc.Accounts[0].OK || !doc.Accounts[0].Complete {
		t.Fatalf("verify --deep --json: exit %d, differences %v (want %v), %+v", code, kinds(doc), want, doc)
	}
	code, doc = verifyJSON(t, "--config", a.config, "verify", "--mailbox", "Archive")
	if code != exitFailure || !slices.Equal(kinds(doc), []string{"Archive missing-local"}) || len(doc.Accounts[0].Mailboxes) != 1 {
		t.Fatalf("verify --mailbox Archive: exit %d, %v", code, kinds(doc))
	}
	if treeState(t, a.maildir) != maildirBefore || fileHash(t, a.index) != indexBefore {
		t.Errorf("verify changed the Maildir or the index")
	}
	if _, err := os.Stat(a.index + ".verify-progress"); !os.IsNotExist(err) {
		t.Errorf("a completed deep verify left its progress file: %v", err)
	}

	l, err := store.Lock(context.Background(), a.index+".lock", false)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "--config", a.config, "verify")
	l.Unlock()
	if code != exitLocked || !strings.Contains(errs, "locked") {
		t.Errorf("verify of a locked account: exit %d (want 75), stderr %q", code, errs)
	}
}

// TestVerifyNeverSynced: an account without an index has no backup to
// verify; that is a failure, not a match.
func TestVerifyNeverSynced(t *testing.T) {
	srv := imaptest.StartMemory(t)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	code, _, errs := runCLI(t, "--config", a.config, "verify")
	if code != exitFailure || !strings.Contains(errs, "never synced") {
		t.Fatalf("exit %d (want 1), stderr %q", code, errs)
	}
	assertNothingWritten(t, a)
}
