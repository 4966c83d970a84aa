package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/tagmap"
)

// TestNotmuchTagSync: with notmuch.enabled (the database's configuration
// named by notmuch.config), a tag added in notmuch reaches the server as
// a keyword through satchel sync; a keyword added on the server after
// that sync is a difference to satchel verify, text and JSON, and in
// the plan of sync --dry-run; the next sync tags the message, and
// verify finds nothing.
func TestNotmuchTagSync(t *testing.T) {
	srv := imaptest.StartMemory(t)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	nm := newNotmuch(t, a.maildir)
	date := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var uid uint32
	for i, id := range []string{"tagged@test", "other@test"} {
		body := fmt.Sprintf("Message-ID: <%s>\r\nFrom: a@example.org\r\nSubject: %d\r\nDate: Wed, 01 Jan 2025 00:00:00 +0000\r\n\r\nbody %d\r\n", id, i, i)
		u := srv.Append("INBOX", []byte(body), nil, date)
		if i == 0 {
			uid = u
		}
	}
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		code, out, errs := runCLI(t, append([]string{"--config", a.config}, args...)...)
		if code != want {
			t.Fatalf("satchel %s: exit %d, want %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, want, out, errs)
		}
		return out, errs
	}
	run(exitOK, "sync")
	nm.run("new", "--quiet")
	// notmuch.config names the database: the test's environment has no
	// NOTMUCH_CONFIG, so only the key can lead satchel there.
	f, err := os.OpenFile(a.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "    notmuch:\n      enabled: true\n      config: %s\n", nm.config)
	f.Close()

	nm.run("tag", "+todo", "--", "id:tagged@test")
	run(exitOK, "sync")
	keywords := func() []string {
		t.Helper()
		for _, m := range srv.Messages("INBOX") {
			if m.UID == uid {
				return m.Flags
			}
		}
		t.Fatalf("UID %d is gone from the server", uid)
		return nil
	}
	if got := keywords(); !slices.Contains(got, "todo") {
		t.Fatalf("server flags after notmuch tag +todo and sync: %q, want the keyword todo", got)
	}
	if out, _ := run(exitOK, "verify"); !strings.Contains(out, "everything matches") {
		t.Errorf("verify after the tag sync:\n%s", out)
	}

	// Between syncs, a client sets a keyword on the server.
	srv.AddFlags("INBOX", uid, "urgent")
	out, _ := run(exitFailure, "verify")
	if !strings.Contains(out, "notmuch tags: 1 message") || !strings.Contains(out, `only on the server ["urgent"]`) || !strings.Contains(out, "id:tagged@test") {
		t.Errorf("verify after a keyword set on the server does not report the tag difference:\n%s", out)
	}
	out, _ = run(exitFailure, "--json", "verify")
	var doc struct {
		Accounts []struct {
			OK   bool `json:"ok"`
			Tags []struct {
				Mailbox      string   `json:"mailbox"`
				UID          uint32   `json:"uid"`
				ID           string   `json:"message_id"`
				OnlyTags     []string `json:"only_tags"`
				OnlyKeywords []string `json:"only_keywords"`
			} `json:"tags"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Accounts) != 1 {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	if acc := doc.Accounts[0]; acc.OK || len(acc.Tags) != 1 || acc.Tags[0].Mailbox != "INBOX" || acc.Tags[0].UID != uid ||
		acc.Tags[0].ID != "tagged@test" || !slices.Equal(acc.Tags[0].OnlyKeywords, []string{"urgent"}) || len(acc.Tags[0].OnlyTags) != 0 {
		t.Errorf("verify --json tags: %+v", acc)
	}
	if out, _ := run(exitOK, "sync", "--dry-run"); !strings.Contains(out, "tags: 1 to add") || !strings.Contains(out, "notmuch tag +urgent -- id:tagged@test") {
		t.Errorf("sync --dry-run does not plan the tag:\n%s", out)
	}
	if got := nm.tags("tagged@test"); slices.Contains(got, "urgent") {
		t.Errorf("sync --dry-run tagged the message: %q", got)
	}
	run(exitOK, "sync")
	if got := nm.tags("tagged@test"); !slices.Contains(got, "urgent") || !slices.Contains(got, "todo") {
		t.Errorf("tags after the sync: %q, want todo and urgent", got)
	}
	if out, _ := run(exitOK, "verify"); !strings.Contains(out, "everything matches") {
		t.Errorf("verify after the sync:\n%s", out)
	}
}

// TestNotmuchTagSyncFailureIsPartial: a tag sync that cannot run (the
// configuration names no notmuch database) fails after the mail was
// synced: exit 3 and one line saying so.
func TestNotmuchTagSyncFailureIsPartial(t *testing.T) {
	srv := imaptest.StartMemory(t)
	srv.Append("INBOX", []byte("Message-ID: <a@test>\r\nSubject: a\r\n\r\nbody\r\n"), nil, time.Now())
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	f, err := os.OpenFile(a.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "    notmuch:\n      enabled: true\n      config: %s/missing-notmuch-config\n", a.dir)
	f.Close()
	code, _, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitPartial || !strings.Contains(errs, "satchel: personal: notmuch tags: ") {
		t.Errorf("sync with a missing notmuch configuration: exit %d, want 3\nstderr %s", code, errs)
	}
	if n := len(srv.Messages("INBOX")); n != 1 || !exists(a.maildir+"/INBOX") {
		t.Errorf("the mail was not synced beside the failed tag sync")
	}
}

// TestNotmuchKeywordsChecked: a bad notmuch.keywords pair is a
// configuration error naming its entry and line, whether notmuch is
// enabled or not, and a pair clashing with the built-in one names the
// map.
func TestNotmuchKeywordsChecked(t *testing.T) {
	for _, tt := range []struct {
		name, extra, want string
	}{
		{"not a keyword", "    notmuch:\n      keywords:\n        \"to do\": todo\n",
			`config.yaml:13: accounts[0].notmuch.keywords["to do"]: keyword "to do": not an IMAP keyword`},
		{"tag twice", "    notmuch:\n      enabled: true\n      keywords: {$label1: spam, $Spam: spam}\n",
			`config.yaml:13: accounts[0].notmuch.keywords: tag "spam": mapped to two keywords`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := writeConfig(t, "127.0.0.1", 1, "u", "p", "")
			f, err := os.OpenFile(a.config, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tt.extra)
			f.Close()
			code, _, errs := runCLI(t, "--config", a.config, "sync")
			if code != exitUsage || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, want 2; stderr %q, want %q", code, errs, tt.want)
			}
		})
	}
}

// TestNotmuchKeywordsOverDefaults: the file's pairs replace a built-in
// pair with the same keyword or tag and keep the others.
func TestNotmuchKeywordsOverDefaults(t *testing.T) {
	for _, tt := range []struct {
		file, want map[string]string
	}{
		{nil, map[string]string{"$Junk": "spam"}},
		{map[string]string{"$label1": "important"}, map[string]string{"$Junk": "spam", "$label1": "important"}},
		{map[string]string{"$junk": "junk"}, map[string]string{"$junk": "junk"}},
		{map[string]string{"Spam": "spam"}, map[string]string{"Spam": "spam"}},
	} {
		got := tagKeywords(config.Notmuch{Keywords: tt.file})
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("tagKeywords(%v) = %v, want %v", tt.file, got, tt.want)
		}
	}
}

// TestDefaultLocalTags: the configuration's default local_tags, which
// config.example.yaml shows, are the tag mapping's.
func TestDefaultLocalTags(t *testing.T) {
	if !slices.Equal(config.DefaultLocalTags, tagmap.DefaultLocal) {
		t.Errorf("config.DefaultLocalTags %q, tagmap.DefaultLocal %q", config.DefaultLocalTags, tagmap.DefaultLocal)
	}
}
