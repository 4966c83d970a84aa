package sync_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// backdate sets the mtime of every directory below the Maildir root to a
// minute ago, as if time had passed since the last sync (a stamp younger
// than a second is not trusted).
func (e *env) backdate() {
	e.t.Helper()
	old := time.Now().Add(-time.Minute)
	filepath.Walk(e.root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			os.Chtimes(p, old, old)
		}
		return nil
	})
}

// clientCommands returns the commands satchel sent, from the trace.
func (e *env) clientCommands() []string {
	var out []string
	for _, line := range strings.Split(e.trace.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "C: "); ok {
			if f := strings.Fields(rest); len(f) > 1 {
				out = append(out, strings.ToUpper(strings.Join(f[1:], " ")))
			}
		}
	}
	return out
}

// noOpModes are the servers with CONDSTORE: Dovecot with and without
// QRESYNC, and Cyrus with both of its namespaces.
func noOpModes() []serverMode {
	return []serverMode{serverModes[0], serverModes[1], otherServer("cyrus"), otherServer("cyrus-inbox")}
}

// TestNoOpSelectsNothing: against a server with CONDSTORE, a sync with
// nothing changed on either side selects no mailbox and fetches nothing:
// one LIST with the statuses answers for the whole account.
func TestNoOpSelectsNothing(t *testing.T) {
	for _, mode := range noOpModes() {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			seed(t, srv, 60, 0)
			e := newEnv(t, srv)
			e.opts.Connections = 4
			e.mustSync()
			e.backdate()
			e.mustSync() // learns that both sides agree
			res := e.mustSync()
			cmds := e.clientCommands()
			for _, c := range cmds {
				for _, w := range []string{"SELECT", "EXAMINE", "FETCH", "STATUS ", "SEARCH"} {
					if strings.HasPrefix(c, w) || strings.Contains(c, " "+w) {
						t.Fatalf("no-op sync sent %q", c)
					}
				}
			}
			// Logging in and COMPRESS are the connection's, not the
			// sync's: the test Dovecot greets with PREAUTH and offers no
			// COMPRESS, Cyrus asks for a login and offers it. The rest
			// (ENABLE, the LIST with statuses, on Cyrus the MAILBOXID
			// LIST sent with it, NAMESPACE, LOGOUT) does not grow with
			// the number of mailboxes.
			var work []string
			for _, c := range cmds {
				if !strings.HasPrefix(c, "AUTHENTICATE ") && !strings.HasPrefix(c, "LOGIN ") && !strings.HasPrefix(c, "COMPRESS ") {
					work = append(work, c)
				}
			}
			if len(work) > 5 {
				t.Fatalf("no-op sync sent %d commands besides logging in, want at most 5: %q", len(work), cmds)
			}
			for _, m := range res.Mailboxes {
				if !m.Unchanged {
					t.Fatalf("%s was not left alone", m.Name)
				}
			}

			// One change on each side is noticed in that mailbox alone.
			srv.Append(srv.Name("Archive"), msg("late"), nil, day)
			e.writeLocal("Sent", []byte("Subject: new\n\nx\n"), mail.NewFlags())
			res = e.mustSync()
			for _, m := range res.Mailboxes {
				touched := m.Name == srv.Name("Archive") || m.Name == srv.Name("Sent")
				if m.Unchanged == touched {
					t.Fatalf("%s: unchanged=%v", m.Name, m.Unchanged)
				}
			}
			e.assertMirror(false)
		})
	}
}

// TestNoOpWithoutCondStore: without CONDSTORE equal counts prove nothing
// about flags: every mailbox is still scanned, and a flag change is found.
// On Dovecot without extensions and on Courier, which has no CONDSTORE.
func TestNoOpWithoutCondStore(t *testing.T) {
	for _, mode := range []serverMode{serverModes[2], otherServer("courier")} {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			srv.Append("INBOX", msg("a"), nil, day)
			e := newEnv(t, srv)
			e.mustSync()
			e.backdate()
			e.mustSync()
			m, _ := serverMsg(srv, "INBOX", "a")
			srv.AddFlags("INBOX", m.UID, `\Seen`)
			res := e.mustSync()
			if res.Mailboxes[0].Unchanged || res.Mailboxes[0].FlagsChanged != 1 {
				t.Fatalf("INBOX: %+v", res.Mailboxes[0])
			}
		})
	}
}

// TestSplitDownload: the first download of one big mailbox runs over
// several connections, by UID range, and the result is the same mirror.
func TestSplitDownload(t *testing.T) {
	srv := serverModes[0].start(t)
	msgs := imaptest.Corpus(imaptest.CorpusOptions{Seed: 3, Messages: 900})
	srv.AppendMany("INBOX", msgs)
	e := newEnv(t, srv)
	e.opts.Connections = 4
	res := e.mustSync()
	if res.Mailboxes[0].Downloaded != 900 {
		t.Fatalf("downloaded %d", res.Mailboxes[0].Downloaded)
	}
	selects := 0
	for _, c := range e.clientCommands() {
		if strings.HasPrefix(c, "SELECT INBOX") {
			selects++
		}
	}
	if selects < 3 {
		t.Fatalf("INBOX selected %d times: the download did not spread over connections", selects)
	}
	e.assertMirror(true)
}

// TestSecondSyncSelectsNothing: a first sync that only downloaded leaves
// each folder as the index records it, and says so: the sync after it
// selects nothing. A file added after it is still seen.
func TestSecondSyncSelectsNothing(t *testing.T) {
	for _, mode := range noOpModes() {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			seed(t, srv, 60, 0)
			e := newEnv(t, srv)
			e.opts.Connections = 4
			e.mustSync()
			res := e.mustSync()
			for _, c := range e.clientCommands() {
				if strings.HasPrefix(c, "SELECT") || strings.HasPrefix(c, "EXAMINE") || strings.Contains(c, "FETCH") {
					t.Fatalf("the sync after a first sync sent %q", c)
				}
			}
			for _, m := range res.Mailboxes {
				if !m.Unchanged {
					t.Fatalf("%s: not left alone after the first sync", m.Name)
				}
			}
			e.writeLocal("INBOX", msg("written right after"), mail.NewFlags(mail.FlagSeen))
			res = e.mustSync()
			up := 0
			for _, m := range res.Mailboxes {
				up += m.Uploaded
			}
			if up != 1 {
				t.Fatalf("uploaded %d after a local delivery, want 1", up)
			}
		})
	}
}
