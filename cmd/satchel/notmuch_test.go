package main

import (
	"fmt"
	"github.com/satchel-mail/satchel/sync/synctest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

// notmuchDB runs the real notmuch on a Maildir, configured as the README
// suggests (maildir.synchronize_flags=true), isolated from the user's.
type notmuchDB struct {
	t      *testing.T
	bin    string
	env    []string
	config string // the configuration file
}

func newNotmuch(t *testing.T, maildir string) *notmuchDB {
	t.Helper()
	nm := synctest.NewNotmuch(t, maildir, "the notmuch round trip")
	return &notmuchDB{t: t, bin: nm.Bin, config: nm.Config, env: append(os.Environ(), nm.Env...)}
}

func (n *notmuchDB) run(args ...string) string {
	n.t.Helper()
	cmd := exec.Command(n.bin, args...)
	cmd.Env = n.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		n.t.Fatalf("notmuch %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// tags returns the sorted tags of the message with Message-ID id.
func (n *notmuchDB) tags(id string) []string {
	n.t.Helper()
	out := strings.Fields(n.run("search", "--output=tags", "id:"+id))
	slices.Sort(out)
	return out
}

// TestNotmuchRoundTrip: tags set in notmuch (with synchronize_flags, each
// renames the file) reach the server as flags with the next sync, and
// flags set on the server become tags after a sync and notmuch new. The
// .notmuch directory in the Maildir root is no mailbox to satchel.
func TestNotmuchRoundTrip(t *testing.T) {
	srv := imaptest.StartMemory(t)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	nm := newNotmuch(t, a.maildir)
	ids := []string{"read@test", "flag@test", "reply@test", "draft@test", "fwd@test"}
	date := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range ids {
		body := fmt.Sprintf("Message-ID: <%s>\r\nFrom: a@example.org\r\nTo: me@example.org\r\nSubject: %d\r\nDate: Wed, 01 Jan 2025 00:00:00 +0000\r\n\r\nbody %d\r\n", id, i, i)
		srv.Append("INBOX", []byte(body), nil, date)
	}
	sync := func() {
		t.Helper()
		if code, _, errs := runCLI(t, "--config", a.config, "sync"); code != exitOK {
			t.Fatalf("sync: exit %d, stderr %q", code, errs)
		}
	}
	// serverFlags maps Message-ID to the server's flags.
	serverFlags := func() map[string][]string {
		t.Helper()
		out := map[string][]string{}
		for _, m := range srv.Messages("INBOX") {
			for _, id := range ids {
				if strings.Contains(string(m.Body), "<"+id+">") {
					out[id] = m.Flags
				}
			}
		}
		return out
	}
	uid := map[string]uint32{}
	for _, m := range srv.Messages("INBOX") {
		for _, id := range ids {
			if strings.Contains(string(m.Body), "<"+id+">") {
				uid[id] = m.UID
			}
		}
	}

	sync()
	// Configured as the README says, notmuch new has nothing to say: a
	// post hook running it from cron stays quiet.
	if out := nm.run("new", "--quiet"); out != "" {
		t.Errorf("notmuch new --quiet printed %q", out)
	}
	for _, id := range ids {
		if got := nm.tags(id); !slices.Equal(got, []string{"inbox", "unread"}) {
			t.Fatalf("tags of %s after the first notmuch new: %q", id, got)
		}
	}

	// notmuch side: each tag change renames the file (new/ to cur/, the
	// :2, flags); satchel sends the flags.
	nm.run("tag", "-unread", "--", "id:read@test")
	nm.run("tag", "+flagged", "--", "id:flag@test")
	nm.run("tag", "+replied", "--", "id:reply@test")
	nm.run("tag", "+draft", "--", "id:draft@test")
	nm.run("tag", "+passed", "--", "id:fwd@test")
	sync()
	want := map[string][]string{
		"read@test":  {`\Seen`},
		"flag@test":  {`\Flagged`},
		"reply@test": {`\Answered`},
		"draft@test": {`\Draft`},
		"fwd@test":   {"$Forwarded"},
	}
	got := serverFlags()
	for id, w := range want {
		if !slices.Equal(got[id], w) {
			t.Errorf("server flags of %s after notmuch tag and sync: %q, want %q", id, got[id], w)
		}
	}
	if boxes := srv.Mailboxes(); !slices.Equal(boxes, []string{"INBOX"}) {
		t.Errorf("server mailboxes %q: the .notmuch directory became a mailbox", boxes)
	}

	// Server side (a phone): read, flag and unflag; satchel renames the
	// files, and notmuch new turns the names into tags.
	srv.SetFlags("INBOX", uid["read@test"])                                    // marked unread again
	srv.SetFlags("INBOX", uid["flag@test"], `\Seen`)                           // read, unflagged
	srv.SetFlags("INBOX", uid["reply@test"], `\Answered`, `\Flagged`, `\Seen`) // read and flagged
	sync()
	if out := nm.run("new", "--quiet"); out != "" {
		t.Errorf("notmuch new --quiet printed %q", out)
	}
	for id, w := range map[string][]string{
		"read@test":  {"inbox", "unread"},
		"flag@test":  {"inbox"},
		"reply@test": {"flagged", "inbox", "replied"},
		"draft@test": {"draft", "inbox", "unread"},
		"fwd@test":   {"inbox", "passed", "unread"},
	} {
		if got := nm.tags(id); !slices.Equal(got, w) {
			t.Errorf("tags of %s after a server change, sync and notmuch new: %q, want %q", id, got, w)
		}
	}
}
