package sync_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// These tests build the states a crash leaves between the two halves of a
// step, then check that the next sync completes the step: nothing lost,
// nothing twice. The SIGKILL harness (sync/crashtest) reaches the same
// states at random; these reach each one for certain.

// TestRecoverDownloadWithoutRow: killed after a downloaded file reached
// new/ but before its index row was committed.
func TestRecoverDownloadWithoutRow(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			srv.Append("INBOX", msg("first"), nil, day)
			e := newEnv(t, srv)
			e.mustSync()
			ctx := context.Background()
			uid := srv.Append("INBOX", msg("interrupted"), nil, day)
			mb, _, _ := e.ix.Mailbox(ctx, "INBOX")
			d := e.dir("INBOX")
			key := e.writeLocal("INBOX", bytes.ReplaceAll(msg("interrupted"), []byte("\r\n"), []byte("\n")), mail.NewFlags())
			row := mail.Message{UIDValidity: mb.UIDValidity, UID: mail.UID(uid), Key: key, Size: int64(len(msg("interrupted"))), InternalDate: day}
			if _, err := e.ix.AddIntents(ctx, []mail.Intent{{MailboxID: mb.ID, Kind: mail.IntentDownload, UID: mail.UID(uid), Key: key, Row: row}}); err != nil {
				t.Fatal(err)
			}
			res := e.mustSync()
			if m := res.Mailboxes[0]; m.Downloaded != 0 || m.Uploaded != 0 {
				t.Fatalf("after recovery: downloaded %d, uploaded %d; want neither", m.Downloaded, m.Uploaded)
			}
			if n := len(srv.Messages("INBOX")); n != 2 {
				t.Fatalf("server has %d messages, want 2", n)
			}
			if n, _ := d.Count(); n != 2 {
				t.Fatalf("Maildir has %d messages, want 2", n)
			}
			e.assertMirror(false)
			if ins, _ := e.ix.Intents(ctx, mb.ID); len(ins) != 0 {
				t.Fatalf("intents left: %v", ins)
			}
			e.assertSettled()
		})
	}
}

// listCounter counts the folder lookups that list a directory.
type listCounter struct {
	satsync.Folder
	finds *atomic.Int32
}

func (l listCounter) Find(key string) (mail.Flags, bool, error) {
	l.finds.Add(1)
	return l.Folder.Find(key)
}

// TestRecoverCutDownloadBatch: killed in the middle of a batch of
// downloads, with an intent for each message of the batch and the files
// of some of them written (one renamed since by a mail reader). The next
// run keeps those and downloads the others, and finds the files of all
// the intents together, not by a listing of the folder for each.
func TestRecoverCutDownloadBatch(t *testing.T) {
	srv := serverModes[0].start(t)
	seed(t, srv, 100, 0)
	e := newEnv(t, srv)
	e.mustSync()
	ctx := context.Background()
	mb, _, _ := e.ix.Mailbox(ctx, "INBOX")
	var ins []mail.Intent
	written := 0
	for i := range 40 {
		body := msg(fmt.Sprintf("batch %d", i))
		uid := srv.Append("INBOX", body, nil, day)
		key := maildir.NewKey()
		if i%4 == 0 {
			key = e.writeLocal("INBOX", bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")), mail.NewFlags())
			written++
		}
		row := mail.Message{UIDValidity: mb.UIDValidity, UID: mail.UID(uid), Key: key, Size: int64(len(body)), InternalDate: day}
		ins = append(ins, mail.Intent{MailboxID: mb.ID, Kind: mail.IntentDownload, UID: mail.UID(uid), Key: key, Row: row})
	}
	if _, err := e.dir("INBOX").SetFlags(ins[4].Key, mail.NewFlags(`\Seen`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ix.AddIntents(ctx, ins); err != nil {
		t.Fatal(err)
	}
	finds := new(atomic.Int32)
	root := maildir.Root{Dir: e.root}
	e.folder = func(rel string) satsync.Folder { return listCounter{root.Folder(rel), finds} }
	res := e.mustSync()
	if down, _, _ := totals(res); down != 40-written {
		t.Errorf("downloaded %d, want %d (the %d written before the cut are kept)", down, 40-written, written)
	}
	if n := finds.Load(); n != 0 {
		t.Errorf("%d lookups listing the folder one key at a time, want none", n)
	}
	if ins, _ := e.ix.Intents(ctx, mb.ID); len(ins) != 0 {
		t.Fatalf("intents left: %d", len(ins))
	}
	e.assertMirror(false)
	e.assertSettled()
}

// TestRecoverAppendWithoutUID: killed after APPEND succeeded but before
// the UID was recorded. The intent's UIDNEXT, size and header hash find
// the message, with or without a Message-ID.
func TestRecoverAppendWithoutUID(t *testing.T) {
	for _, mode := range serverModes {
		for _, withID := range []bool{true, false} {
			name := mode.name + "/no-message-id"
			if withID {
				name = mode.name + "/message-id"
			}
			t.Run(name, func(t *testing.T) {
				srv := mode.start(t)
				srv.Append("INBOX", msg("first"), nil, day)
				e := newEnv(t, srv)
				e.mustSync()
				ctx := context.Background()
				body := []byte("From: me@example.org\nSubject: sent before the crash\n\nHello.\n")
				if withID {
					body = []byte("From: me@example.org\nSubject: sent before the crash\nMessage-ID: <crash@example.org>\n\nHello.\n")
				}
				key := e.writeLocal("INBOX", body, mail.NewFlags(mail.FlagSeen))
				mb, _, _ := e.ix.Mailbox(ctx, "INBOX")
				crlf := bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
				hdr := crlf[:bytes.Index(crlf, []byte("\r\n\r\n"))+4]
				in := mail.Intent{MailboxID: mb.ID, Kind: mail.IntentUpload, Key: key, UIDNext: mb.UIDNext,
					Size: int64(len(crlf)), HeaderHash: sha256.Sum256(hdr),
					Row: mail.Message{UIDValidity: mb.UIDValidity, Key: key, Flags: mail.NewFlags(mail.FlagSeen), Size: int64(len(crlf)), InternalDate: day}}
				if _, err := e.ix.AddIntents(ctx, []mail.Intent{in}); err != nil {
					t.Fatal(err)
				}
				// The APPEND went through; the crash came before its row.
				srv.Append("INBOX", crlf, []string{`\Seen`}, day)
				res := e.mustSync()
				if m := res.Mailboxes[0]; m.Downloaded != 0 || m.Uploaded != 0 {
					t.Fatalf("after recovery: downloaded %d, uploaded %d; want neither", m.Downloaded, m.Uploaded)
				}
				if n := len(srv.Messages("INBOX")); n != 2 {
					t.Fatalf("server has %d messages, want 2 (no duplicate)", n)
				}
				e.assertMirror(false)
				e.assertSettled()
			})
		}
	}
}

// TestRecoverAppendThatNeverHappened: killed after the upload intent was
// recorded but before the APPEND reached the server: the message is
// uploaded once.
func TestRecoverAppendThatNeverHappened(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	e := newEnv(t, srv)
	e.mustSync()
	ctx := context.Background()
	body := []byte("Subject: never sent\n\nx\n")
	key := e.writeLocal("INBOX", body, mail.NewFlags())
	mb, _, _ := e.ix.Mailbox(ctx, "INBOX")
	in := mail.Intent{MailboxID: mb.ID, Kind: mail.IntentUpload, Key: key, UIDNext: mb.UIDNext, Size: 27,
		Row: mail.Message{UIDValidity: mb.UIDValidity, Key: key, Size: 27}}
	if _, err := e.ix.AddIntents(ctx, []mail.Intent{in}); err != nil {
		t.Fatal(err)
	}
	res := e.mustSync()
	if res.Mailboxes[0].Uploaded != 1 {
		t.Fatalf("uploaded %d, want 1", res.Mailboxes[0].Uploaded)
	}
	if n := len(srv.Messages("INBOX")); n != 1 {
		t.Fatalf("server has %d messages, want 1", n)
	}
	e.assertSettled()
}

// TestRecoverMoveWithoutRow: killed after UID MOVE succeeded but before
// the index recorded it: the message is found in the target, the source
// row goes, and nothing is uploaded or downloaded.
func TestRecoverMoveWithoutRow(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			srv.CreateMailbox("Archive")
			srv.Append("INBOX", msg("filed"), []string{`\Seen`}, day)
			e := newEnv(t, srv)
			e.mustSync()
			ctx := context.Background()
			key := e.keyOf("INBOX", "filed")
			src, _, _ := e.ix.Mailbox(ctx, "INBOX")
			dst, _, _ := e.ix.Mailbox(ctx, "Archive")
			rows, _ := e.ix.Messages(ctx, src.ID, src.UIDValidity)
			var srcRow mail.Message
			for _, r := range rows {
				srcRow = r
			}
			// The user moved the file; satchel recorded its intent and the
			// server moved the message; then the crash.
			e.moveFile("INBOX", "Archive", key)
			m, _ := serverMsg(srv, "INBOX", "filed")
			hdr := m.Body[:bytes.Index(m.Body, []byte("\r\n\r\n"))+4]
			row := srcRow
			row.UIDValidity, row.UID = dst.UIDValidity, 0
			in := mail.Intent{MailboxID: dst.ID, Kind: mail.IntentMove, Key: key, UIDNext: dst.UIDNext, Size: int64(len(m.Body)),
				HeaderHash: sha256.Sum256(hdr), Row: row, From: src.ID, FromUIDValidity: srcRow.UIDValidity, FromUID: srcRow.UID}
			if _, err := e.ix.AddIntents(ctx, []mail.Intent{in}); err != nil {
				t.Fatal(err)
			}
			srv.Append("Archive", m.Body, m.Flags, m.Date)
			srv.Expunge("INBOX", m.UID)

			res := e.mustSync()
			for _, mb := range res.Mailboxes {
				if mb.Downloaded+mb.Uploaded != 0 {
					t.Fatalf("%s: downloaded %d, uploaded %d", mb.Name, mb.Downloaded, mb.Uploaded)
				}
			}
			if n := len(srv.Messages("Archive")); n != 1 {
				t.Fatalf("Archive has %d messages, want 1", n)
			}
			e.assertMirror(false)
			e.assertSettled()
		})
	}
}
