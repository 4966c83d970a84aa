package sync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
	"github.com/satchel-mail/satchel/sync/tagmap"
)

// TestTagsOddNames: tags no keyword can spell are escaped reversibly
// (a space, non-ASCII), tags that cannot be synced (a control character,
// too long) stay local, and a message with 10,000 keywords, some very
// long, neither fails the sync nor floods notmuch.
func TestTagsOddNames(t *testing.T) {
	srv := imaptest.StartMemory(t)
	var many []string
	for i := range 10000 {
		many = append(many, fmt.Sprintf("kw%05d", i))
	}
	many = append(many, strings.Repeat("L", 300))
	mu := srv.Append("INBOX", msg("many"), nil, day)
	for i := 0; i < len(many); i += 500 {
		srv.AddFlags("INBOX", mu, many[i:min(i+500, len(many))]...)
	}
	srv.Append("INBOX", msg("odd"), nil, day)
	e := newEnv(t, srv)
	n := newNotmuchDB(t, e.root)
	e.mustTagSync(n)
	if got := n.tags(idOf("many")); len(got) > 256+2 || len(got) < 100 {
		t.Fatalf("10,000 keywords became %d tags", len(got))
	}

	// Written through notmuch tag --batch, hex-encoded (notmuch-tag(1)).
	err := n.db.Tag(context.Background(), []satsync.TagChange{{ID: idOf("odd"), Add: []string{"to do", "über", "a\x01b", strings.Repeat("ü", 90)}}})
	if err != nil {
		t.Fatal(err)
	}
	e.mustTagSync(n)
	wantKeywords(t, srv, "INBOX", "odd", "to=20do", "=C3=BCber")
	e.mustTagSync(n)
	wantTags(t, n, "odd", "inbox", "unread", "to do", "über", "a\x01b", strings.Repeat("ü", 90))

	// Another client's keyword that is no escape comes back as it was.
	u := srv.Messages("INBOX")[1].UID
	srv.AddFlags("INBOX", u, "a=b")
	e.mustTagSync(n)
	wantTags(t, n, "odd", "inbox", "unread", "to do", "über", "a\x01b", strings.Repeat("ü", 90), "=a=b")
	e.mustTagSync(n)
	wantKeywords(t, srv, "INBOX", "odd", "to=20do", "=C3=BCber", "a=b")
	if kw, _ := tagmap.EncodeTag("=a=b"); kw != "a=b" {
		t.Fatalf("tag =a=b is keyword %q", kw)
	}
}

// TestTagsDryRunAndRenames: --dry-run reports the tag changes of both
// sides and makes none; a file notmuch renames for its flags
// (maildir.synchronize_flags) is a flag change, never a deletion and a
// new message.
func TestTagsDryRunAndRenames(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			uid := srv.Append("INBOX", msg("m"), nil, day)
			e := newEnv(t, srv)
			n := newNotmuchDB(t, e.root)
			e.mustTagSync(n)

			n.run("tag", "+work", "-unread", "--", "id:"+idOf("m"))
			srv.AddFlags("INBOX", uid, "$label3")
			e.opts.DryRun = true
			res := e.mustTagSync(n)
			out := res.Tags.String()
			if !strings.Contains(out, "keywords +work") || !strings.Contains(out, "notmuch tag +$label3") {
				t.Fatalf("dry run printed:\n%s", out)
			}
			wantKeywords(t, srv, "INBOX", "m", "$label3")
			wantTags(t, n, "m", "inbox", "work")

			e.opts.DryRun = false
			res = e.mustTagSync(n)
			for _, m := range res.Mailboxes {
				if m.Downloaded+m.Uploaded+m.Deleted+m.Removed != 0 {
					t.Fatalf("a renamed file was taken for new mail or a deletion: %+v", m)
				}
			}
			wantKeywords(t, srv, "INBOX", "m", "$label3", "work")
			if f, _ := serverMsg(srv, "INBOX", "m"); !strings.Contains(strings.Join(f.Flags, " "), `\Seen`) {
				t.Fatalf("flags %q: notmuch's -unread did not reach the server", f.Flags)
			}
			wantTags(t, n, "m", "inbox", "work", "$label3")
			e.assertMirror(false)
		})
	}
}

// TestVerifyTags: verify reports a tag the server lacks and a keyword
// notmuch lacks, and nothing once a sync has run.
func TestVerifyTags(t *testing.T) {
	srv := imaptest.StartMemory(t)
	uid := srv.Append("INBOX", msg("v"), nil, day)
	e := newEnv(t, srv)
	n := newNotmuchDB(t, e.root)
	e.mustTagSync(n)
	verify := func() []satsync.TagDifference {
		t.Helper()
		mbs, err := e.ix.Mailboxes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		server := func(mailbox string, u uint32) (mail.Flags, bool) {
			m, ok := serverMsg(srv, "INBOX", "v")
			return mail.NewFlags(m.Flags...), ok && m.UID == u
		}
		d, err := satsync.VerifyTags(context.Background(), satsync.TagOptions{Maildir: e.root}, nil, n.db, e.ix, mbs,
			func(mailbox string, u mail.UID) (mail.Flags, bool) { return server(mailbox, uint32(u)) })
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := verify(); len(d) != 0 {
		t.Fatalf("differences after a sync: %v", d)
	}
	n.run("tag", "+local", "--", "id:"+idOf("v"))
	srv.AddFlags("INBOX", uid, "remote")
	d := verify()
	if len(d) != 1 || fmt.Sprint(d[0].OnlyTags) != "[local]" || fmt.Sprint(d[0].OnlyKeywords) != "[remote]" {
		t.Fatalf("differences: %v", d)
	}
	e.mustTagSync(n)
	if d := verify(); len(d) != 0 {
		t.Fatalf("differences after the sync: %v", d)
	}
}

// TestTagsOneWay: sync.direction pull never changes the server, push
// never the Maildir's side: a tag added in notmuch waits through a pull
// and reaches the server with the next two-way sync; a keyword added on
// the server waits through a push.
func TestTagsOneWay(t *testing.T) {
	srv := imaptest.StartMemory(t)
	uid := srv.Append("INBOX", msg("w"), nil, day)
	e := newEnv(t, srv)
	n := newNotmuchDB(t, e.root)
	e.mustTagSync(n)

	n.run("tag", "+later", "--", "id:"+idOf("w"))
	e.opts.Direction = "pull"
	e.mustTagSync(n)
	e.mustTagSync(n)
	wantKeywords(t, srv, "INBOX", "w")

	srv.AddFlags("INBOX", uid, "fromserver")
	e.opts.Direction = "push"
	e.mustTagSync(n)
	wantTags(t, n, "w", "inbox", "unread", "later")

	e.opts.Direction = ""
	e.mustTagSync(n)
	wantKeywords(t, srv, "INBOX", "w", "later", "fromserver")
	wantTags(t, n, "w", "inbox", "unread", "later", "fromserver")
}
