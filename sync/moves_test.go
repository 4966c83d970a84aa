package sync_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// moveFile moves a message file to another folder under the same name,
// as `mv` or notmuch would.
func (e *env) moveFile(from, to, key string) {
	e.t.Helper()
	src, dst := e.dir(from), e.dir(to)
	ent, ok, err := src.Find(key)
	if err != nil || !ok {
		e.t.Fatalf("find %s: %v", key, err)
	}
	if err := dst.Init(); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(ent.Path(src), filepath.Join(dst.Path, ent.Subdir, ent.Name)); err != nil {
		e.t.Fatal(err)
	}
}

// TestMovedLocallyExpungedRemotely: the user files a message the server
// meanwhile expunged: the local copy wins and is uploaded where the user
// put it.
func TestMovedLocallyExpungedRemotely(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			srv.CreateMailbox("Archive")
			srv.Append("INBOX", msg("keep me"), nil, day)
			e := newEnv(t, srv)
			e.mustSync()
			m, _ := serverMsg(srv, "INBOX", "keep me")
			srv.Expunge("INBOX", m.UID)
			e.moveFile("INBOX", "Archive", e.keyOf("INBOX", "keep me"))
			e.mustSync()
			if _, ok := serverMsg(srv, "Archive", "keep me"); !ok {
				t.Fatal("the local copy was not uploaded to Archive")
			}
			if _, ok := serverMsg(srv, "INBOX", "keep me"); ok {
				t.Fatal("the message came back to INBOX")
			}
			e.assertMirror(false)
			e.assertSettled()
		})
	}
}

// TestMovedOnBothSides: moved to different mailboxes on each side, the
// server's move wins and the local copy follows it, with no download and
// no upload.
func TestMovedOnBothSides(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			srv.CreateMailbox("Work")
			srv.CreateMailbox("Later")
			srv.Append("INBOX", msg("contested move"), []string{`\Seen`}, day)
			e := newEnv(t, srv)
			e.mustSync()
			m, _ := serverMsg(srv, "INBOX", "contested move")
			// The server moves it to Work (another client: copy, then
			// expunge the original).
			srv.Append("Work", m.Body, m.Flags, m.Date)
			srv.Expunge("INBOX", m.UID)
			e.moveFile("INBOX", "Later", e.keyOf("INBOX", "contested move"))
			res := e.mustSync()
			var down, up int
			for _, mb := range res.Mailboxes {
				down += mb.Downloaded
				up += mb.Uploaded
			}
			if down != 0 || up != 0 {
				t.Fatalf("downloaded %d, uploaded %d: the local copy should have followed the server's move", down, up)
			}
			if _, ok := serverMsg(srv, "Later", "contested move"); ok {
				t.Fatal("the local move was replayed on the server")
			}
			e.keyOf("Work", "contested move")
			if n, _ := e.dir("Later").Count(); n != 0 {
				t.Fatalf("Later still holds %d files", n)
			}
			e.assertMirror(false)
			e.assertSettled()
		})
	}
}

// TestServerMoveFollowedLocally: a message moved on the server (and
// untouched locally) moves locally too, without a download.
func TestServerMoveFollowedLocally(t *testing.T) {
	srv := serverModes[0].start(t)
	srv.CreateMailbox("Work")
	srv.Append("INBOX", msg("filed by the phone"), nil, day)
	e := newEnv(t, srv)
	e.mustSync()
	key := e.keyOf("INBOX", "filed by the phone")
	m, _ := serverMsg(srv, "INBOX", "filed by the phone")
	srv.Append("Work", m.Body, m.Flags, m.Date)
	srv.Expunge("INBOX", m.UID)
	res := e.mustSync()
	for _, mb := range res.Mailboxes {
		if mb.Downloaded != 0 {
			t.Fatalf("%s: downloaded %d", mb.Name, mb.Downloaded)
		}
	}
	if got := e.keyOf("Work", "filed by the phone"); got != key {
		t.Fatalf("the local file was not moved (key %s, was %s)", got, key)
	}
	e.assertMirror(false)
	e.assertSettled()
}

// TestLookalikeReplacesExpunged: a message expunged on the server while
// another of the same size and date arrives in the same mailbox is no
// move: the old file goes, and the new message is downloaded, in the run
// that sees both (a delta would not report it again).
func TestLookalikeReplacesExpunged(t *testing.T) {
	for _, mode := range withOthers(serverModes) {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			inbox := srv.Name("INBOX")
			srv.Append(inbox, msg("first of two"), nil, day)
			e := newEnv(t, srv)
			e.mustSync()
			e.backdate()
			e.mustSync()
			m, _ := serverMsg(srv, inbox, "first of two")
			srv.Expunge(inbox, m.UID)
			// The same length: "first of two" and "other of two".
			srv.Append(inbox, msg("other of two"), nil, day)
			settle()
			res := e.mustSync()
			if down, _, removed := totals(res); down != 1 || removed != 1 {
				t.Errorf("downloaded %d, removed %d; want 1, 1", down, removed)
			}
			e.keyOf("INBOX", "other of two")
			e.assertMirror(false)
		})
	}
}

// blindFolder hides one key from the listing, as a listing that raced
// with a mail reader's rename would.
type blindFolder struct {
	satsync.Folder
	hide string
}

func (b blindFolder) ScanShared(same func(string) string) (map[string]mail.Flags, error) {
	m, err := b.Folder.ScanShared(same)
	delete(m, b.hide)
	return m, err
}

// TestMissedInListingIsNotDeleted: a file the listing missed is looked up
// again before it counts as deleted; the server keeps the message.
func TestMissedInListingIsNotDeleted(t *testing.T) {
	srv := serverModes[0].start(t)
	srv.Append("INBOX", msg("renamed by mutt"), nil, day)
	e := newEnv(t, srv)
	e.mustSync()
	key := e.keyOf("INBOX", "renamed by mutt")
	root := maildir.Root{Dir: e.root}
	e.folder = func(rel string) satsync.Folder { return blindFolder{root.Folder(rel), key} }
	e.mustSync()
	if _, ok := serverMsg(srv, "INBOX", "renamed by mutt"); !ok {
		t.Fatal("a file missed by one listing was deleted on the server")
	}
}

// TestDeferredExpungeWithoutUIDPlus: without UIDPLUS, a local deletion is
// not expunged while another message is flagged \Deleted; it stays
// flagged, the result says so, and nothing else is lost.
func TestDeferredExpungeWithoutUIDPlus(t *testing.T) {
	srv := serverModes[2].start(t) // plain IMAP4rev1
	srv.Append("INBOX", msg("mine"), nil, day)
	srv.Append("INBOX", msg("theirs"), []string{`\Deleted`}, day)
	e := newEnv(t, srv)
	e.mustSync()
	e.dir("INBOX").Remove(e.keyOf("INBOX", "mine"))
	res := e.mustSync()
	if res.Mailboxes[0].Deferred != 1 {
		t.Fatalf("deferred %d, want 1", res.Mailboxes[0].Deferred)
	}
	m, ok := serverMsg(srv, "INBOX", "mine")
	if !ok || !mail.NewFlags(m.Flags...).Has(mail.FlagDeleted) {
		t.Fatalf("the deleted message should stay, flagged \\Deleted: %v %q", ok, m.Flags)
	}
	if _, ok := serverMsg(srv, "INBOX", "theirs"); !ok {
		t.Fatal("another client's \\Deleted message was expunged")
	}
	// Once the other message is gone, the deletion completes.
	th, _ := serverMsg(srv, "INBOX", "theirs")
	srv.Expunge("INBOX", th.UID)
	e.mustSync()
	if _, ok := serverMsg(srv, "INBOX", "mine"); ok {
		t.Fatal("the deferred deletion never completed")
	}
	e.assertSettled()
}

// TestHighestModSeqWentBack: a server whose HIGHESTMODSEQ is lower than
// the index's (restored from a backup) is resynced in full.
func TestHighestModSeqWentBack(t *testing.T) {
	srv := serverModes[0].start(t)
	srv.Append("INBOX", msg("one"), nil, day)
	e := newEnv(t, srv)
	e.mustSync()
	mb, _, _ := e.ix.Mailbox(context.Background(), "INBOX")
	mb.HighestModSeq += 1000
	if err := e.ix.SaveMailbox(context.Background(), mb); err != nil {
		t.Fatal(err)
	}
	m, _ := serverMsg(srv, "INBOX", "one")
	srv.AddFlags("INBOX", m.UID, `\Flagged`)
	res := e.mustSync()
	if res.Mailboxes[0].Mode != mail.ModeFull {
		t.Fatalf("mode %s, want full", res.Mailboxes[0].Mode)
	}
	e.assertMirror(false)
}

// TestServerMoveToEarlierMailbox: a message the server moved into a
// mailbox that sorts before its source (planned first) is adopted, not
// adopted and downloaded.
func TestServerMoveToEarlierMailbox(t *testing.T) {
	srv := serverModes[0].start(t)
	srv.CreateMailbox("Archive")
	srv.Append("INBOX", msg("filed early"), nil, day)
	e := newEnv(t, srv)
	e.mustSync()
	m, _ := serverMsg(srv, "INBOX", "filed early")
	srv.Append("Archive", m.Body, m.Flags, m.Date)
	srv.Expunge("INBOX", m.UID)
	res := e.mustSync()
	for _, mb := range res.Mailboxes {
		if mb.Downloaded != 0 {
			t.Fatalf("%s: downloaded %d, want the local file moved", mb.Name, mb.Downloaded)
		}
	}
	if n, _ := e.dir("Archive").Count(); n != 1 {
		t.Fatalf("Archive holds %d files, want 1", n)
	}
	e.assertMirror(false)
	e.assertSettled()
}

// TestMoveWithDeferredExpunge: without MOVE and UIDPLUS, a local move
// whose source cannot be expunged yet (another client's message is
// flagged \Deleted) leaves the source flagged \Deleted; it is not taken
// for new mail, and it goes once the other message does.
func TestMoveWithDeferredExpunge(t *testing.T) {
	srv := serverModes[2].start(t) // plain IMAP4rev1
	srv.CreateMailbox("Archive")
	srv.Append("INBOX", msg("to archive"), []string{`\Seen`}, day)
	srv.Append("INBOX", msg("someone else's"), []string{`\Deleted`}, day)
	e := newEnv(t, srv)
	e.mustSync()
	e.moveFile("INBOX", "Archive", e.keyOf("INBOX", "to archive"))
	e.mustSync()
	e.mustSync()
	if n, _ := e.dir("INBOX").Count(); n != 1 {
		t.Fatalf("INBOX holds %d files, want 1 (the moved message came back)", n)
	}
	if _, ok := serverMsg(srv, "Archive", "to archive"); !ok {
		t.Fatal("not in Archive on the server")
	}
	other, _ := serverMsg(srv, "INBOX", "someone else's")
	srv.Expunge("INBOX", other.UID)
	e.mustSync()
	if _, ok := serverMsg(srv, "INBOX", "to archive"); ok {
		t.Fatal("the source copy was never expunged")
	}
	e.assertMirror(false)
	e.assertSettled()
}
