package sync_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

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

// fill appends one seen message per subject to a mailbox (by path), a
// minute apart: the same subjects make the same messages (Message-ID,
// size, INTERNALDATE), as a copy or a move by another client does.
func fill(e *env, path string, subjects []string) {
	e.srv.CreateMailbox(e.srv.Name(path))
	// Courier refuses APPEND to the mailbox the harness's connection has
	// EXAMINEd (read-only); looking at INBOX leaves it.
	e.srv.Messages("INBOX")
	for i, s := range subjects {
		e.srv.Append(e.srv.Name(path), msg(s), []string{`\Seen`}, day.Add(time.Duration(i)*time.Minute))
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
// transfers nothing. Then both at once, to different names: the folder's
// name wins. Every message stays on each side exactly once.
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
			child, _, err := e.ix.Mailbox(ctx, e.srv.Name("Projects/2025"))
			if err != nil {
				t.Fatal(err)
			}
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
				// The server moved it with its parent (RFC 9051
				// §6.3.6): renamed, its rows kept, not forgotten.
				if ev := folderEvent(t, res, e.srv.Name("Archive/2025")); ev.Change != satsync.RenamedLocally || ev.From != e.srv.Name("Projects/2025") {
					t.Fatalf("local rename, Archive/2025: event %+v", ev)
				}
				if mb, ok, err := e.ix.Mailbox(ctx, e.srv.Name("Archive/2025")); err != nil || !ok || mb.ID != child.ID || mb.LocalPath != "Archive/2025" {
					t.Fatalf("index: Archive/2025 %+v (%v, %v), Projects/2025 was %+v", mb, ok, err, child)
				}
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

			// Renamed on both sides at once: another client renames
			// Archive to Lists while the user renames folder Archive to
			// Done. The server's rename is followed, then the folder's
			// name wins; nothing is transferred.
			e.srv.RenameMailbox(e.srv.Name("Archive"), e.srv.Name("Lists"))
			if err := os.Rename(e.dir("Archive").Path, e.dir("Done").Path); err != nil {
				t.Fatal(err)
			}
			res = e.mustSync()
			assertNoTransfer(t, e, res, "renamed on both sides")
			assertAt(t, e, "Done", work)
			if inferiors {
				assertAt(t, e, "Done/2025", sub)
				assertGone(t, e, "Lists/2025")
			}
			assertGone(t, e, "Lists")
			assertGone(t, e, "Archive")
			assertOnce(t, e)
			assertQuiet(t, e.mustSync(), "after the renames on both sides")
		})
	}
}

// assertCopies checks how many times each of these messages is on the
// server (over all mailboxes) and in the Maildir (over all folders).
func assertCopies(t *testing.T, e *env, subjects []string, server, local int) {
	t.Helper()
	s, l := everywhere(t, e)
	for _, subj := range subjects {
		if s[subj] != server || l[subj] != local {
			t.Fatalf("%q is %d times on the server and %d times in the Maildir, want %d and %d", subj, s[subj], l[subj], server, local)
		}
	}
}

// TestRenameLookalikes: what looks like a rename and is not proven one
// renames nothing and copies nothing. (a) A mailbox too small to be
// matched by content, renamed on the server, is held back; following the
// advice (move the folder) pairs it with the renamed mailbox without a
// transfer, --force re-creates it beside the renamed one. (b) A mailbox
// whose messages are copied into two new ones and then deleted is
// renamed to neither. (c) A mailbox deleted in webmail after its mail
// went to Trash, a mailbox the index knows, is no rename and is not held
// back: it is re-created with sync.remove_folders false, and with true
// its folder goes and Trash holds its mail once.
func TestRenameLookalikes(t *testing.T) {
	for _, mode := range renameModes() {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, mode.start(t))
			tiny1, tiny2 := subjectsOf("tiny a", 3), subjectsOf("tiny b", 3)
			dup := subjectsOf("dup", 6)
			old, old2 := subjectsOf("old", 6), subjectsOf("old two", 6)
			e.srv.CreateMailbox(e.srv.Name("Trash"))
			fill(e, "Tiny1", tiny1)
			fill(e, "Tiny2", tiny2)
			fill(e, "Dup", dup)
			fill(e, "Old", old)
			fill(e, "Old2", old2)
			e.mustSync()

			// (a) Too small to match by content: held back, and the
			// renamed mailbox is not downloaded beside the folder.
			// Where the server gives MAILBOXIDs (Cyrus), it is no
			// lookalike: the rename is proven whatever the size.
			mb, _, err := e.ix.Mailbox(context.Background(), e.srv.Name("Tiny1"))
			if err != nil {
				t.Fatal(err)
			}
			e.srv.RenameMailbox(e.srv.Name("Tiny1"), e.srv.Name("Small1"))
			e.srv.RenameMailbox(e.srv.Name("Tiny2"), e.srv.Name("Small2"))
			res := e.mustSync()
			if mb.MailboxID != "" {
				for _, n := range []string{"1", "2"} {
					if ev := folderEvent(t, res, e.srv.Name("Small"+n)); ev.Change != satsync.RenamedOnServer || ev.From != e.srv.Name("Tiny"+n) {
						t.Fatalf("Small%s: event %+v", n, ev)
					}
					assertGone(t, e, "Tiny"+n)
				}
				assertNoTransfer(t, e, res, "renamed by MAILBOXID")
				assertAt(t, e, "Small1", tiny1)
				assertAt(t, e, "Small2", tiny2)
				assertCopies(t, e, append(tiny1, tiny2...), 1, 1)
			} else {
				heldTiny(t, e, res, tiny1, tiny2)
			}

			// (b) Copied into two new mailboxes, then deleted: neither
			// is Dup renamed.
			fill(e, "Dup1", dup)
			fill(e, "Dup2", dup)
			e.srv.DeleteMailbox(e.srv.Name("Dup"))
			res = e.mustSync()
			for _, m := range res.Mailboxes {
				if m.Folder != nil && m.Folder.Change == satsync.RenamedOnServer {
					t.Fatalf("%s taken for renamed: %+v", m.Name, m.Folder)
				}
			}
			held := "Dup1"
			if err := heldSafety(res, e.srv.Name("Dup")); err != nil && strings.Contains(err.Error(), fmt.Sprintf("%q", e.srv.Name("Dup2"))) {
				held = "Dup2"
			}
			assertHeldAsRenamed(t, e, res, "Dup", held)
			if slices.Contains(e.srv.Mailboxes(), e.srv.Name("Dup")) {
				t.Fatal("held, yet Dup re-created on the server")
			}
			if got := localSubjects(t, e.dir("Dup")); !slices.Equal(got, dup) {
				t.Fatalf("held, yet folder Dup holds %q", got)
			}
			// The server holds each message twice (Dup1, Dup2); the
			// Maildir too: folder Dup, and the new mailbox not named in
			// the held result.
			assertCopies(t, e, dup, 2, 2)

			// (c) Moved to Trash in webmail, then deleted.
			fill(e, "Trash", old)
			e.srv.Expunge(e.srv.Name("Old"), uids(e, "Old")...)
			e.srv.DeleteMailbox(e.srv.Name("Old"))
			res = e.mustSync()
			if err := heldSafety(res, e.srv.Name("Old")); err != nil {
				t.Fatalf("Old held back: %v", err)
			}
			if ev := folderEvent(t, res, e.srv.Name("Old")); ev.Change != satsync.DeletedOnServer || ev.Action != satsync.FolderRecreated {
				t.Fatalf("Old: event %+v", ev)
			}
			// sync.remove_folders false: the folder's mail goes back to
			// the server, Trash's comes down; each message in both.
			assertAt(t, e, "Old", old)
			assertAt(t, e, "Trash", old)
			assertCopies(t, e, old, 2, 2)
			assertQuiet(t, e.mustSync(), "after Old re-created")

			e.opts.RemoveFolders = true
			fill(e, "Trash", old2)
			e.srv.DeleteMailbox(e.srv.Name("Old2"))
			res = e.mustSync()
			if err := heldSafety(res, e.srv.Name("Old2")); err != nil {
				t.Fatalf("Old2 held back: %v", err)
			}
			if ev := folderEvent(t, res, e.srv.Name("Old2")); ev.Change != satsync.DeletedOnServer || ev.Action != satsync.FolderDeleted {
				t.Fatalf("Old2: event %+v", ev)
			}
			// Its files follow its messages into Trash: nothing is
			// downloaded again.
			assertNoTransfer(t, e, res, "Old2 deleted")
			assertGone(t, e, "Old2")
			assertAt(t, e, "Trash", append(slices.Clone(old), old2...))
			assertCopies(t, e, old2, 1, 1)
			assertQuiet(t, e.mustSync(), "after Old2 deleted")
		})
	}
}

// heldSafety returns the Safety of a mailbox's result, nil if none.
func heldSafety(res satsync.Result, name string) error {
	for _, m := range res.Mailboxes {
		if m.Name == name && m.Safety != nil {
			return m.Safety
		}
	}
	return nil
}

// uids lists the UIDs of the mailbox at path on the server.
func uids(e *env, path string) []uint32 {
	var out []uint32
	for _, m := range e.srv.Messages(e.srv.Name(path)) {
		out = append(out, m.UID)
	}
	return out
}

// heldTiny is the story of two mailboxes too small to be matched by
// content, renamed on the server to Small1 and Small2: both held back,
// with the new mailboxes. The user moves folder Tiny1 to Small1, as the
// held result advises: paired without a transfer. --force takes Tiny2
// and Small2 for two mailboxes: Tiny2 comes back on the server with its
// folder's mail, Small2 is downloaded; each message is then in both.
func heldTiny(t *testing.T, e *env, res satsync.Result, tiny1, tiny2 []string) {
	t.Helper()
	assertHeldAsRenamed(t, e, res, "Tiny1", "Small1")
	assertHeldAsRenamed(t, e, res, "Tiny2", "Small2")
	assertNoTransfer(t, e, res, "held")
	for _, m := range res.Mailboxes {
		if m.Folder != nil && m.Folder.Change == satsync.RenamedOnServer {
			t.Fatalf("%s taken for renamed: %+v", m.Name, m.Folder)
		}
	}
	if boxes := e.srv.Mailboxes(); slices.Contains(boxes, e.srv.Name("Tiny1")) || slices.Contains(boxes, e.srv.Name("Tiny2")) {
		t.Fatalf("held, yet re-created on the server: %q", boxes)
	}
	assertCopies(t, e, append(tiny1, tiny2...), 1, 1)
	if got := localSubjects(t, e.dir("Tiny1")); !slices.Equal(got, tiny1) {
		t.Fatalf("held, yet folder Tiny1 holds %q", got)
	}
	// The user does as the held result says for Tiny1.
	if err := os.Rename(e.dir("Tiny1").Path, e.dir("Small1").Path); err != nil {
		t.Fatal(err)
	}
	res = e.mustSync()
	assertNoTransfer(t, e, res, "folder moved as advised")
	assertHeldAsRenamed(t, e, res, "Tiny2", "Small2")
	assertAt(t, e, "Small1", tiny1)
	assertGone(t, e, "Tiny1")
	assertCopies(t, e, append(tiny1, tiny2...), 1, 1)
	e.opts.Force = true
	res = e.mustSync()
	e.opts.Force = false
	if ev := folderEvent(t, res, e.srv.Name("Tiny2")); ev.Change != satsync.DeletedOnServer || ev.Action != satsync.FolderRecreated {
		t.Fatalf("with --force: event %+v", ev)
	}
	assertAt(t, e, "Tiny2", tiny2)
	assertAt(t, e, "Small2", tiny2)
	assertCopies(t, e, tiny2, 2, 2)
}

// TestRenamedByMailboxID: a mailbox renamed on the server while much of
// its content changed (half its messages expunged, as many new ones) is
// no longer matched by content; where the server has OBJECTID (Cyrus),
// its MAILBOXID (RFC 8474 §4.1: kept across RENAME) still follows it:
// the folder moves, the new messages are downloaded and the expunged
// ones removed, nothing else. Dovecot 2.3, without OBJECTID, holds it
// back as likely renamed instead.
func TestRenamedByMailboxID(t *testing.T) {
	var modes []serverMode
	for _, m := range renameModes() {
		if m.name == "dovecot" || strings.HasPrefix(m.name, "cyrus") {
			modes = append(modes, m)
		}
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, mode.start(t))
			ctx := context.Background()
			objectID := slices.Contains(e.srv.Capabilities(), "OBJECTID")
			work, news := subjectsOf("work", 10), subjectsOf("new", 5)
			fill(e, "Work", work)
			e.mustSync()
			mb, ok, err := e.ix.Mailbox(ctx, e.srv.Name("Work"))
			if err != nil || !ok {
				t.Fatalf("Work not in the index: %v", err)
			}
			if (mb.MailboxID != "") != objectID {
				t.Fatalf("OBJECTID advertised: %v; MAILBOXID recorded: %q", objectID, mb.MailboxID)
			}
			keep := work[5:]
			keepKeys := map[string]bool{}
			for _, s := range keep {
				keepKeys[e.keyOf("Work", s)] = true
			}

			e.srv.Expunge(e.srv.Name("Work"), uids(e, "Work")[:5]...)
			fill(e, "Work", news)
			e.srv.RenameMailbox(e.srv.Name("Work"), e.srv.Name("Projects"))
			res := e.mustSync()
			if !objectID {
				assertHeldAsRenamed(t, e, res, "Work", "Projects")
				assertNoTransfer(t, e, res, "held")
				if got := localSubjects(t, e.dir("Work")); !slices.Equal(got, work) {
					t.Fatalf("held, yet folder Work holds %q", got)
				}
				return
			}
			ev := folderEvent(t, res, e.srv.Name("Projects"))
			if ev.Change != satsync.RenamedOnServer || ev.From != e.srv.Name("Work") {
				t.Fatalf("event %+v", ev)
			}
			for _, m := range res.Mailboxes {
				if m.Uploaded != 0 || m.Name != e.srv.Name("Projects") && m.Downloaded+m.Removed != 0 {
					t.Fatalf("%s: %d downloaded, %d uploaded, %d removed", m.Name, m.Downloaded, m.Uploaded, m.Removed)
				}
				if m.Name == e.srv.Name("Projects") && (m.Downloaded != 5 || m.Removed != 5) {
					t.Fatalf("Projects: %d downloaded, %d removed; want the 5 new ones and the 5 expunged", m.Downloaded, m.Removed)
				}
			}
			assertAt(t, e, "Projects", append(slices.Clone(keep), news...))
			assertGone(t, e, "Work")
			for k := range keepKeys {
				if _, ok, err := e.dir("Projects").Find(k); err != nil || !ok {
					t.Fatalf("file %s of a message kept did not move with the folder (%v)", k, err)
				}
			}
			assertOnce(t, e)
			if got, _, _ := e.ix.Mailbox(ctx, e.srv.Name("Projects")); got.MailboxID != mb.MailboxID {
				t.Fatalf("MAILBOXID %q after the rename, was %q", got.MailboxID, mb.MailboxID)
			}
			assertQuiet(t, e.mustSync(), "after the rename")
		})
	}
}

// refusingRename is a server that refuses every RENAME, as one does a
// name it cannot take.
type refusingRename struct{ satsync.Remote }

func (refusingRename) Rename(ctx context.Context, from, to string) error {
	return fmt.Errorf("rename %q to %q: imap: NO [CANNOT] Mailbox name not allowed", from, to)
}

// TestRefusedRenameChangesNothing: a folder renamed locally whose RENAME
// the server refuses fails that mailbox alone, with the server's words:
// the mailbox is neither deleted on the server nor its mail downloaded
// again into a re-created folder, and nothing is created for the new
// name; once the server takes the RENAME, it follows.
func TestRefusedRenameChangesNothing(t *testing.T) {
	e := newEnv(t, serverModes[0].start(t))
	work := subjectsOf("work", 6)
	fill(e, "Work", work)
	fill(e, "INBOX", subjectsOf("hello", 1))
	e.mustSync()
	if err := os.Rename(e.dir("Work").Path, e.dir("Projects").Path); err != nil {
		t.Fatal(err)
	}
	e.wrap = func(r satsync.Remote) satsync.Remote { return refusingRename{r} }
	for run := 1; run <= 2; run++ {
		res := e.sync()
		if res.Err != nil {
			t.Fatalf("run %d: the account failed: %v", run, res.Err)
		}
		var failed []satsync.MailboxResult
		for _, m := range res.Mailboxes {
			if m.Err != nil {
				failed = append(failed, m)
			}
			if m.Downloaded+m.Uploaded+m.Removed+m.Deleted != 0 || m.Created {
				t.Errorf("run %d: %s changed something: %+v", run, m.Name, m)
			}
		}
		if len(failed) != 1 || failed[0].Name != "Work" || !strings.Contains(failed[0].Err.Error(), "Mailbox name not allowed") {
			t.Fatalf("run %d: failed %+v, want Work alone with the server's words", run, failed)
		}
		if got := e.srv.Mailboxes(); !slices.Equal(got, []string{"INBOX", "Work"}) {
			t.Fatalf("run %d: server mailboxes %q", run, got)
		}
		if got := localSubjects(t, e.dir("Projects")); len(got) != len(work) {
			t.Fatalf("run %d: folder Projects holds %d messages, want %d", run, len(got), len(work))
		}
		if _, err := os.Stat(e.dir("Work").Path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("run %d: folder Work was re-created (%v)", run, err)
		}
	}
	e.wrap = nil
	res := e.mustSync()
	if ev := folderEvent(t, res, "Projects"); ev.Change != satsync.RenamedLocally || ev.Action != satsync.FolderRenamed {
		t.Fatalf("event %+v", ev)
	}
	assertNoTransfer(t, e, res, "rename once taken")
	assertAt(t, e, "Projects", work)
}
