package sync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// writeForeign writes a message file as another tool would have named it.
func writeForeign(t *testing.T, d maildir.Dir, name string, body []byte, mtime time.Time) {
	t.Helper()
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d.Path, "cur", name)
	if err := os.WriteFile(p, body, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, mtime, mtime)
}

// TestAdoptExistingMaildir: the first sync against a Maildir made by
// mbsync (",U=" names, an X-TUID header) or OfflineIMAP (",U=...,FMD5=")
// pairs its files with the server's messages: nothing is uploaded or
// downloaded twice; the one file the server lacks is uploaded and the one
// message the Maildir lacks is downloaded. Also on Cyrus and Courier,
// whose UIDs, UIDVALIDITY and namespaces differ from Dovecot's.
func TestAdoptExistingMaildir(t *testing.T) {
	for _, mode := range append(serverModes[:len(serverModes):len(serverModes)], otherServer("cyrus"), otherServer("courier")) {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			srv.CreateMailbox(srv.Name("Lists"))
			var uids []uint32
			for i := range 6 {
				uids = append(uids, srv.Append("INBOX", msg(fmt.Sprintf("old %d", i)), []string{`\Seen`}, day))
			}
			noID := []byte("From: x@example.org\r\nSubject: no id\r\n\r\nbody\r\n")
			noIDUID := srv.Append("INBOX", noID, []string{`\Seen`}, day)
			noID2 := []byte("From: y@example.org\r\nSubject: no id either\r\n\r\nbody\r\n")
			srv.Append("INBOX", noID2, []string{`\Seen`}, day)
			lf := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }
			srv.Append(srv.Name("Lists"), msg("only on the server"), nil, day)

			e := newEnv(t, srv)
			in := e.dir("INBOX")
			// mbsync: ",U=" names; one file carries the X-TUID header
			// mbsync adds while propagating.
			for i := range 3 {
				writeForeign(t, in, fmt.Sprintf("1700000000.%d_%d.host,U=%d:2,S", 100+i, i, uids[i]), lf(msg(fmt.Sprintf("old %d", i))), day)
			}
			tuid := lf(msg("old 3"))
			tuid = append([]byte("X-TUID: abcdefghijkl\n"), tuid...)
			writeForeign(t, in, fmt.Sprintf("1700000000.103_3.host,U=%d:2,S", uids[3]), tuid, day)
			// OfflineIMAP names.
			writeForeign(t, in, fmt.Sprintf("1700000000_4.1234.host,U=%d,FMD5=0123456789abcdef:2,S", uids[4]), lf(msg("old 4")), day)
			// A copy without any UID in its name, paired by Message-ID.
			writeForeign(t, in, "1700000001.plain.host:2,S", lf(msg("old 5")), day)
			// No Message-ID: paired by the name's UID and the size.
			writeForeign(t, in, fmt.Sprintf("1700000002.x.host,U=%d:2,S", noIDUID), lf(noID), day)
			// No Message-ID and no UID in the name (a folder renamed by
			// a sync a crash interrupted): paired by size and header.
			writeForeign(t, in, "1700000002.z.host:2,S", lf(noID2), day)
			// Local only.
			writeForeign(t, in, "1700000003.y.host:2,S", lf(msg("written offline")), day)

			res := e.mustSync()
			var down, up int
			for _, m := range res.Mailboxes {
				down += m.Downloaded
				up += m.Uploaded
			}
			if down != 1 || up != 1 {
				t.Fatalf("downloaded %d, uploaded %d; want 1 and 1", down, up)
			}
			if n := len(srv.Messages("INBOX")); n != 9 {
				t.Fatalf("INBOX on the server has %d messages, want 9", n)
			}
			if n, _ := in.Count(); n != 9 {
				t.Fatalf("INBOX locally has %d files, want 9", n)
			}
			e.assertSettled()
		})
	}
}

// identifyFails fails the first n calls of Identify, as a run killed
// during a first sync's adoption would stop there.
type identifyFails struct {
	satsync.Remote
	left *atomic.Int32
}

func (f identifyFails) Identify(ctx context.Context) ([]mail.RemoteMessage, error) {
	if f.left.Add(-1) >= 0 {
		return nil, errors.New("connection cut")
	}
	return f.Remote.Identify(ctx)
}

// TestAdoptAfterFirstSyncCut: a first sync that stops after recording
// the mailbox's UIDVALIDITY, before it paired the folder's files with
// the server's messages, pairs them when it is tried again (in the same
// run or the next): nothing is uploaded or downloaded twice.
func TestAdoptAfterFirstSyncCut(t *testing.T) {
	srv := serverModes[0].start(t)
	lf := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }
	e := newEnv(t, srv)
	in := e.dir("INBOX")
	for i := range 4 {
		body := msg(fmt.Sprintf("kept %d", i))
		srv.Append("INBOX", body, []string{`\Seen`}, day)
		writeForeign(t, in, fmt.Sprintf("1700000000.%d.host:2,S", i), lf(body), day)
	}
	var left atomic.Int32
	left.Store(1)
	e.wrap = func(r satsync.Remote) satsync.Remote { return identifyFails{Remote: r, left: &left} }
	e.sync()
	if left.Load() > 0 {
		t.Fatal("the adoption was never reached")
	}
	e.mustSync()
	if n := len(srv.Messages("INBOX")); n != 4 {
		t.Errorf("INBOX on the server has %d messages, want 4", n)
	}
	if n, _ := in.Count(); n != 4 {
		t.Errorf("INBOX locally has %d files, want 4", n)
	}
	e.assertMirror(false)
}
