package sync_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// namespaceShapes are the servers of every namespace shape RFC 2342
// allows that people meet: no prefix with "/" or ".", the prefix
// "INBOX." (hosting panels, Courier, Cyrus without altnamespace, the
// last with a shared namespace "" beside it), "INBOX/", and no NAMESPACE
// at all.
var namespaceShapes = []struct {
	name  string
	start func(t *testing.T) *imaptest.Server
	// prefix is the imap.prefix to configure (nil: NAMESPACE decides).
	prefix *string
}{
	{name: `dovecot ("" "/")`, start: serverModes[0].start},
	{name: `dovecot ("" ".")`, start: func(t *testing.T) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{Separator: "."})
	}},
	{name: `dovecot ("INBOX." ".")`, start: otherServers[0].start},
	{name: `dovecot ("INBOX/" "/")`, start: func(t *testing.T) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{Prefix: "INBOX/", Separator: "/"})
	}},
	{name: `dovecot ("INBOX." ".") without NAMESPACE, imap.prefix set`, start: func(t *testing.T) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{Prefix: "INBOX.", Separator: ".", Capabilities: imaptest.CapsPlain})
	}, prefix: ptr("INBOX.")},
	{name: `dovecot ("" "/") without NAMESPACE`, start: serverModes[2].start},
	{name: `courier ("INBOX." ".")`, start: otherServers[4].start},
	{name: `cyrus ("" "/")`, start: otherServers[2].start},
	{name: `cyrus ("INBOX." ".") beside shared ""`, start: otherServers[3].start},
}

func ptr[T any](v T) *T { return &v }

// deliverTo writes a message into a local folder (its levels "/"-joined),
// making the folder.
func (e *env) deliverTo(path, subject string) {
	e.t.Helper()
	root := maildir.Root{Dir: e.root, Layout: e.layout}
	rel, err := root.Path(strings.Split(path, "/"))
	if err != nil {
		e.t.Fatal(err)
	}
	d := maildir.Dir{Path: filepath.Join(e.root, filepath.FromSlash(rel))}
	if err := d.Init(); err != nil {
		e.t.Fatal(err)
	}
	if _, err := d.Deliver(context.Background(), strings.NewReader("Subject: "+subject+"\nMessage-ID: <"+strings.ReplaceAll(subject, " ", ".")+"@example.org>\n\nbody\n"), mail.NewFlags(`\Seen`), day); err != nil {
		e.t.Fatal(err)
	}
}

// TestNamespaceShapes: in every namespace shape, a server mailbox lands in
// the folder named without the personal prefix, and folders made locally
// (one nested) become mailboxes under the personal namespace with its
// delimiter, their mail uploaded; the next sync is quiet.
func TestNamespaceShapes(t *testing.T) {
	for _, shape := range namespaceShapes {
		t.Run(shape.name, func(t *testing.T) {
			srv := shape.start(t)
			srv.CreateMailbox(srv.Name("Archive"))
			srv.Append(srv.Name("Archive"), msg("archived"), []string{`\Seen`}, day)
			srv.Append("INBOX", msg("hello"), nil, day)
			e := newEnv(t, srv)
			e.opts.Prefix = shape.prefix
			e.mustSync()
			if got := localSubjects(t, e.dir("Archive")); !slices.Equal(got, []string{"archived"}) {
				t.Fatalf("folder Archive holds %q", got)
			}
			if srv.Prefix != "" {
				if _, err := os.Stat(filepath.Join(e.root, "INBOX", "Archive")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the prefix is in a folder name: INBOX/Archive exists (%v)", err)
				}
			}

			e.deliverTo("Projekte", "plan")
			e.deliverTo("Projekte/2026", "next year")
			res := e.mustSync()
			for path, subject := range map[string]string{"Projekte": "plan", "Projekte/2026": "next year"} {
				if got := serverSubjects(e, srv.Name(path)); !slices.Equal(got, []string{subject}) {
					t.Errorf("mailbox %q holds %q, want %q (server lists %q)", srv.Name(path), got, subject, srv.Mailboxes())
				}
			}
			created := 0
			for _, m := range res.Mailboxes {
				if m.Created {
					created++
				}
			}
			if created != 2 {
				t.Errorf("%d mailboxes created, want 2: %+v", created, res.Mailboxes)
			}
			for _, name := range srv.Mailboxes() {
				if srv.Prefix != "" && name != "INBOX" && !strings.HasPrefix(name, srv.Prefix) {
					t.Errorf("mailbox %q made outside the personal namespace %q", name, srv.Prefix)
				}
			}
			e.backdate()
			assertQuiet(t, e.mustSync(), "next sync")
			e.backdate()
			if res := e.mustSync(); slices.ContainsFunc(res.Mailboxes, func(m satsync.MailboxResult) bool { return m.Downloaded+m.Uploaded+m.Removed+m.Deleted != 0 }) {
				t.Fatalf("third sync changed something: %+v", res.Mailboxes)
			}
		})
	}
}

// TestRefusedCreateFailsOneFolder: a hosting-style Dovecot that does not
// say its namespace refuses a mailbox outside "INBOX.": that folder fails
// with the server's words, the rest of the account syncs, and the folder
// is not recorded (the next run does not take it for deleted). Once
// imap.prefix names the prefix, it is created where it belongs.
func TestRefusedCreateFailsOneFolder(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{Prefix: "INBOX.", Separator: ".", Capabilities: imaptest.CapsPlain})
	srv.CreateMailbox("INBOX.Archive")
	e := newEnv(t, srv)
	e.mustSync()
	e.deliverTo("Projekte", "plan")
	srv.Append("INBOX.Archive", msg("new on the server"), nil, day)
	srv.Append("INBOX", msg("hello"), nil, day)
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
		}
		if len(failed) != 1 || failed[0].Local != "Projekte" || !strings.Contains(failed[0].Err.Error(), "Projekte") {
			t.Fatalf("run %d: failed %+v, want folder Projekte alone", run, failed)
		}
		// Dovecot's own words reach the user.
		if !strings.Contains(failed[0].Err.Error(), "namespace") {
			t.Errorf("run %d: error %q does not carry the server's reason", run, failed[0].Err)
		}
		if res.Failed() != 1 || len(res.Mailboxes) < 3 {
			t.Errorf("run %d: %d failed of %d", run, res.Failed(), len(res.Mailboxes))
		}
		if _, ok, _ := e.ix.Mailbox(context.Background(), "Projekte"); ok {
			t.Fatalf("run %d: a refused CREATE was recorded in the index", run)
		}
	}
	// Without NAMESPACE nothing is guessed: the prefix stays in names.
	if got := localSubjects(t, e.dir("INBOX/Archive")); !slices.Contains(got, "new on the server") {
		t.Errorf("the rest of the account did not sync: INBOX/Archive holds %q", got)
	}
	if got := localSubjects(t, e.dir("Projekte")); !slices.Equal(got, []string{"plan"}) {
		t.Errorf("the refused folder changed: %q", got)
	}
	// imap.prefix names the prefix: the folder is created under it. The
	// mailbox synced without it now belongs in another folder, which a
	// sync never decides alone.
	e.opts.Prefix = ptr("INBOX.")
	res := e.sync()
	for _, m := range res.Mailboxes {
		switch {
		case m.Name == "INBOX.Archive":
			if !errors.Is(m.Err, satsync.ErrFolderMoved) {
				t.Errorf("INBOX.Archive: %v, want ErrFolderMoved", m.Err)
			}
		case m.Err != nil:
			t.Errorf("%s: %v", m.Name, m.Err)
		}
	}
	if got := serverSubjects(e, "INBOX.Projekte"); !slices.Equal(got, []string{"plan"}) {
		t.Fatalf("INBOX.Projekte holds %q", got)
	}
}

// TestNamespaceCollisions: names that meet fail the folder concerned
// alone, naming both sides; everything else syncs.
func TestNamespaceCollisions(t *testing.T) {
	srv := otherServers[0].start(t) // ("INBOX." ".")
	srv.CreateMailbox("INBOX.Archive")
	srv.Append("INBOX.Archive", msg("archived"), nil, day)
	srv.CreateMailbox("INBOX.inbox")
	srv.Append("INBOX.inbox", msg("lower case"), nil, day)
	e := newEnv(t, srv)
	e.deliverTo("INBOX/Archive", "legacy") // INBOX.Archive too
	e.deliverTo("v1.2", "version")         // a level with the delimiter
	e.deliverTo("Work", "work")
	e.deliverTo("INBOX/Todo", "todo") // INBOX.Todo, whose folder is Todo
	res := e.sync()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	errs := map[string]error{}
	for _, m := range res.Mailboxes {
		if m.Err != nil {
			errs[m.Local+"|"+m.Name] = m.Err
		}
	}
	want := map[string][]string{
		"INBOX/Archive|INBOX.Archive": {"INBOX/Archive", "Archive", `"INBOX.Archive"`},
		"v1.2|":                       {"v1.2", "delimiter"},
		"inbox|INBOX.inbox":           {`"INBOX"`, `"INBOX.inbox"`},
		"INBOX/Todo|INBOX.Todo":       {"INBOX/Todo", `"INBOX.Todo"`, "folder is Todo"},
	}
	for k, words := range want {
		err, ok := errs[k]
		if !ok {
			t.Errorf("%s did not fail; failures: %v", k, errs)
			continue
		}
		for _, w := range words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %s", k, err, w)
			}
		}
	}
	if len(errs) != len(want) {
		t.Errorf("failures %v, want exactly %d", errs, len(want))
	}
	if got := serverSubjects(e, "INBOX.Work"); !slices.Equal(got, []string{"work"}) {
		t.Errorf("INBOX.Work holds %q", got)
	}
	if got := serverSubjects(e, "INBOX.Archive"); !slices.Equal(got, []string{"archived"}) {
		t.Errorf("INBOX.Archive holds %q: the colliding folder's mail went there", got)
	}
	if got := localSubjects(t, e.dir("Archive")); !slices.Equal(got, []string{"archived"}) {
		t.Errorf("folder Archive holds %q", got)
	}
}

// TestFullFolderNamesKept: an index whose folders carry the server's
// whole names (made before the prefix was left out) keeps them: nothing
// moves or downloads again, and a folder made outside the prefix fails
// with a pointer to satchel migrate-folders.
func TestFullFolderNamesKept(t *testing.T) {
	srv := otherServers[0].start(t) // ("INBOX." ".")
	srv.CreateMailbox("INBOX.Archive")
	srv.Append("INBOX.Archive", msg("archived"), nil, day)
	e := newEnv(t, srv)
	if err := e.ix.SetMeta(context.Background(), "folder_names", "full"); err != nil {
		t.Fatal(err)
	}
	e.mustSync()
	if got := localSubjects(t, e.dir("INBOX/Archive")); !slices.Equal(got, []string{"archived"}) {
		t.Fatalf("folder INBOX/Archive holds %q", got)
	}
	e.deliverTo("Projekte", "plan")
	e.deliverTo("INBOX/Notes", "note")
	res := e.sync()
	var failed []string
	for _, m := range res.Mailboxes {
		if m.Err != nil {
			failed = append(failed, m.Local)
			if !strings.Contains(m.Err.Error(), "migrate-folders") {
				t.Errorf("%s: %v", m.Local, m.Err)
			}
		}
		if m.Downloaded != 0 {
			t.Errorf("%s: %d downloaded again", m.Name, m.Downloaded)
		}
	}
	if !slices.Equal(failed, []string{"Projekte"}) {
		t.Fatalf("failed %q, want Projekte", failed)
	}
	if got := serverSubjects(e, "INBOX.Notes"); !slices.Equal(got, []string{"note"}) {
		t.Errorf("INBOX.Notes holds %q", got)
	}
}

// TestOtherNamespacesNamedOnly: on Cyrus with the personal namespace
// "INBOX." beside a shared namespace "", a shared mailbox is synced only
// when an include pattern names it ("*" does not); once an earlier sync
// had it and the configuration leaves it out, it is neither taken for
// deleted nor its folder for a new mailbox.
func TestOtherNamespacesNamedOnly(t *testing.T) {
	srv := otherServer("cyrus-inbox").start(t)
	srv.Append("INBOX", msg("hello"), nil, day)
	srv.CyrusShared("Public.Lists", imaptest.Message{Body: msg("to the list"), Date: day})
	if !slices.Contains(srv.Mailboxes(), "Public.Lists") {
		t.Fatalf("the shared mailbox is not listed: %q", srv.Mailboxes())
	}
	e := newEnv(t, srv)
	res := e.mustSync()
	for _, m := range res.Mailboxes {
		if m.Name == "Public.Lists" {
			t.Fatalf(`"*" synced the shared mailbox: %+v`, m)
		}
	}
	e.opts.Include = []string{"*", "Public.*"}
	e.mustSync()
	if got := localSubjects(t, e.dir("Public/Lists")); !slices.Equal(got, []string{"to the list"}) {
		t.Fatalf("folder Public/Lists holds %q", got)
	}
	// Left out again: nothing deleted on either side, nothing created.
	e.opts.Include = []string{"*"}
	e.opts.RemoveFolders = true
	before := srv.Mailboxes()
	res = e.mustSync()
	for _, m := range res.Mailboxes {
		if m.Name == "Public.Lists" || m.Folder != nil || m.Created {
			t.Errorf("the shared mailbox left out changed something: %+v", m)
		}
	}
	if got := localSubjects(t, e.dir("Public/Lists")); !slices.Equal(got, []string{"to the list"}) {
		t.Errorf("folder Public/Lists holds %q after it was left out", got)
	}
	if after := srv.Mailboxes(); !slices.Equal(after, before) {
		t.Errorf("server mailboxes %q, were %q", after, before)
	}
	if got := len(srv.Messages("Public.Lists")); got != 1 {
		t.Errorf("Public.Lists holds %d messages", got)
	}
}
