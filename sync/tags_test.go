package sync_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/notmuch"
	"github.com/satchel-mail/satchel/sync/synctest"
)

// nmDB is a real notmuch database in the test's temp dir, configured as
// the README says, reached through a configuration file given to the
// child processes only (NOTMUCH_CONFIG).
type nmDB struct {
	t     *testing.T
	root  string
	env   []string
	trace lockedBuffer
	db    *notmuch.DB
	// read counts the messages the engine read through Changed and
	// Messages.
	mu   gosync.Mutex
	read int
}

func newNotmuchDB(t *testing.T, root string) *nmDB {
	t.Helper()
	nm := synctest.NewNotmuch(t, root, "the tag sync")
	n := &nmDB{t: t, root: root, env: nm.Env}
	n.db = notmuch.Open(notmuch.Options{Env: n.env, Trace: &n.trace})
	n.run("new", "--quiet")
	return n
}

func (n *nmDB) run(args ...string) string {
	n.t.Helper()
	cmd := exec.Command("notmuch", args...)
	cmd.Env = append(os.Environ(), n.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		n.t.Fatalf("notmuch %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// tags returns the sorted tags of the message with this Message-ID.
func (n *nmDB) tags(id string) []string {
	n.t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(n.run("search", "--output=tags", "--format=json", "--exclude=false", "id:"+id)), &out); err != nil {
		n.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// calls returns the notmuch commands the engine ran, one per line.
func (n *nmDB) calls() []string {
	return strings.Split(strings.TrimSpace(n.trace.String()), "\n")
}

// counted wraps the real database, counting the messages read.
type counted struct {
	satsync.TagDB
	n *nmDB
}

func (c counted) Changed(ctx context.Context, dir string, since uint64) ([]satsync.TaggedMessage, error) {
	m, err := c.TagDB.Changed(ctx, dir, since)
	c.n.mu.Lock()
	c.n.read += len(m)
	c.n.mu.Unlock()
	return m, err
}

func (c counted) Messages(ctx context.Context, ids []string) ([]satsync.TaggedMessage, error) {
	m, err := c.TagDB.Messages(ctx, ids)
	c.n.mu.Lock()
	c.n.read += len(m)
	c.n.mu.Unlock()
	return m, err
}

// tagSync runs one sync with tags on, against n.
func (e *env) tagSync(n *nmDB) satsync.Result {
	e.t.Helper()
	e.trace.Reset()
	n.trace.Reset()
	n.read = 0
	d := e.deps()
	d.TagDB, d.TagIndex = counted{n.db, n}, e.ix
	opts := e.opts
	if opts.Tags == nil {
		opts.Tags = &satsync.TagOptions{}
	}
	opts.Tags.Maildir = e.root
	return satsync.Account(context.Background(), opts, d)
}

func (e *env) mustTagSync(n *nmDB) satsync.Result {
	e.t.Helper()
	res := e.tagSync(n)
	if res.Err != nil {
		e.t.Fatalf("sync: %v", res.Err)
	}
	for _, m := range res.Mailboxes {
		if m.Err != nil {
			e.t.Fatalf("sync %s: %v", m.Name, m.Err)
		}
	}
	if res.Tags == nil {
		e.t.Fatal("no tag result: the tag sync did not run")
	}
	if res.Tags.Err != nil {
		e.t.Fatalf("tag sync: %v", res.Tags.Err)
	}
	return res
}

// keywords returns the server's keywords of a message (flags without a
// backslash, $Forwarded aside), sorted.
func keywords(t *testing.T, srv *imaptest.Server, mailbox, subject string) []string {
	t.Helper()
	m, ok := serverMsg(srv, mailbox, subject)
	if !ok {
		t.Fatalf("%s: no message %q on the server", mailbox, subject)
	}
	var out []string
	for _, f := range m.Flags {
		if !strings.HasPrefix(f, `\`) && f != "$Forwarded" {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func idOf(subject string) string { return strings.ReplaceAll(subject, " ", ".") + "@example.org" }

func wantTags(t *testing.T, n *nmDB, subject string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := n.tags(idOf(subject)); !slices.Equal(got, want) {
		t.Fatalf("tags of %q: %q, want %q", subject, got, want)
	}
}

func wantKeywords(t *testing.T, srv *imaptest.Server, mailbox, subject string, want ...string) {
	t.Helper()
	// Keywords are case-insensitive; go-imap's server keeps them in lower
	// case.
	want = slices.Clone(want)
	for i := range want {
		want[i] = strings.ToLower(want[i])
	}
	slices.Sort(want)
	got := keywords(t, srv, mailbox, subject)
	for i := range got {
		got[i] = strings.ToLower(got[i])
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("keywords of %q in %s: %q, want %q", subject, mailbox, got, want)
	}
}

// TestTagsBothWays is the story of one account: new mail carrying
// another client's keywords is tagged in the sync that downloads it; a
// tag added in notmuch reaches the server in one sync, and removals go
// both ways; notmuch's own tags never leave; Work and work are one
// label; a compacted database changes nothing; a sync with nothing to do
// runs notmuch once.
func TestTagsBothWays(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			one := srv.Append("INBOX", msg("one"), []string{"$label1", "$Junk"}, day)
			two := srv.Append("INBOX", msg("two"), []string{`\Seen`}, day)
			e := newEnv(t, srv)
			n := newNotmuchDB(t, e.root)

			// New mail is indexed in the same sync, its keywords tags.
			res := e.mustTagSync(n)
			wantTags(t, n, "one", "inbox", "unread", "$label1", "spam")
			wantTags(t, n, "two", "inbox")
			if !res.Tags.Full {
				t.Error("the first sync with tags was not a full comparison")
			}

			// A tag added in notmuch is a keyword after one sync; the
			// local tags beside it stay local.
			n.run("tag", "+work", "+todo", "+attachment", "+new", "--", "id:"+idOf("two"))
			e.mustTagSync(n)
			wantKeywords(t, srv, "INBOX", "two", "work", "todo")
			wantTags(t, n, "two", "inbox", "work", "todo", "attachment", "new")

			// Removals both ways: in notmuch, and by another client.
			n.run("tag", "-todo", "--", "id:"+idOf("two"))
			srv.SetFlags("INBOX", one, "$label1")
			e.mustTagSync(n)
			wantKeywords(t, srv, "INBOX", "two", "work")
			wantTags(t, n, "one", "inbox", "unread", "$label1")

			// Keywords are case-insensitive: another client's Work is
			// the tag work, and nothing flips.
			// (Dovecot and go-imap's server keep the spelling they
			// stored first.)
			srv.SetFlags("INBOX", two, `\Seen`, "Work")
			n.run("tag", "+WORK", "--", "id:"+idOf("two"))
			for range 2 {
				res = e.mustTagSync(n)
				wantTags(t, n, "two", "inbox", "work", "WORK", "attachment", "new")
				if kw := keywords(t, srv, "INBOX", "two"); len(kw) != 1 || !strings.EqualFold(kw[0], "work") {
					t.Fatalf("keywords of two: %q, want one spelling of work", kw)
				}
			}
			if tr := res.Tags; tr.TagsAdded+tr.TagsRemoved+tr.KeywordsAdded+tr.KeywordsRemoved != 0 {
				t.Fatalf("a settled sync changed tags: %s", tr)
			}

			// A sync with nothing to do runs notmuch once.
			e.mustTagSync(n)
			if calls := n.calls(); len(calls) != 1 || !strings.Contains(calls[0], "count --lastmod") {
				t.Fatalf("a sync with nothing to do ran notmuch %d times: %q", len(calls), calls)
			}

			// notmuch compact gives the database a new UUID: one full
			// comparison, which changes nothing.
			n.run("compact", "--quiet")
			res = e.mustTagSync(n)
			if tr := res.Tags; !tr.Full || tr.TagsAdded+tr.TagsRemoved+tr.KeywordsAdded+tr.KeywordsRemoved != 0 {
				t.Fatalf("after notmuch compact: full %v, changes %s", tr.Full, tr)
			}
			wantTags(t, n, "one", "inbox", "unread", "$label1")
			wantKeywords(t, srv, "INBOX", "one", "$label1")
			e.mustTagSync(n)
			if calls := n.calls(); len(calls) != 1 {
				t.Fatalf("the sync after the full comparison ran notmuch %d times: %q", len(calls), calls)
			}
		})
	}
}
