package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
	"github.com/satchel-mail/satchel/sync/synctest"
)

var testDate = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func testMsg(subject string) []byte {
	return []byte("From: a@example.org\r\nSubject: " + subject + "\r\nMessage-ID: <" +
		strings.ReplaceAll(subject, " ", ".") + "@example.org>\r\n\r\nbody of " + subject + "\r\n")
}

// appendMsgs appends n messages to a server mailbox.
func appendMsgs(srv *imaptest.Server, mailbox string, n int) []uint32 {
	msgs := make([]imaptest.Message, n)
	for i := range msgs {
		msgs[i] = imaptest.Message{Flags: []string{`\Seen`}, Date: testDate, Body: testMsg(fmt.Sprintf("%s %d", mailbox, i))}
	}
	return srv.AppendMany(mailbox, msgs)
}

// localFiles lists the message files of a local folder, cur/ and new/.
func localFiles(t *testing.T, a account, folder string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(a.maildir, folder, sub))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, filepath.Join(a.maildir, folder, sub, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

// fileOf returns the path of a local message by its Subject.
func fileOf(t *testing.T, a account, folder, subject string) string {
	t.Helper()
	for _, p := range localFiles(t, a, folder) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("Subject: "+subject+"\n")) {
			return p
		}
	}
	t.Fatalf("%s: no local message %q", folder, subject)
	return ""
}

// serverState describes every message of every mailbox: UID, flags, date
// and a hash of the body.
func serverState(srv *imaptest.Server) string {
	var b strings.Builder
	for _, name := range srv.Mailboxes() {
		fmt.Fprintf(&b, "%s uidvalidity %d\n", name, srv.UIDValidity(name))
		for _, m := range srv.Messages(name) {
			fmt.Fprintf(&b, "  %d %v %s %x\n", m.UID, m.Flags, m.Date.UTC().Format(time.RFC3339), sha256.Sum256(m.Body))
		}
	}
	return b.String()
}

// treeState describes every file and directory below dir: name, mode,
// size, mtime, and a hash of the content.
func treeState(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d %s", p, fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		if !d.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func mustSyncCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := runCLI(t, args...)
	if code != exitOK {
		t.Fatalf("%v: exit %d, stderr %q", args, code, errs)
	}
	return out
}

// TestMaxDeleteExit4: 30 of 40 files deleted locally are not deleted on
// the server; the rest of the account syncs, the run says why and exits
// 4. --force deletes them.
func TestMaxDeleteExit4(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.CreateMailbox("Lists")
	inbox := appendMsgs(srv, "INBOX", 40)
	appendMsgs(srv, "Lists", 1)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "unused", "")
	mustSyncCLI(t, "--config", a.config, "sync")

	for i := range 30 {
		if err := os.Remove(fileOf(t, a, "INBOX", fmt.Sprint("INBOX ", i))); err != nil {
			t.Fatal(err)
		}
	}
	appendMsgs(srv, "Lists", 1)                  // new on the server elsewhere
	srv.AddFlags("INBOX", inbox[39], `\Flagged`) // and a flag in this mailbox

	code, out, errs := runCLI(t, "--config", a.config, "-v", "sync")
	if code != exitSafety {
		t.Fatalf("exit %d, want 4 (stderr %q)", code, errs)
	}
	if !strings.Contains(errs, "INBOX: too many deletions") || !strings.Contains(errs, "30 of the 40 messages on the server") || !strings.Contains(errs, "--force") {
		t.Fatalf("stderr %q does not explain", errs)
	}
	if !strings.Contains(out, "30 held back") {
		t.Errorf("summary %q does not count the held deletions", out)
	}
	if n := len(srv.Messages("INBOX")); n != 40 {
		t.Fatalf("the server has %d messages in INBOX, want all 40", n)
	}
	if n := len(localFiles(t, a, "Lists")); n != 2 {
		t.Fatalf("Lists has %d local files, want 2: the rest of the account syncs", n)
	}
	var flagged int
	for _, p := range localFiles(t, a, "INBOX") {
		if strings.Contains(p, ":2,F") {
			flagged++
		}
	}
	if flagged != 1 {
		t.Errorf("%d flagged local files, want 1: the rest of INBOX syncs", flagged)
	}

	// The deletions stay held until forced.
	if code, _, errs := runCLI(t, "--config", a.config, "sync"); code != exitSafety {
		t.Fatalf("second run: exit %d, want 4 (stderr %q)", code, errs)
	}
	mustSyncCLI(t, "--config", a.config, "sync", "--force")
	if n := len(srv.Messages("INBOX")); n != 10 {
		t.Fatalf("after --force the server has %d messages in INBOX, want 10", n)
	}
	mustSyncCLI(t, "--config", a.config, "sync")
}

// TestEmptiedMaildirExit4: a Maildir root that is empty (the disk not
// mounted) or missing is refused before anything is read as deleted.
func TestEmptiedMaildirExit4(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.CreateMailbox("Lists")
	appendMsgs(srv, "INBOX", 5)
	appendMsgs(srv, "Lists", 3)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "unused", "")
	mustSyncCLI(t, "--config", a.config, "sync")
	id, err := os.ReadFile(filepath.Join(a.maildir, maildir.IdentityFile))
	if err != nil {
		t.Fatalf("no identity file after the first sync: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(a.maildir, maildir.IdentityFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode %v, want 0600", fi.Mode().Perm())
	}
	if !bytes.Contains(id, []byte("account: personal")) {
		t.Errorf("identity file %q does not name the account", id)
	}
	server := serverState(srv)

	for _, recreate := range []bool{true, false} {
		if err := os.RemoveAll(a.maildir); err != nil {
			t.Fatal(err)
		}
		if recreate {
			if err := os.Mkdir(a.maildir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		code, _, errs := runCLI(t, "--config", a.config, "sync")
		if code != exitSafety {
			t.Fatalf("root recreated %v: exit %d, want 4 (stderr %q)", recreate, code, errs)
		}
		line := oneLine(t, errs)
		if !strings.Contains(line, maildir.IdentityFile) || !strings.Contains(line, "mounted") || !strings.Contains(line, "accounts.maildir") {
			t.Fatalf("error %q does not say what to check", line)
		}
		if got := serverState(srv); got != server {
			t.Fatalf("the server changed:\n%s\nwant\n%s", got, server)
		}
		ents, err := os.ReadDir(a.maildir)
		if recreate && (err != nil || len(ents) != 0) {
			t.Fatalf("the refused run wrote into the root: %v, %v", ents, err)
		}
		if !recreate && !os.IsNotExist(err) {
			t.Fatalf("the refused run created the root (%v)", err)
		}
	}
}

// TestWrongMaildirExit4: a root synced with another index is refused.
func TestWrongMaildirExit4(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	appendMsgs(srv, "INBOX", 3)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "unused", "")
	b := writeConfig(t, srv.Host, srv.Port, srv.User, "unused", "")
	mustSyncCLI(t, "--config", a.config, "sync")
	mustSyncCLI(t, "--config", b.config, "sync")

	// a's configuration, now naming b's Maildir.
	cfg, err := os.ReadFile(a.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("maildir: "+a.maildir), []byte("maildir: "+b.maildir), 1)
	if err := os.WriteFile(a.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, b.maildir)
	server := serverState(srv)
	code, _, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitSafety {
		t.Fatalf("exit %d, want 4 (stderr %q)", code, errs)
	}
	if line := oneLine(t, errs); !strings.Contains(line, "another index") || !strings.Contains(line, "accounts.maildir") {
		t.Fatalf("error %q does not say what is wrong", line)
	}
	if treeState(t, b.maildir) != before || serverState(srv) != server {
		t.Fatal("the refused run changed the Maildir or the server")
	}
}

// TestIdentityOfOlderIndex: an index written before identity files
// existed is given one when its Maildir holds its folders, and refused
// when the Maildir is empty.
func TestIdentityOfOlderIndex(t *testing.T) {
	srv := imaptest.StartMemory(t)
	srv.Append("INBOX", testMsg("hello"), nil, testDate)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	mustSyncCLI(t, "--config", a.config, "sync")

	dropIdentity(t, a)
	mustSyncCLI(t, "--config", a.config, "sync")
	file, ok, err := maildir.Root{Dir: a.maildir}.ReadIdentity()
	if err != nil || !ok {
		t.Fatalf("no identity written for the older index (%v)", err)
	}
	ix, err := store.Open(context.Background(), a.index)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := ix.Meta(context.Background(), maildir.MetaIdentity)
	ix.Close()
	if err != nil || id != file.ID {
		t.Fatalf("index id %q (%v), file id %q", id, err, file.ID)
	}

	// The same older index with an empty Maildir: refused.
	dropIdentity(t, a)
	if err := os.RemoveAll(a.maildir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(a.maildir, 0o700); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCLI(t, "--config", a.config, "sync"); code != exitSafety {
		t.Fatalf("older index, empty Maildir: exit %d, want 4 (stderr %q)", code, errs)
	}
}

// dropIdentity makes the account look synced by a satchel from before
// identity files: no id in the index, no file in the Maildir.
func dropIdentity(t *testing.T, a account) {
	t.Helper()
	db, err := sql.Open("sqlite3", a.index)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM meta`); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(a.maildir, maildir.IdentityFile)); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// TestFirstSyncMassUploadExit4: a first sync that would upload 150 local
// messages the server does not have does nothing in that mailbox, run
// after run, until forced.
func TestFirstSyncMassUploadExit4(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.CreateMailbox("Lists")
	appendMsgs(srv, "INBOX", 2)
	appendMsgs(srv, "Lists", 2)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "unused", "")
	d := maildir.Dir{Path: filepath.Join(a.maildir, "INBOX")}
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		if _, err := d.Deliver(context.Background(), bytes.NewReader(testMsg(fmt.Sprint("local ", i))), mail.NewFlags(mail.FlagSeen), testDate); err != nil {
			t.Fatal(err)
		}
	}

	for run := range 2 {
		code, _, errs := runCLI(t, "--config", a.config, "sync")
		if code != exitSafety {
			t.Fatalf("run %d: exit %d, want 4 (stderr %q)", run, code, errs)
		}
		if !strings.Contains(errs, "INBOX: too many uploads for a first sync") || !strings.Contains(errs, "would upload 150") || !strings.Contains(errs, "--force") {
			t.Fatalf("run %d: stderr %q does not explain", run, errs)
		}
		if n := len(srv.Messages("INBOX")); n != 2 {
			t.Fatalf("run %d: the server has %d messages in INBOX, want 2: nothing uploaded", run, n)
		}
		if n := len(localFiles(t, a, "INBOX")); n != 150 {
			t.Fatalf("run %d: INBOX has %d local files, want 150: nothing done in it", run, n)
		}
		if n := len(localFiles(t, a, "Lists")); n != 2 {
			t.Fatalf("run %d: Lists has %d local files, want 2: the rest of the account syncs", run, n)
		}
	}
	mustSyncCLI(t, "--config", a.config, "sync", "--force")
	if n := len(srv.Messages("INBOX")); n != 152 {
		t.Fatalf("after --force the server has %d messages in INBOX, want 152", n)
	}
	if n := len(localFiles(t, a, "INBOX")); n != 152 {
		t.Fatalf("after --force INBOX has %d local files, want 152", n)
	}
	mustSyncCLI(t, "--config", a.config, "sync")
}

// TestDryRunChangesNothing: with work pending on both sides, a dry run
// lists it and changes no file, no index byte and nothing on the server;
// on a fresh account it creates nothing at all.
func TestDryRunChangesNothing(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.CreateMailbox("Lists")
	srv.CreateMailbox("Old")
	inbox := appendMsgs(srv, "INBOX", 5)
	lists := appendMsgs(srv, "Lists", 3)
	appendMsgs(srv, "Old", 2)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "unused", "")

	// A fresh account: the plan lists the downloads; nothing is created.
	out := mustSyncCLI(t, "--config", a.config, "sync", "--dry-run")
	if !strings.Contains(out, "INBOX (full): 5 to download") || !strings.Contains(out, "download UID") {
		t.Fatalf("fresh dry run output:\n%s", out)
	}
	assertNothingWritten(t, a)

	mustSyncCLI(t, "--config", a.config, "sync")
	// Pending on the server: a new message, a flag change, an expunge.
	srv.Append("INBOX", testMsg("new on the server"), nil, testDate)
	srv.AddFlags("INBOX", inbox[0], `\Flagged`)
	srv.Expunge("Lists", lists[0])
	// Pending locally: a new message, a flag change, a deletion.
	d := maildir.Dir{Path: filepath.Join(a.maildir, "Lists")}
	if _, err := d.Deliver(context.Background(), bytes.NewReader(testMsg("new locally")), mail.NewFlags(mail.FlagSeen), testDate); err != nil {
		t.Fatal(err)
	}
	flagged := fileOf(t, a, "INBOX", "INBOX 3")
	if err := os.Rename(flagged, strings.Replace(flagged, ":2,S", ":2,FS", 1)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(fileOf(t, a, "INBOX", "INBOX 4")); err != nil {
		t.Fatal(err)
	}
	// A whole folder deleted: with sync.remove_folders false a sync
	// brings it back; the dry run says so.
	if err := os.RemoveAll(filepath.Join(a.maildir, "Old")); err != nil {
		t.Fatal(err)
	}

	maildirBefore := treeState(t, a.maildir)
	indexBefore := treeState(t, filepath.Dir(a.index))
	serverBefore := serverState(srv)
	out = mustSyncCLI(t, "--config", a.config, "sync", "--dry-run")
	for _, want := range []string{
		"INBOX (qresync): 1 to download, 0 to upload, 1 local flag updates, 1 server flag updates, 0 to remove locally, 1 to delete on the server",
		"Lists (qresync): 0 to download, 1 to upload, 0 local flag updates, 0 server flag updates, 1 to remove locally, 0 to delete on the server",
		fmt.Sprintf("remove UID %d locally", lists[0]),
		"Old: folder deleted locally; a sync re-creates it with the mailbox's mail from the server (sync.remove_folders is false)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if got := treeState(t, a.maildir); got != maildirBefore {
		t.Errorf("the dry run changed the Maildir:\n%s\nwant\n%s", got, maildirBefore)
	}
	if got := treeState(t, filepath.Dir(a.index)); got != indexBefore {
		t.Errorf("the dry run changed the index directory:\n%s\nwant\n%s", got, indexBefore)
	}
	if got := serverState(srv); got != serverBefore {
		t.Errorf("the dry run changed the server:\n%s\nwant\n%s", got, serverBefore)
	}
	// The work is real: a sync does it.
	out = mustSyncCLI(t, "--config", a.config, "-v", "sync")
	if !strings.Contains(out, "3 downloaded") || !strings.Contains(out, "Old: folder deleted locally; re-created") {
		t.Errorf("sync after the dry run: %q", out)
	}
}

// TestSyncWait: with --wait a run waits for the lock another run holds,
// and syncs once it is released.
func TestSyncWait(t *testing.T) {
	srv := imaptest.StartMemory(t)
	srv.Append("INBOX", testMsg("one"), nil, testDate)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	mustSyncCLI(t, "--config", a.config, "sync")
	srv.Append("INBOX", testMsg("two"), nil, testDate)

	l, err := store.Lock(context.Background(), a.index+".lock", false)
	if err != nil {
		t.Fatal(err)
	}
	stderr := &synctest.Buffer{}
	waiting := stderr.Seen("waiting for another satchel run")
	var stdout bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run(context.Background(), []string{"satchel", "--config", a.config, "-v", "sync", "--wait"}, &stdout, stderr)
	}()
	select {
	case <-waiting:
	case code := <-done:
		l.Unlock()
		t.Fatalf("sync --wait returned %d while the lock was held (stderr %q)", code, stderr.String())
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != exitOK {
		t.Fatalf("sync --wait: exit %d after the lock was released (stderr %q)", code, stderr.String())
	}
	if n := len(localFiles(t, a, "INBOX")); n != 2 {
		t.Fatalf("INBOX has %d files, want 2: the waiting run synced", n)
	}
}

// TestSafetyOutcome: held work and a refused Maildir make exit 4, below
// a total failure and above a partial one.
func TestSafetyOutcome(t *testing.T) {
	held := satsync.Result{Mailboxes: []satsync.MailboxResult{
		{Name: "INBOX", Held: 30, Safety: fmt.Errorf("%w: 30 of 40", satsync.ErrTooManyDeletions)},
		{Name: "Lists"},
	}}
	failing := satsync.Result{Mailboxes: []satsync.MailboxResult{{Name: "INBOX", Err: errors.New("boom")}}}
	refused := fmt.Errorf("%w: no .satchel-id", maildir.ErrMissing)
	tests := []struct {
		name string
		run  func(o *outcome)
		want int
	}{
		{"deletions held", func(o *outcome) { o.account(nil, &held) }, exitSafety},
		{"Maildir refused", func(o *outcome) { o.account(refused, nil) }, exitSafety},
		{"refused and a partial failure", func(o *outcome) { o.account(refused, nil); o.account(nil, &held); o.account(nil, &failing) }, exitSafety},
		{"refused and a failed account", func(o *outcome) { o.account(refused, nil); o.account(errors.New("no route"), nil) }, exitSafety},
		{"every account failed", func(o *outcome) { o.account(errors.New("no route"), nil) }, exitFailure},
	}
	for _, tt := range tests {
		var o outcome
		tt.run(&o)
		if got := o.code(); got != tt.want {
			t.Errorf("%s: exit %d, want %d", tt.name, got, tt.want)
		}
	}
}
