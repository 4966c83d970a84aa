package sync_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

// TestTagsCopies: one Message-ID in two mailboxes is one notmuch message.
// A tag reaches both copies; a keyword another client sets on one copy
// becomes the tag and so reaches the other; a removal on one copy
// removes the label from notmuch and from the other copy.
func TestTagsCopies(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			srv.CreateMailbox("Archive")
			srv.Append("INBOX", msg("copy"), nil, day)
			arch := srv.Append("Archive", msg("copy"), nil, day)
			e := newEnv(t, srv)
			n := newNotmuchDB(t, e.root)
			e.mustTagSync(n)

			n.run("tag", "+project", "--", "id:"+idOf("copy"))
			e.mustTagSync(n)
			wantKeywords(t, srv, "INBOX", "copy", "project")
			wantKeywords(t, srv, "Archive", "copy", "project")

			srv.AddFlags("Archive", arch, "$label2")
			e.mustTagSync(n)
			wantTags(t, n, "copy", "inbox", "unread", "project", "$label2")
			wantKeywords(t, srv, "INBOX", "copy", "project", "$label2")

			srv.SetFlags("Archive", arch, "$label2")
			e.mustTagSync(n)
			wantTags(t, n, "copy", "inbox", "unread", "$label2")
			wantKeywords(t, srv, "INBOX", "copy", "$label2")
			wantKeywords(t, srv, "Archive", "copy", "$label2")
		})
	}
}

// TestTagsRefused: a server that keeps a limited number of keywords per
// mailbox (Cyrus 128) takes a STORE of one more and leaves it out of the
// flags it answers with. The tag stays in notmuch, the refusal is
// reported once and remembered, and later syncs neither send it again
// nor take its absence for a removal.
func TestTagsRefused(t *testing.T) {
	srv := imaptest.StartMemoryWith(t, imaptest.MemoryOptions{MaxKeywords: 4})
	srv.Append("INBOX", msg("full"), []string{"k0", "k1", "k2", "k3"}, day)
	srv.Append("INBOX", msg("more"), nil, day)
	e := newEnv(t, srv)
	n := newNotmuchDB(t, e.root)
	e.mustTagSync(n)
	wantTags(t, n, "full", "inbox", "unread", "k0", "k1", "k2", "k3")

	n.run("tag", "+extra", "--", "id:"+idOf("more"))
	res := e.mustTagSync(n)
	if got := res.Tags.Refused["INBOX"]; !slices.Equal(got, []string{"extra"}) {
		t.Fatalf("refused keywords reported %q, want [extra]", got)
	}
	wantKeywords(t, srv, "INBOX", "more")
	wantTags(t, n, "more", "inbox", "unread", "extra")

	n.run("tag", "+other", "--", "id:"+idOf("more"))
	res = e.mustTagSync(n)
	if strings.Contains(strings.ToLower(e.trace.String()), "extra") {
		t.Fatal("a refused keyword was sent again")
	}
	if got := res.Tags.Refused["INBOX"]; !slices.Equal(got, []string{"other"}) {
		t.Fatalf("refused keywords reported %q, want [other]", got)
	}
	for range 2 {
		res = e.mustTagSync(n)
		wantTags(t, n, "more", "inbox", "unread", "extra", "other")
		if len(res.Tags.Refused) != 0 || res.Tags.KeywordsAdded != 0 {
			t.Fatalf("a refusal was reported again: %s", res.Tags)
		}
	}
	// A refused tag removed in notmuch is simply gone.
	n.run("tag", "-extra", "--", "id:"+idOf("more"))
	e.mustTagSync(n)
	wantTags(t, n, "more", "inbox", "unread", "other")
}

// TestTagsDovecotManyKeywords: Dovecot's Maildir names 26 keywords per
// mailbox in its file names (dovecot-keywords) and keeps more in its own
// index: a 27th and a 30th are stored, not refused.
func TestTagsDovecotManyKeywords(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	full := srv.Append("INBOX", msg("full"), nil, day)
	for i := range 26 {
		srv.AddFlags("INBOX", full, fmt.Sprintf("k%02d", i))
	}
	srv.Append("INBOX", msg("more"), nil, day)
	e := newEnv(t, srv)
	n := newNotmuchDB(t, e.root)
	e.mustTagSync(n)
	if got := n.tags(idOf("full")); len(got) != 28 {
		t.Fatalf("26 keywords became %d tags (with inbox, unread): %q", len(got), got)
	}
	n.run("tag", "+x27", "+x28", "+x29", "+x30", "--", "id:"+idOf("more"))
	res := e.mustTagSync(n)
	if len(res.Tags.Refused) != 0 {
		t.Fatalf("Dovecot refused %q", res.Tags.Refused)
	}
	wantKeywords(t, srv, "INBOX", "more", "x27", "x28", "x29", "x30")
}

// TestTagsTwoAccounts: two accounts whose Maildirs are below one notmuch
// database sync at the same time; each reads and writes only its own
// messages, though one Message-ID is in both.
func TestTagsTwoAccounts(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Mail")
	srvA := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srvB := imaptest.StartMemory(t)
	srvA.Append("INBOX", msg("alpha"), []string{"$label1"}, day)
	srvB.Append("INBOX", msg("beta"), []string{"$label2"}, day)
	a, b := newEnv(t, srvA), newEnv(t, srvB)
	a.root, b.root = filepath.Join(root, "a"), filepath.Join(root, "b")
	n := newNotmuchDB(t, root)
	both := func() {
		t.Helper()
		var wg gosync.WaitGroup
		res := make([]satsync.Result, 2)
		for i, e := range []*env{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := e.deps()
				d.TagDB, d.TagIndex = n.db, e.ix
				opts := e.opts
				opts.Tags = &satsync.TagOptions{Maildir: e.root}
				res[i] = satsync.Account(context.Background(), opts, d)
			}()
		}
		wg.Wait()
		for _, r := range res {
			if r.Err != nil || r.Tags == nil || r.Tags.Err != nil || r.Failed() > 0 {
				t.Fatalf("sync: %v, tags %+v", r.Err, r.Tags)
			}
		}
	}
	both()
	wantTags(t, n, "alpha", "inbox", "unread", "$label1")
	wantTags(t, n, "beta", "inbox", "unread", "$label2")

	n.run("tag", "+forA", "--", "id:"+idOf("alpha"))
	n.run("tag", "+forB", "--", "id:"+idOf("beta"))
	both()
	wantKeywords(t, srvA, "INBOX", "alpha", "$label1", "forA")
	wantKeywords(t, srvB, "INBOX", "beta", "$label2", "forB")

	// Each account's queries name its own directory.
	n.trace.Reset()
	a.mustTagSync(n)
	for _, c := range n.calls() {
		if strings.Contains(c, "path:") && !strings.Contains(c, `path:"a/**"`) {
			t.Fatalf("account a ran %q", c)
		}
	}
}

// TestTagsReadOnlyChanges: after 100 tag changes among 400 tagged
// messages, a sync reads the tags of those 100 messages only, with one
// query scoped by revision; the server's changes are read from the
// rows the engine wrote.
func TestTagsReadOnlyChanges(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			var msgs []imaptest.Message
			for i := range 400 {
				msgs = append(msgs, imaptest.Message{Flags: []string{"$label1"}, Date: day, Body: msg(fmt.Sprintf("m%03d", i))})
			}
			uids := srv.AppendMany("INBOX", msgs)
			e := newEnv(t, srv)
			n := newNotmuchDB(t, e.root)
			e.mustTagSync(n)
			e.mustTagSync(n)

			var batch strings.Builder
			for i := range 100 {
				fmt.Fprintf(&batch, "+todo -- id:%s\n", idOf(fmt.Sprintf("m%03d", i*4)))
			}
			tagBatch(t, n, batch.String())
			res := e.mustTagSync(n)
			if res.Tags.KeywordsAdded != 100 {
				t.Fatalf("%d keywords added, want 100", res.Tags.KeywordsAdded)
			}
			if n.read != 100 {
				t.Fatalf("read %d messages' tags after 100 changes among 400; calls %q", n.read, n.calls())
			}
			for _, c := range n.calls() {
				if strings.Contains(c, "show") && !strings.Contains(c, "lastmod:") {
					t.Fatalf("a read not scoped by revision: %q", c)
				}
			}

			// The other way: 10 keywords removed by another client.
			for i := range 10 {
				srv.SetFlags("INBOX", uids[i*4+1])
			}
			// (Its tag writes are read back once, so that the next sync
			// starts past them.)
			res = e.mustTagSync(n)
			if res.Tags.TagsRemoved != 10 || n.read > 10+10 {
				t.Fatalf("after 10 server changes: %d tags removed, %d messages read", res.Tags.TagsRemoved, n.read)
			}
		})
	}
}

func tagBatch(t *testing.T, n *nmDB, lines string) {
	t.Helper()
	if err := n.db.Tag(context.Background(), parseBatch(lines)); err != nil {
		t.Fatal(err)
	}
}

// parseBatch reads "+tag ... -- id:X" lines (plain tags only).
func parseBatch(lines string) []satsync.TagChange {
	var out []satsync.TagChange
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		ops, q, _ := strings.Cut(l, " -- ")
		c := satsync.TagChange{ID: strings.TrimPrefix(q, "id:")}
		for _, o := range strings.Fields(ops) {
			if strings.HasPrefix(o, "+") {
				c.Add = append(c.Add, o[1:])
			} else {
				c.Remove = append(c.Remove, o[1:])
			}
		}
		out = append(out, c)
	}
	return out
}
