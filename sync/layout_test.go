package sync_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// TestLayouts: nested and non-ASCII names, and a name with a ".", land
// where each layout puts them, with every message; a second sync does
// nothing.
func TestLayouts(t *testing.T) {
	layouts := []struct {
		layout maildir.Layout
		// want: mailbox -> folder relative to the root
		want map[string]string
	}{
		{maildir.Verbatim, map[string]string{"INBOX": "INBOX", "Work/Projects/Ünïcödé": "Work/Projects/Ünïcödé", "v1.2": "v1.2", "Друзья": "Друзья"}},
		{maildir.MaildirPlusPlus, map[string]string{"INBOX": "", "Work/Projects/Ünïcödé": ".Work.Projects.Ünïcödé", "v1.2": ".v1%2E2", "Друзья": ".Друзья"}},
	}
	for _, mode := range serverModes {
		for _, l := range layouts {
			t.Run(mode.name+"/"+l.layout.Name(), func(t *testing.T) {
				srv := mode.start(t)
				date := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
				for name := range l.want {
					if name != "INBOX" {
						srv.CreateMailbox(name)
					}
					srv.Append(name, []byte("Subject: "+name+"\r\n\r\nbody\r\n"), nil, date)
				}
				e := newEnv(t, srv)
				e.layout = l.layout
				res := e.mustSync()
				if down, _, _ := totals(res); down != len(l.want) {
					t.Fatalf("downloaded %d, want %d", down, len(l.want))
				}
				for name, rel := range l.want {
					if got := folderFiles(t, filepath.Join(e.root, filepath.FromSlash(rel))); got != 1 {
						t.Errorf("%s: %d files in %q, want 1", name, got, rel)
					}
				}
				if l.layout == maildir.MaildirPlusPlus {
					// No plain directory for the \Noselect-free parents:
					// every folder is directly below the root.
					if _, err := os.Stat(filepath.Join(e.root, "Work")); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("maildir++ created a nested directory Work: %v", err)
					}
				}
				before := e.snapshot()
				res = e.mustSync()
				if down, flags, removed := totals(res); down+flags+removed != 0 {
					t.Fatalf("second sync: %+v", res.Mailboxes)
				}
				if e.snapshot() != before {
					t.Fatal("second sync changed the Maildir")
				}
			})
		}
	}
}

// gmailLike starts a Dovecot whose mailboxes look like Gmail's: the sent
// mail and the all-mail archive under [Gmail], marked \Sent and \All.
func gmailLike(t *testing.T, caps string) *imaptest.Server {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: caps,
		SpecialUse: map[string]string{"[Gmail]/Sent Mail": `\Sent`, "[Gmail]/All Mail": `\All`}})
	date := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, name := range []string{"[Gmail]/Sent Mail", "[Gmail]/All Mail"} {
		srv.CreateMailbox(name)
		srv.Append(name, []byte("Subject: in "+name+"\r\n\r\nbody\r\n"), []string{`\Seen`}, date)
	}
	srv.Append("INBOX", []byte("Subject: hi\r\n\r\nbody\r\n"), nil, date)
	return srv
}

// TestSpecialUseMap: on a Gmail-like server, mailboxes.map renames the
// \Sent mailbox to Sent locally, and exclude: [\All] leaves the archive
// out, with and without SPECIAL-USE in the capabilities (LIST returns
// the attributes either way). A map that sends two mailboxes to one
// folder is an error naming both.
func TestSpecialUseMap(t *testing.T) {
	for _, mode := range []struct{ name, caps string }{
		{"dovecot", ""}, {"dovecot-condstore", imaptest.CapsCondStoreOnly}, {"dovecot-plain", imaptest.CapsPlain},
	} {
		t.Run(mode.name, func(t *testing.T) {
			srv := gmailLike(t, mode.caps)
			e := newEnv(t, srv)
			e.opts.Map = map[string]string{`\Sent`: "Sent"}
			e.opts.Exclude = []string{`\All`}
			res := e.mustSync()
			if down, _, _ := totals(res); down != 2 {
				t.Fatalf("downloaded %d, want 2 (INBOX and the sent mail): %+v", down, res.Mailboxes)
			}
			if got := folderFiles(t, filepath.Join(e.root, "Sent")); got != 1 {
				t.Errorf("Sent holds %d files, want 1", got)
			}
			for _, p := range []string{"[Gmail]/Sent Mail", "[Gmail]/All Mail"} {
				if _, err := os.Stat(filepath.Join(e.root, p, "cur")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists locally: %v", p, err)
				}
			}
			for _, m := range res.Mailboxes {
				if m.Name == "[Gmail]/Sent Mail" && m.Local != "Sent" {
					t.Errorf("[Gmail]/Sent Mail is synced into %q", m.Local)
				}
			}
			before := e.snapshot()
			res = e.mustSync()
			if down, flags, removed := totals(res); down+flags+removed != 0 || e.snapshot() != before {
				t.Fatalf("second sync was not a no-op: %+v", res.Mailboxes)
			}

			// A new local message in Sent goes to [Gmail]/Sent Mail.
			d := maildir.Dir{Path: filepath.Join(e.root, "Sent")}
			if _, err := d.Deliver(context.Background(), strings.NewReader("Subject: sent offline\n\nbody\n"), mail.NewFlags(`\Seen`), time.Now()); err != nil {
				t.Fatal(err)
			}
			e.mustSync()
			if got := len(srv.Messages("[Gmail]/Sent Mail")); got != 2 {
				t.Errorf("[Gmail]/Sent Mail has %d messages, want 2", got)
			}

			// Two mailboxes, one folder.
			e2 := newEnv(t, srv)
			e2.opts.Map = map[string]string{`\Sent`: "INBOX"}
			// The folder stays INBOX's; the other mailbox fails alone,
			// naming both, and the rest of the account syncs.
			res = e2.sync()
			if res.Err != nil {
				t.Fatalf("account failed: %v", res.Err)
			}
			var collided error
			for _, m := range res.Mailboxes {
				switch {
				case m.Name == "[Gmail]/Sent Mail":
					collided = m.Err
				case m.Err != nil:
					t.Errorf("%s failed: %v", m.Name, m.Err)
				}
			}
			if !errors.Is(collided, satsync.ErrNameCollision) {
				t.Fatalf("[Gmail]/Sent Mail: got %v, want ErrNameCollision", collided)
			}
			for _, n := range []string{`"INBOX"`, `"[Gmail]/Sent Mail"`} {
				if !strings.Contains(collided.Error(), n) {
					t.Errorf("error %q does not name %s", collided, n)
				}
			}
		})
	}
}

// TestLocalFolderCreated: a folder made in the Maildir (nested, non-ASCII)
// becomes a mailbox on the server, created and subscribed, and its mail
// is uploaded; a second sync does nothing. An excluded one is left alone.
func TestLocalFolderCreated(t *testing.T) {
	for _, mode := range serverModes {
		for _, layout := range []maildir.Layout{maildir.Verbatim, maildir.MaildirPlusPlus} {
			t.Run(mode.name+"/"+layout.Name(), func(t *testing.T) {
				srv := mode.start(t)
				srv.Append("INBOX", []byte("Subject: hi\r\n\r\nbody\r\n"), nil, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
				e := newEnv(t, srv)
				e.layout = layout
				e.opts.Exclude = []string{"Private*"}
				e.mustSync()
				root := maildir.Root{Dir: e.root, Layout: layout}
				for _, name := range []string{"Projekte/Größe", "Private"} {
					rel, err := root.Path(strings.Split(name, "/"))
					if err != nil {
						t.Fatal(err)
					}
					d := maildir.Dir{Path: filepath.Join(e.root, filepath.FromSlash(rel))}
					if err := d.Init(); err != nil {
						t.Fatal(err)
					}
					if _, err := d.Deliver(context.Background(), strings.NewReader("Subject: filed in "+name+"\n\nbody\n"), mail.NewFlags(`\Seen`), time.Now()); err != nil {
						t.Fatal(err)
					}
				}
				res := e.mustSync()
				created := 0
				for _, m := range res.Mailboxes {
					if m.Created {
						created++
						if m.Name != "Projekte/Größe" || m.Uploaded != 1 {
							t.Errorf("created %s, uploaded %d; want Projekte/Größe, 1", m.Name, m.Uploaded)
						}
					}
				}
				if created != 1 {
					t.Fatalf("%d mailboxes created, want 1: %+v", created, res.Mailboxes)
				}
				if got := len(srv.Messages("Projekte/Größe")); got != 1 {
					t.Fatalf("Projekte/Größe has %d messages, want 1", got)
				}
				if slices.Contains(srv.Mailboxes(), "Private") {
					t.Error("the excluded folder Private was created on the server")
				}
				if !strings.Contains(e.trace.String(), "SUBSCRIBE") {
					t.Error("the new mailbox was not subscribed")
				}
				res = e.mustSync()
				for _, m := range res.Mailboxes {
					if m.Created || m.Uploaded+m.Downloaded != 0 {
						t.Errorf("second sync: %+v", m)
					}
				}
			})
		}
	}
}
