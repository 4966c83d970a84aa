package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestMetaRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix := openIndex(t, path)
	ctx := t.Context()
	if v, ok, err := ix.Meta(ctx, "maildir_id"); ok || err != nil || v != "" {
		t.Fatalf("Meta of a new index = %q, %v, %v; want nothing", v, ok, err)
	}
	for _, v := range []string{"abc", "def"} {
		if err := ix.SetMeta(ctx, "maildir_id", v); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = openIndex(t, path)
	if v, ok, err := ix.Meta(ctx, "maildir_id"); !ok || err != nil || v != "def" {
		t.Fatalf("Meta after reopen = %q, %v, %v; want the last value written", v, ok, err)
	}
}

// listing names every file of dir with its size and mtime, and the bytes
// of each: equal listings mean nothing was created, changed or removed.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var b bytes.Buffer
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(e.Name() + " " + fi.ModTime().String() + " " + fi.Mode().String() + "\n")
		b.Write(data)
	}
	return b.String()
}

func TestOpenReadOnlyMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ix, err := OpenReadOnly(t.Context(), filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	mbs, err := ix.Mailboxes(t.Context())
	if err != nil || len(mbs) != 0 {
		t.Fatalf("Mailboxes = %v, %v; want none", mbs, err)
	}
	// The copy takes writes, and keeps them in memory.
	mb, err := ix.EnsureMailbox(t.Context(), "INBOX", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	putMessages(t, ix, mb.ID, 1, 3)
	if got, err := ix.Messages(t.Context(), mb.ID, 1); err != nil || len(got) != 3 {
		t.Fatalf("Messages = %d, %v; want 3", len(got), err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenReadOnly created %s (%v)", dir, err)
	}
}

func TestOpenReadOnlyChangesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "index.db")
	ix := openIndex(t, path)
	mb, err := ix.EnsureMailbox(t.Context(), "INBOX", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	putMessages(t, ix, mb.ID, 1, 2)
	if err := ix.SetMeta(t.Context(), "maildir_id", "abc"); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	before := listing(t, dir)

	ro, err := OpenReadOnly(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, err := ro.Meta(t.Context(), "maildir_id"); !ok || err != nil || v != "abc" {
		t.Errorf("Meta = %q, %v, %v; want abc", v, ok, err)
	}
	got, err := ro.Messages(t.Context(), mb.ID, 1)
	if err != nil || len(got) != 2 {
		t.Errorf("Messages = %d, %v; want 2", len(got), err)
	}
	if _, err := ro.EnsureMailbox(t.Context(), "Archive", "Archive"); err != nil {
		t.Fatal(err)
	}
	putMessages(t, ro, mb.ID, 3, 5)
	if err := ro.SetMeta(t.Context(), "maildir_id", "def"); err != nil {
		t.Fatal(err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if after := listing(t, dir); after != before {
		t.Fatalf("the index directory changed:\nbefore\n%q\nafter\n%q", before, after)
	}
	ix = openIndex(t, path)
	if _, ok, _ := ix.Mailbox(t.Context(), "Archive"); ok {
		t.Error("a mailbox created in the copy reached the file")
	}
	if v, _, _ := ix.Meta(t.Context(), "maildir_id"); v != "abc" {
		t.Errorf("meta in the file = %q after writing the copy, want abc", v)
	}
}

// TestOpenReadOnlyOldSchema: an index written before the last migration
// is read through an upgraded copy, and left at its version on disk.
func TestOpenReadOnlyOldSchema(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "index.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ms := embeddedMigrations(t)
	old := fstest.MapFS{}
	for _, m := range ms[:len(ms)-1] {
		old[m.name] = &fstest.MapFile{Data: []byte(m.sql)}
	}
	db := rawDB(t, path)
	if err := migrate(t.Context(), db, old); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO mailboxes (name, local_path, uidvalidity) VALUES ('INBOX', 'INBOX', 7)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := listing(t, dir)

	ro, err := OpenReadOnly(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	mb, ok, err := ro.Mailbox(t.Context(), "INBOX")
	if !ok || err != nil || mb.UIDValidity != mail.UIDValidity(7) {
		t.Errorf("Mailbox(INBOX) = %+v, %v, %v", mb, ok, err)
	}
	if _, ok, err := ro.Meta(t.Context(), "maildir_id"); ok || err != nil {
		t.Errorf("Meta of the upgraded copy = %v, %v; want none", ok, err)
	}
	ro.Close()
	if after := listing(t, dir); after != before {
		t.Fatal("reading an old index changed its directory")
	}
	if got := versionRows(t, rawDB(t, path)); !slices.Equal(got, []int{len(ms) - 1}) {
		t.Errorf("schema version on disk = %v, want [%d]", got, len(ms)-1)
	}
}

func TestOpenReadOnlyTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix := openIndex(t, path)
	ix.Close()
	db := rawDB(t, path)
	if _, err := db.ExecContext(t.Context(), `UPDATE schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := OpenReadOnly(t.Context(), path); !errors.Is(err, ErrTooNew) {
		t.Fatalf("OpenReadOnly of a newer index = %v, want ErrTooNew", err)
	}
}
