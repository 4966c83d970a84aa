package sync_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
)

// Mailboxes renamed as a whole, on the server by another client or in the
// Maildir by the user, on every server that differs in what a rename
// keeps: Dovecot (UIDVALIDITY kept), go-imap's memory server (inferiors
// stay behind), the servers of otherServers (a namespace prefix, RENAME
// that renumbers, UIDVALIDITY shared between mailboxes, MAILBOXID). And
// the stories that look like renames and are not, where nothing may be
// renamed or copied twice. Each story runs on one server from start to
// end: Courier takes seconds per RENAME and DELETE.

// renameModes are the servers the rename stories run on.
func renameModes() []serverMode {
	return append([]serverMode{serverModes[0], serverModes[3]}, otherServers...)
}

// movesInferiors reports whether the server's RENAME takes the mailboxes
// below along, as RFC 9051 §6.3.6 asks; go-imap's memory server does not.
func movesInferiors(mode string) bool { return mode != "memory" }

// fill appends one seen message per subject to a mailbox (by path).
func fill(e *env, path string, subjects []string) {
	e.srv.CreateMailbox(e.srv.Name(path))
	for _, s := range subjects {
		e.srv.Append(e.srv.Name(path), msg(s), []string{`\Seen`}, day)
	}
}

func subjectsOf(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s %02d", prefix, i))
	}
	return out
}

// assertAt checks that the mailbox at path (the server's spelling of it)
// and the folder at path hold exactly these subjects.
func assertAt(t *testing.T, e *env, path string, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	if got := serverSubjects(e, e.srv.Name(path)); !slices.Equal(got, want) {
		t.Fatalf("server %s holds %q, want %q", e.srv.Name(path), got, want)
	}
	if got := localSubjects(t, e.dir(path)); !slices.Equal(got, want) {
		t.Fatalf("folder %s holds %q, want %q", path, got, want)
	}
}

// assertGone checks that neither side, nor the index, has path any more.
func assertGone(t *testing.T, e *env, path string) {
	t.Helper()
	if slices.Contains(e.srv.Mailboxes(), e.srv.Name(path)) {
		t.Fatalf("server still has %s", e.srv.Name(path))
	}
	if _, err := os.Stat(e.dir(path).Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("folder %s still there: %v", path, err)
	}
	if _, ok, err := e.ix.Mailbox(context.Background(), e.srv.Name(path)); err != nil || ok {
		t.Fatalf("the index still knows %s (%v)", e.srv.Name(path), err)
	}
}

// assertNoTransfer checks that a sync moved no message over the network:
// nothing counted as downloaded or uploaded, no message body fetched, no
// APPEND sent.
func assertNoTransfer(t *testing.T, e *env, res satsync.Result, what string) {
	t.Helper()
	for _, m := range res.Mailboxes {
		if m.Downloaded != 0 || m.Uploaded != 0 {
			t.Fatalf("%s: %s: %d downloaded, %d uploaded", what, m.Name, m.Downloaded, m.Uploaded)
		}
	}
	for _, c := range e.clientCommands() {
		if strings.Contains(c, "BODY[]") || strings.Contains(c, "BODY.PEEK[]") || strings.HasPrefix(c, "APPEND") {
			t.Fatalf("%s: satchel sent %q", what, c)
		}
	}
}

// everywhere counts each subject over all the server's mailboxes and
// over all the Maildir's folders.
func everywhere(t *testing.T, e *env) (server, local map[string]int) {
	t.Helper()
	server, local = map[string]int{}, map[string]int{}
	for _, name := range e.srv.Mailboxes() {
		for _, s := range serverSubjects(e, name) {
			server[s]++
		}
	}
	root := maildir.Root{Dir: e.root, Layout: e.layout}
	folders, err := root.Folders()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range folders {
		for _, s := range localSubjects(t, root.Folder(f.Rel).Dir) {
			local[s]++
		}
	}
	return server, local
}

// assertOnce checks that no message is on either side more than once.
func assertOnce(t *testing.T, e *env) {
	t.Helper()
	server, local := everywhere(t, e)
	for side, counts := range map[string]map[string]int{"server": server, "Maildir": local} {
		for s, n := range counts {
			if n != 1 {
				t.Fatalf("%s holds %q %d times", side, s, n)
			}
		}
	}
}

// heldResult returns the result of the mailbox at path, which must have
// been held back as likely renamed to the mailbox at to.
func assertHeldAsRenamed(t *testing.T, e *env, res satsync.Result, path, to string) {
	t.Helper()
	for _, m := range res.Mailboxes {
		if m.Name != e.srv.Name(path) {
			continue
		}
		if !errors.Is(m.Safety, satsync.ErrLikelyRenamed) || m.Folder == nil || m.Folder.Action != satsync.FolderHeld {
			t.Fatalf("%s: safety %v, event %+v; want held as likely renamed", m.Name, m.Safety, m.Folder)
		}
		if !strings.Contains(m.Safety.Error(), fmt.Sprintf("%q", e.srv.Name(to))) {
			t.Fatalf("%s: held, but the reason does not name %s: %v", m.Name, e.srv.Name(to), m.Safety)
		}
		return
	}
	t.Fatalf("no result for %s in %+v", e.srv.Name(path), res.Mailboxes)
}

// TestMailboxRenamedWithChild: another client renames Work, which has
// Work/2025 below it, to Projects; the next sync moves both folders and
// transfers nothing. Then the user renames folder Projects to Archive in
// the mail reader; the next sync renames the mailboxes on the server and
// transfers nothing. Every message stays on each side exactly once.
func TestMailboxRenamedWithChild(t *testing.T) {
	for _, mode := range renameModes() {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, mode.start(t))
			ctx := context.Background()
			inferiors := movesInferiors(mode.name)
			work, sub := subjectsOf("work", 6), subjectsOf("this year", 2)
			fill(e, "Work", work)
			if inferiors {
				fill(e, "Work/2025", sub)
			}
			e.mustSync()
			workKeys := keysOf(t, e.dir("Work"))
			var subKeys []string
			if inferiors {
				subKeys = keysOf(t, e.dir("Work/2025"))
			}

			// Renamed on the server.
			e.srv.RenameMailbox(e.srv.Name("Work"), e.srv.Name("Projects"))
			res := e.mustSync()
			if ev := folderEvent(t, res, e.srv.Name("Projects")); ev.Change != satsync.RenamedOnServer || ev.Action != satsync.FolderRenamed || ev.From != e.srv.Name("Work") {
				t.Fatalf("server rename: event %+v", ev)
			}
			assertNoTransfer(t, e, res, "server rename")
			assertAt(t, e, "Projects", work)
			if got := keysOf(t, e.dir("Projects")); !slices.Equal(got, workKeys) {
				t.Fatalf("folder Projects holds %q, Work held %q", got, workKeys)
			}
			if inferiors {
				assertAt(t, e, "Projects/2025", sub)
				if got := keysOf(t, e.dir("Projects/2025")); !slices.Equal(got, subKeys) {
					t.Fatalf("folder Projects/2025 holds %q, Work/2025 held %q", got, subKeys)
				}
				assertGone(t, e, "Work/2025")
			}
			assertGone(t, e, "Work")
			assertOnce(t, e)
			res = e.mustSync()
			assertQuiet(t, res, "after the server rename")
			assertNoTransfer(t, e, res, "after the server rename")

			// Renamed locally.
			if err := os.Rename(e.dir("Projects").Path, e.dir("Archive").Path); err != nil {
				t.Fatal(err)
			}
			res = e.mustSync()
			if ev := folderEvent(t, res, e.srv.Name("Archive")); ev.Change != satsync.RenamedLocally || ev.Action != satsync.FolderRenamed || ev.From != e.srv.Name("Projects") {
				t.Fatalf("local rename: event %+v", ev)
			}
			assertNoTransfer(t, e, res, "local rename")
			assertAt(t, e, "Archive", work)
			if got := keysOf(t, e.dir("Archive")); !slices.Equal(got, workKeys) {
				t.Fatalf("folder Archive holds %q, Projects held %q", got, workKeys)
			}
			if inferiors {
				assertAt(t, e, "Archive/2025", sub)
				assertGone(t, e, "Projects/2025")
			}
			assertGone(t, e, "Projects")
			assertOnce(t, e)
			if mb, ok, err := e.ix.Mailbox(ctx, e.srv.Name("Archive")); err != nil || !ok || mb.LocalPath != "Archive" {
				t.Fatalf("index: %+v, %v, %v", mb, ok, err)
			}
			res = e.mustSync()
			assertQuiet(t, res, "after the local rename")
			assertNoTransfer(t, e, res, "after the local rename")
			assertOnce(t, e)
		})
	}
}
