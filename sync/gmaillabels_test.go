package sync_test

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// labelEnv is a Gmail account synced in label mode with a real notmuch.
func labelEnv(t *testing.T, opts imaptest.GmailOptions) (*imaptest.Server, *env, *nmDB) {
	t.Helper()
	srv := imaptest.StartGmail(t, opts)
	e := newEnv(t, srv)
	n := newNotmuchDB(t, e.root)
	e.opts.GmailLabels = &satsync.GmailLabelOptions{}
	e.mirrored = []string{"[Gmail]/All Mail", "[Gmail]/Trash", "[Gmail]/Spam"}
	return srv, e, n
}

func wantLabels(t *testing.T, srv *imaptest.Server, id uint64, want ...string) {
	t.Helper()
	got, ok := srv.GmailLabels(id)
	slices.Sort(want)
	if !ok || !slices.Equal(got, want) {
		t.Fatalf("labels of %d: %q (exists %v), want %q", id, got, ok, want)
	}
}

func TestGmailLabelMode(t *testing.T) {
	srv, e, n := labelEnv(t, imaptest.GmailOptions{})
	ids := map[string]uint64{}
	add := func(name string, labels ...string) {
		ids[name] = srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody(name), Labels: labels})
	}
	add("three", `\Inbox`, "Work", "Travel")
	add("inbox", `\Inbox`)
	add("archived")
	add("nested", "Projects/Alpha", "Entwürfe")
	add("important", `\Inbox`, `\Important`)

	res := e.mustTagSync(n)
	// One file per message: only All Mail (and the empty Trash and
	// Spam) are synced.
	files := gmailFiles(t, e.root)
	for name := range ids {
		if len(files[name]) != 1 {
			t.Fatalf("%s: files %v, want one", name, files[name])
		}
	}
	if down, _ := gmailTotals(res); down != len(ids) {
		t.Fatalf("%d downloaded, want %d", down, len(ids))
	}
	if len(res.Mailboxes) != 3 {
		var names []string
		for _, m := range res.Mailboxes {
			names = append(names, m.Name)
		}
		t.Fatalf("synced mailboxes %v, want All Mail, Spam and Trash", names)
	}
	// Labels became tags, notmuch's new.tags (inbox) replaced by them.
	wantTags(t, n, "three", "inbox", "Work", "Travel", "unread")
	wantTags(t, n, "inbox", "inbox", "unread")
	wantTags(t, n, "archived", "unread")
	wantTags(t, n, "nested", "Projects/Alpha", "Entwürfe", "unread")
	wantTags(t, n, "important", "inbox", "important", "unread")
	wantLabels(t, srv, ids["archived"]) // nothing was written back

	// Tags to labels: added, removed, a new nested non-ASCII one.
	n.run("tag", "+Later", "-Travel", "--", "id:"+idOf("three"))
	n.run("tag", "+Ärger/Neu", "--", "id:"+idOf("archived"))
	n.run("tag", "-important", "--", "id:"+idOf("important")) // read-only: comes back
	e.mustTagSync(n)
	wantLabels(t, srv, ids["three"], `\Inbox`, "Later", "Work")
	wantLabels(t, srv, ids["archived"], "Ärger/Neu")
	wantLabels(t, srv, ids["important"], `\Important`, `\Inbox`)
	wantTags(t, n, "important", "inbox", "important", "unread")

	// Labels to tags: archived in the web interface, a label added.
	srv.GmailRelabel(ids["inbox"], []string{"Receipts"}, []string{`\Inbox`})
	res = e.mustTagSync(n)
	wantTags(t, n, "inbox", "Receipts", "unread")
	if down, _ := gmailTotals(res); down != 0 {
		t.Fatalf("a label change downloaded %d messages", down)
	}

	// Tagged trash: moved to the Trash, with the tag trash.
	n.run("tag", "+trash", "--", "id:"+idOf("nested"))
	e.mustTagSync(n)
	if got := srv.GmailMailboxesOf(ids["nested"]); !slices.Contains(got, "[Gmail]/Trash") || slices.Contains(got, "[Gmail]/All Mail") {
		t.Fatalf("after the tag trash, the message is in %v", got)
	}
	res = e.mustTagSync(n) // the server's move reaches the Maildir
	if down, _ := gmailTotals(res); down != 0 {
		t.Fatalf("moving to the Trash downloaded %d messages", down)
	}
	wantTags(t, n, "nested", "Projects/Alpha", "Entwürfe", "trash", "unread")
	e.assertMirror(false)

	// Trashed and reported as spam in the web interface.
	srv.GmailRelabel(ids["three"], []string{`\Trash`}, nil)
	srv.GmailRelabel(ids["archived"], []string{`\Spam`}, nil)
	res = e.mustTagSync(n)
	if down, _ := gmailTotals(res); down != 0 {
		t.Fatalf("trash and spam in the web interface downloaded %d messages", down)
	}
	e.mustTagSync(n)
	wantTags(t, n, "three", "inbox", "Later", "Work", "trash", "unread")
	wantTags(t, n, "archived", "Ärger/Neu", "spam", "unread")
	e.assertMirror(false)

	// Not spam after all: the tag taken away moves it back.
	n.run("tag", "-spam", "--", "id:"+idOf("archived"))
	e.mustTagSync(n)
	if got := srv.GmailMailboxesOf(ids["archived"]); !slices.Contains(got, "[Gmail]/All Mail") || slices.Contains(got, "[Gmail]/Spam") {
		t.Fatalf("after the tag spam was removed, the message is in %v", got)
	}

	// Deleted locally: moved to the Trash, not expunged from All Mail
	// (which Gmail would take for archiving) nor deleted for good.
	for _, p := range gmailFiles(t, e.root)["inbox"] {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	e.mustTagSync(n)
	if got := srv.GmailMailboxesOf(ids["inbox"]); !slices.Equal(got, []string{"[Gmail]/Trash"}) {
		t.Fatalf("a message deleted locally is in %v on the server, want the Trash only", got)
	}
	wantLabels(t, srv, ids["inbox"], "Receipts", `\Trash`)
	e.mustTagSync(n) // it reaches the local Trash, tagged trash
	wantTags(t, n, "inbox", "Receipts", "trash", "unread")
	e.assertMirror(false)

	// A sync with nothing to do changes nothing.
	res = e.mustTagSync(n)
	if res.Tags.TagsAdded+res.Tags.TagsRemoved+res.Tags.KeywordsAdded+res.Tags.KeywordsRemoved != 0 {
		t.Fatalf("a sync with nothing to do changed tags or labels: %+v", res.Tags)
	}
}

// TestGmailLabelsWithoutModSeq: a Gmail that leaves MODSEQ alone when a
// label changes. The incremental read misses the change; the full read
// every ScanEvery-th sync finds it, and notes that MODSEQ cannot be
// trusted for labels.
func TestGmailLabelsWithoutModSeq(t *testing.T) {
	srv, e, n := labelEnv(t, imaptest.GmailOptions{LabelsKeepModSeq: true})
	e.opts.GmailLabels.ScanEvery = 3
	id := srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody("quiet"), Labels: []string{`\Inbox`}})
	e.mustTagSync(n) // run 1: a full read
	wantTags(t, n, "quiet", "inbox", "unread")
	srv.GmailRelabel(id, []string{"Work"}, nil)
	for run := 2; run <= 3; run++ { // incremental: no MODSEQ changed
		e.mustTagSync(n)
		wantTags(t, n, "quiet", "inbox", "unread")
	}
	e.mustTagSync(n) // run 4: the full read
	wantTags(t, n, "quiet", "inbox", "Work", "unread")
	v, ok, err := e.ix.Meta(context.Background(), "gmail_labels")
	if err != nil || !ok || !strings.Contains(v, `"unreliable":true`) {
		t.Fatalf("label read state %q (%v, %v): want unreliable noted", v, ok, err)
	}
}

// TestGmailLabelsWithModSeq: where a label change raises MODSEQ (the
// emulation's default), the very next sync has it, and a sync with
// nothing new selects nothing for labels.
func TestGmailLabelsWithModSeq(t *testing.T) {
	srv, e, n := labelEnv(t, imaptest.GmailOptions{})
	id := srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody("loud"), Labels: []string{`\Inbox`}})
	e.mustTagSync(n)
	e.mustTagSync(n)
	e.mustTagSync(n)
	if regexp.MustCompile(`(?m)^C: \S+ (SELECT|EXAMINE|UID FETCH)`).MatchString(e.trace.String()) {
		t.Fatalf("a sync with nothing to do selected a mailbox:\n%s", e.trace.String())
	}
	srv.GmailRelabel(id, []string{"Work"}, []string{`\Inbox`})
	e.mustTagSync(n)
	wantTags(t, n, "loud", "Work", "unread")

	// A tag written as a label: the sync after it selects nothing, and a
	// change made elsewhere meanwhile is still found.
	n.run("tag", "+Later", "--", "id:"+idOf("loud"))
	e.mustTagSync(n)
	wantLabels(t, srv, id, "Later", "Work")
	e.mustTagSync(n)
	if regexp.MustCompile(`(?m)^C: \S+ (SELECT|EXAMINE|UID FETCH)`).MatchString(e.trace.String()) {
		t.Fatalf("the sync after a label write selected a mailbox:\n%s", e.trace.String())
	}
	srv.GmailRelabel(id, []string{"Receipts"}, nil)
	e.mustTagSync(n)
	wantTags(t, n, "loud", "Later", "Receipts", "Work", "unread")
}

// TestGmailLabelModeNewLocalMail: a message written into the Maildir's
// All Mail and tagged in notmuch is appended to All Mail and given the
// labels of its tags; a second file of a message Gmail already has is
// dropped by Gmail, and satchel keeps one copy.
func TestGmailLabelModeNewLocalMail(t *testing.T) {
	srv, e, n := labelEnv(t, imaptest.GmailOptions{})
	old := srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody("old"), Labels: []string{`\Inbox`}})
	e.mustTagSync(n)

	all := e.dir("[Gmail]/All Mail")
	if _, err := all.Deliver(context.Background(), strings.NewReader(string(gmailBody("written"))), mail.Flags{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	n.run("new", "--quiet")
	n.run("tag", "+Work", "+Projects/Beta", "-inbox", "--", "id:"+idOf("written"))
	e.mustTagSync(n)
	var found bool
	for _, m := range srv.Messages("Work") {
		if strings.Contains(string(m.Body), "Subject: written") {
			found = true
		}
	}
	if !found {
		t.Fatal("the new local message is not in Work on the server")
	}
	wantTags(t, n, "written", "Work", "Projects/Beta", "unread")
	if got := len(srv.Messages("[Gmail]/All Mail")); got != 2 {
		t.Fatalf("All Mail holds %d messages, want 2", got)
	}

	// A second file of "old" (same bytes): Gmail keeps its one message,
	// and the file stays, never uploaded again, the first one's row and
	// file untouched.
	if _, err := all.Deliver(context.Background(), strings.NewReader(string(gmailBody("old"))), mail.Flags{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	e.mustTagSync(n)
	res := e.mustTagSync(n)
	for _, m := range res.Mailboxes {
		if m.Uploaded != 0 {
			t.Fatalf("the duplicate was uploaded again: %+v", m)
		}
	}
	if got := srv.GmailMessageCount(); got != 2 {
		t.Fatalf("the account holds %d messages, want 2", got)
	}
	wantLabels(t, srv, old, `\Inbox`)
	if files := gmailFiles(t, e.root)["old"]; len(files) != 2 {
		t.Fatalf("files of old: %v, want the first and the duplicate", files)
	}
}

// TestGmailLabelModeDryRun: a dry run shows a label change as the tag it
// would write and changes nothing, so the next sync still makes it.
func TestGmailLabelModeDryRun(t *testing.T) {
	srv, e, n := labelEnv(t, imaptest.GmailOptions{})
	id := srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody("dry"), Labels: []string{`\Inbox`}})
	e.mustTagSync(n)
	srv.GmailRelabel(id, []string{"Work"}, nil)
	e.opts.DryRun = true
	res := e.mustTagSync(n)
	if res.Tags.TagsAdded != 1 {
		t.Fatalf("dry run: %d tags to add, want 1 (Work): %+v", res.Tags.TagsAdded, res.Tags.Changes)
	}
	wantTags(t, n, "dry", "inbox", "unread")
	e.opts.DryRun = false
	e.mustTagSync(n)
	wantTags(t, n, "dry", "inbox", "Work", "unread")
}

// TestGmailLabelModeVerify: verify compares tags with the labels the last
// sync recorded, not with keywords.
func TestGmailLabelModeVerify(t *testing.T) {
	srv, e, n := labelEnv(t, imaptest.GmailOptions{})
	srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody("checked"), Labels: []string{`\Inbox`, "Work"}})
	e.mustTagSync(n)
	verifyLabels := func() []satsync.TagDifference {
		t.Helper()
		mbs, err := e.ix.Mailboxes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		d, err := satsync.VerifyTags(context.Background(), satsync.TagOptions{Maildir: e.root}, &satsync.GmailLabelOptions{}, n.db, e.ix, mbs, nil)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := verifyLabels(); len(d) != 0 {
		t.Fatalf("after a sync: differences %v", d)
	}
	n.run("tag", "+Later", "-Work", "--", "id:"+idOf("checked"))
	d := verifyLabels()
	if len(d) != 1 || !slices.Equal(d[0].OnlyTags, []string{"Later"}) || !slices.Equal(d[0].OnlyKeywords, []string{"Work"}) {
		t.Fatalf("after tagging: differences %+v, want Later only in notmuch and Work only on the server", d)
	}
}
