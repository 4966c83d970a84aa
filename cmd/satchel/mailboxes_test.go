package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

func TestMailboxesCommand(t *testing.T) {
	srv := imaptest.StartMemory(t)
	for _, name := range []string{"Archive/2024", "It's mine", "Work"} {
		srv.CreateMailbox(name)
	}
	srv.Append("INBOX", []byte("Subject: hi\r\n\r\nhello\r\n"), nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")

	code, out, errs := runCLI(t, "--config", a.config, "mailboxes", "personal")
	if code != exitFailure || out != "" || !strings.Contains(errs, "personal: not synced yet") || !strings.Contains(errs, "run satchel sync personal") {
		t.Fatalf("before the first sync: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if exists(a.index) {
		t.Fatal("mailboxes created the index")
	}

	if code, _, errs := runCLI(t, "--config", a.config, "sync"); code != exitOK {
		t.Fatalf("sync: exit %d, stderr %q", code, errs)
	}
	code, out, errs = runCLI(t, "--config", a.config, "mailboxes", "personal")
	if code != exitOK {
		t.Fatalf("mailboxes: exit %d, stderr %q", code, errs)
	}
	m := a.maildir
	want := "mailboxes '" + m + "/INBOX' '" + m + "/Archive' '" + m + "/Archive/2024' '" + m + `/It'\''s mine' '` + m + "/Work'\n"
	if out != want {
		t.Errorf("mailboxes printed\n%s\nwant\n%s", out, want)
	}
	// The words are what a shell makes of them too: muttrc's quoting
	// follows sh's for single quotes.
	words, err := exec.Command("/bin/sh", "-c", `for w in `+strings.TrimSuffix(strings.TrimPrefix(out, "mailboxes "), "\n")+`; do printf '%s\n' "$w"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	wantWords := []string{"INBOX", "Archive", "Archive/2024", "It's mine", "Work"}
	for i, w := range strings.Split(strings.TrimSuffix(string(words), "\n"), "\n") {
		if i >= len(wantWords) || w != filepath.Join(m, wantWords[i]) {
			t.Errorf("word %d is %q", i, w)
		}
	}

	// A folder removed by hand is left out; so is one never created.
	if err := os.RemoveAll(filepath.Join(m, "Work")); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "--config", a.config, "--json", "mailboxes")
	var doc struct {
		Accounts []mailboxesAccount `json:"accounts"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Accounts) != 1 {
		t.Fatalf("--json: exit %d, %q", code, out)
	}
	if got := doc.Accounts[0].Folders; len(got) != 4 || got[0] != filepath.Join(m, "INBOX") || got[3] != filepath.Join(m, "It's mine") {
		t.Errorf("--json folders %q", got)
	}
}

func TestMuttQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/home/me/Mail/INBOX":          "'/home/me/Mail/INBOX'",
		"/m/It's":                      `'/m/It'\''s'`,
		`/m/$HOME and "x" \ ` + "`ls`": `'/m/$HOME and "x" \ ` + "`ls`'",
	} {
		if got := muttQuote(in); got != want {
			t.Errorf("muttQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
