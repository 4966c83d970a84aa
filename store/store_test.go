package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

const bigModSeq = mail.ModSeq(1<<63 + 5)

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestOpenFileModes(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "state", "satchel")
	path := filepath.Join(dir, "index.db")
	ix := openIndex(t, path)
	mb, err := ix.EnsureMailbox(t.Context(), "INBOX", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	putMessages(t, ix, mb.ID, 1, 1)

	for _, d := range []string{filepath.Join(root, "state"), dir} {
		if got := perm(t, d); got != 0o700 {
			t.Errorf("mode of %s = %o, want 700", d, got)
		}
	}
	if got := perm(t, path); got != 0o600 {
		t.Errorf("mode of index = %o, want 600", got)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no WAL file while the index is open: %v", err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if got := perm(t, path+suffix); got != 0o600 {
			t.Errorf("mode of %s = %o, want 600", suffix, got)
		}
	}
}

func TestOpenTightensWALModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix := openIndex(t, path)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	// An index made group-readable by hand: SQLite would give the -wal
	// and -shm files the same mode.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	ix = openIndex(t, path)
	for _, suffix := range []string{"-wal", "-shm"} {
		if got := perm(t, path+suffix); got != 0o600 {
			t.Errorf("mode of %s = %o, want 600", suffix, got)
		}
	}
	if ix.Path() != path {
		t.Errorf("Path() = %q, want %q", ix.Path(), path)
	}
}

func TestOpenPathNeedingEscapes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%chars")
	path := filepath.Join(dir, "index.db")
	ix := openIndex(t, path)
	if _, err := ix.EnsureMailbox(t.Context(), "INBOX", "INBOX"); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "index.db" {
		t.Fatalf("files in %s = %v, want only index.db", dir, entries)
	}
	ix = openIndex(t, path)
	if _, ok, err := ix.Mailbox(t.Context(), "INBOX"); !ok || err != nil {
		t.Fatalf("Mailbox(INBOX) = %v, %v after reopen", ok, err)
	}
}

func TestPragmasOnEveryConnection(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	// Hold several connections at once, so the pool has to open new ones.
	for i := range 3 {
		conn, err := ix.db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, p := range []struct {
			pragma, want string
		}{
			{"foreign_keys", "1"},
			{"journal_mode", "wal"},
			{"synchronous", "2"}, // FULL
			{"busy_timeout", "10000"},
		} {
			var got string
			if err := conn.QueryRowContext(t.Context(), "PRAGMA "+p.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != p.want {
				t.Errorf("connection %d: PRAGMA %s = %s, want %s", i, p.pragma, got, p.want)
			}
		}
	}
}

func TestMailboxRoundTrip(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()

	mb, err := ix.EnsureMailbox(ctx, "Archiv/Größe", "Archiv.Gr&APY-sse")
	if err != nil {
		t.Fatal(err)
	}
	fresh := Mailbox{ID: mb.ID, Name: "Archiv/Größe", LocalPath: "Archiv.Gr&APY-sse"}
	if !mb.LastSync.IsZero() || mb != fresh {
		t.Fatalf("new mailbox = %+v, want %+v with a zero LastSync", mb, fresh)
	}

	want := Mailbox{
		ID:            mb.ID,
		Name:          mb.Name,
		LocalPath:     "Archive.Size",
		UIDValidity:   math.MaxUint32,
		UIDNext:       math.MaxUint32,
		HighestModSeq: bigModSeq,
		Messages:      math.MaxUint32,
		Mode:          mail.ModeCondStore,
		LastSync:      time.Date(2024, 2, 29, 23, 59, 58, 0, time.UTC),
	}
	if err := ix.Update(ctx, func(tx *Tx) error { return tx.SaveMailbox(want) }); err != nil {
		t.Fatal(err)
	}
	got, ok, err := ix.Mailbox(ctx, mb.Name)
	if err != nil || !ok {
		t.Fatalf("Mailbox = %v, %v", ok, err)
	}
	if got != want {
		t.Errorf("saved mailbox read back as\n%+v\nwant\n%+v", got, want)
	}

	// Back to "never synced": the zero time must not be stored as its
	// (negative) Unix value.
	want.LastSync = time.Time{}
	want.Mode = ""
	if err := ix.Update(ctx, func(tx *Tx) error { return tx.SaveMailbox(want) }); err != nil {
		t.Fatal(err)
	}
	var raw int64
	if err := ix.db.QueryRowContext(ctx, `SELECT last_sync FROM mailboxes WHERE id = ?`, mb.ID).Scan(&raw); err != nil || raw != 0 {
		t.Errorf("last_sync column = %d, %v; want 0", raw, err)
	}
	if got, _, _ = ix.Mailbox(ctx, mb.Name); got != want {
		t.Errorf("mailbox read back as %+v, want %+v", got, want)
	}
}

func TestMailboxesAndEnsure(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()

	if mbs, err := ix.Mailboxes(ctx); err != nil || len(mbs) != 0 {
		t.Fatalf("Mailboxes of a new index = %v, %v", mbs, err)
	}
	if _, ok, err := ix.Mailbox(ctx, "INBOX"); ok || err != nil {
		t.Fatalf("Mailbox(INBOX) of a new index = %v, %v; want false, nil", ok, err)
	}

	ids := map[string]int64{}
	for _, name := range []string{"b", "Ä", "INBOX", "a"} {
		mb, err := ix.EnsureMailbox(ctx, name, "local-"+name)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = mb.ID
	}
	again, err := ix.EnsureMailbox(ctx, "b", "elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != ids["b"] || again.LocalPath != "local-b" {
		t.Errorf("EnsureMailbox of an existing name = %+v, want id %d, local path local-b", again, ids["b"])
	}
	if _, err := ix.EnsureMailbox(ctx, "c", "local-a"); err == nil {
		t.Error("EnsureMailbox with another mailbox's local path succeeded")
	}

	mbs, err := ix.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mb := range mbs {
		names = append(names, mb.Name)
		if mb.ID != ids[mb.Name] {
			t.Errorf("mailbox %s has id %d, want %d", mb.Name, mb.ID, ids[mb.Name])
		}
	}
	if fmt.Sprint(names) != "[INBOX a b Ä]" {
		t.Errorf("Mailboxes names = %v, want [INBOX a b Ä]", names)
	}

	err = ix.Update(ctx, func(tx *Tx) error { return tx.SaveMailbox(Mailbox{ID: 9999, Name: "gone", LocalPath: "gone"}) })
	if !errors.Is(err, ErrNoMailbox) {
		t.Errorf("SaveMailbox of a missing row = %v, want ErrNoMailbox", err)
	}
}

func equalMessage(a, b Message) bool {
	return a.UIDValidity == b.UIDValidity && a.UID == b.UID && a.Key == b.Key &&
		a.Flags.Equal(b.Flags) && a.ModSeq == b.ModSeq && a.Size == b.Size &&
		a.InternalDate.Equal(b.InternalDate) && a.InternalDate.Location() == b.InternalDate.Location() &&
		a.MessageID == b.MessageID
}

func TestMessageRoundTrip(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()
	mb, err := ix.EnsureMailbox(ctx, "INBOX", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	const uidv = mail.UIDValidity(math.MaxUint32)
	msgs := []Message{
		{
			UIDValidity:  uidv,
			UID:          math.MaxUint32,
			Key:          "1700000000.M1P2.host",
			Flags:        mail.NewFlags(`\Seen`, `$Junk`, `\Flagged`, `NonJunk`, `$Forwarded`),
			ModSeq:       bigModSeq,
			Size:         1<<40 + 3,
			InternalDate: time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC),
			MessageID:    "<abc@example.org>",
		},
		// Every field at its zero value, the UID aside.
		{UIDValidity: uidv, UID: 1, Key: "k1"},
	}
	if err := ix.Update(ctx, func(tx *Tx) error {
		for _, m := range msgs {
			if err := tx.PutMessage(mb.ID, m); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	got, err := ix.Messages(ctx, mb.ID, uidv)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("Messages returned %d rows, want %d", len(got), len(msgs))
	}
	for _, m := range msgs {
		if g, ok := got[m.UID]; !ok || !equalMessage(g, m) {
			t.Errorf("message %d read back as\n%+v\nwant\n%+v", m.UID, g, m)
		}
	}
	if !got[1].InternalDate.IsZero() {
		t.Errorf("zero InternalDate read back as %v", got[1].InternalDate)
	}

	var flags string
	err = ix.db.QueryRowContext(ctx, `SELECT flags FROM messages WHERE uid = ?`, int64(math.MaxUint32)).Scan(&flags)
	if err != nil || flags != `$Forwarded $Junk NonJunk \Flagged \Seen` {
		t.Errorf("stored flags = %q, %v; want the canonical form", flags, err)
	}

	// Another UIDVALIDITY is another set of messages.
	if other, err := ix.Messages(ctx, mb.ID, uidv-1); err != nil || len(other) != 0 {
		t.Errorf("Messages under another UIDVALIDITY = %v, %v; want none", other, err)
	}
}

func TestPutMessageReplaces(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()
	mb, _ := ix.EnsureMailbox(ctx, "INBOX", "INBOX")
	first := Message{UIDValidity: 7, UID: 3, Key: "old", Flags: mail.NewFlags(`\Seen`), Size: 10}
	second := Message{UIDValidity: 7, UID: 3, Key: "new", Flags: mail.NewFlags(`\Draft`), ModSeq: 9, Size: 20, MessageID: "<x@y>"}
	for _, m := range []Message{first, second} {
		if err := ix.Update(ctx, func(tx *Tx) error { return tx.PutMessage(mb.ID, m) }); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ix.Messages(ctx, mb.ID, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !equalMessage(got[3], second) {
		t.Errorf("after replacing, Messages = %+v, want only %+v", got, second)
	}
	// The replaced row's key is free again.
	err = ix.Update(ctx, func(tx *Tx) error {
		return tx.PutMessage(mb.ID, Message{UIDValidity: 7, UID: 4, Key: "old"})
	})
	if err != nil {
		t.Errorf("PutMessage with the key given up by a replaced row: %v", err)
	}
	err = ix.Update(ctx, func(tx *Tx) error { return tx.PutMessage(mb.ID, Message{UIDValidity: 7, Key: "zero"}) })
	if err == nil {
		t.Error("PutMessage with UID 0 succeeded")
	}
}

func TestSetFlagsAndDelete(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()
	mb, _ := ix.EnsureMailbox(ctx, "INBOX", "INBOX")
	m := Message{UIDValidity: 5, UID: 10, Key: "k10", Flags: mail.NewFlags(`\Seen`), ModSeq: 1, Size: 100, MessageID: "<m@x>"}
	newFlags := mail.NewFlags(`\Answered`, `$Label1`)
	err := ix.Update(ctx, func(tx *Tx) error {
		if err := tx.PutMessage(mb.ID, m); err != nil {
			return err
		}
		return tx.SetFlags(mb.ID, 5, 10, newFlags, bigModSeq)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := ix.Messages(ctx, mb.ID, 5)
	want := m
	want.Flags, want.ModSeq = newFlags, bigModSeq
	if !equalMessage(got[10], want) {
		t.Errorf("after SetFlags, message = %+v, want %+v", got[10], want)
	}

	// SetFlags to the flags already stored still finds the row.
	err = ix.Update(ctx, func(tx *Tx) error { return tx.SetFlags(mb.ID, 5, 10, newFlags, bigModSeq) })
	if err != nil {
		t.Errorf("SetFlags with unchanged values: %v", err)
	}
	for _, tc := range []struct {
		uidv mail.UIDValidity
		uid  mail.UID
	}{{5, 11}, {6, 10}} {
		err = ix.Update(ctx, func(tx *Tx) error { return tx.SetFlags(mb.ID, tc.uidv, tc.uid, newFlags, 0) })
		if !errors.Is(err, ErrNoMessage) {
			t.Errorf("SetFlags(uidvalidity %d, uid %d) = %v, want ErrNoMessage", tc.uidv, tc.uid, err)
		}
	}

	err = ix.Update(ctx, func(tx *Tx) error {
		if err := tx.DeleteMessage(mb.ID, 5, 10); err != nil {
			return err
		}
		return tx.DeleteMessage(mb.ID, 5, 10) // absent now
	})
	if err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if n, err := ix.CountMessages(ctx, mb.ID); err != nil || n != 0 {
		t.Errorf("CountMessages after delete = %d, %v; want 0", n, err)
	}
}

var errStep = errors.New("step failed")

func TestUpdateRollsBackOnError(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()
	mb, _ := ix.EnsureMailbox(ctx, "INBOX", "INBOX")
	putMessages(t, ix, mb.ID, 1, 1)

	err := ix.Update(ctx, func(tx *Tx) error {
		for uid := mail.UID(2); uid <= 5; uid++ {
			if err := tx.PutMessage(mb.ID, Message{UIDValidity: 1, UID: uid, Key: fmt.Sprint("k", uid)}); err != nil {
				return err
			}
		}
		if err := tx.SetFlags(mb.ID, 1, 1, mail.NewFlags(`\Deleted`), 42); err != nil {
			return err
		}
		saved := mb
		saved.UIDValidity, saved.UIDNext, saved.LastSync = 1, 6, time.Now()
		if err := tx.SaveMailbox(saved); err != nil {
			return err
		}
		other, err := ix.Messages(ctx, mb.ID, 1)
		if err != nil || len(other) != 1 {
			return fmt.Errorf("read outside the transaction saw %d messages, %v; want the committed 1", len(other), err)
		}
		return errStep
	})
	if !errors.Is(err, errStep) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	got, err := ix.Messages(ctx, mb.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[1].Flags.Len() != 0 || got[1].ModSeq != 0 {
		t.Errorf("after rollback, Messages = %+v, want message 1 unchanged only", got)
	}
	if after, _, _ := ix.Mailbox(ctx, "INBOX"); after != mb {
		t.Errorf("after rollback, mailbox = %+v, want %+v", after, mb)
	}

	// The index is usable after the rollback.
	putMessages(t, ix, mb.ID, 2, 2)
	if n, _ := ix.CountMessages(ctx, mb.ID); n != 2 {
		t.Errorf("CountMessages = %d, want 2", n)
	}
}

func TestUpdateRollsBackOnPanic(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()
	mb, _ := ix.EnsureMailbox(ctx, "INBOX", "INBOX")
	func() {
		defer func() { _ = recover() }()
		_ = ix.Update(ctx, func(tx *Tx) error {
			if err := tx.PutMessage(mb.ID, Message{UIDValidity: 1, UID: 1, Key: "k"}); err != nil {
				return err
			}
			panic("engine bug")
		})
	}()
	if n, err := ix.CountMessages(ctx, mb.ID); err != nil || n != 0 {
		t.Errorf("CountMessages after a panicking Update = %d, %v; want 0", n, err)
	}
	// The connection went back to the pool without an open transaction.
	putMessages(t, ix, mb.ID, 1, 1)
}

func TestDeleteMailboxCascades(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()
	a, _ := ix.EnsureMailbox(ctx, "A", "A")
	b, _ := ix.EnsureMailbox(ctx, "B", "B")
	putMessages(t, ix, a.ID, 1, 3)
	putMessages(t, ix, b.ID, 1, 2)
	// A second UIDVALIDITY's rows go too.
	if err := ix.Update(ctx, func(tx *Tx) error {
		return tx.PutMessage(a.ID, Message{UIDValidity: 2, UID: 1, Key: "other"})
	}); err != nil {
		t.Fatal(err)
	}

	if err := ix.Update(ctx, func(tx *Tx) error {
		if err := tx.DeleteMailbox(a.ID); err != nil {
			return err
		}
		return tx.DeleteMailbox(a.ID) // absent now
	}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := ix.db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE mailbox_id = ?`, a.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows of the deleted mailbox = %d, %v; want 0", n, err)
	}
	if n, err := ix.CountMessages(ctx, b.ID); err != nil || n != 2 {
		t.Errorf("CountMessages of the other mailbox = %d, %v; want 2", n, err)
	}
	if _, ok, _ := ix.Mailbox(ctx, "A"); ok {
		t.Error("deleted mailbox still listed")
	}
}

func TestForeignKeyEnforced(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	err := ix.Update(t.Context(), func(tx *Tx) error {
		return tx.PutMessage(12345, Message{UIDValidity: 1, UID: 1, Key: "k"})
	})
	if err == nil {
		t.Fatal("PutMessage into a mailbox with no row succeeded")
	}
}

func TestUniqueMaildirKey(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()
	a, _ := ix.EnsureMailbox(ctx, "A", "A")
	b, _ := ix.EnsureMailbox(ctx, "B", "B")
	putMessages(t, ix, a.ID, 1, 1) // key k1

	var putErr error
	err := ix.Update(ctx, func(tx *Tx) error {
		putErr = tx.PutMessage(a.ID, Message{UIDValidity: 1, UID: 2, Key: "k1"})
		if !errors.Is(putErr, ErrKeyInUse) {
			return fmt.Errorf("PutMessage of a used key = %v, want ErrKeyInUse", putErr)
		}
		// Only the statement failed: the transaction goes on.
		if err := tx.PutMessage(a.ID, Message{UIDValidity: 1, UID: 2, Key: "k2"}); err != nil {
			return err
		}
		// The same key in another mailbox is no conflict.
		return tx.PutMessage(b.ID, Message{UIDValidity: 1, UID: 1, Key: "k1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := ix.Messages(ctx, a.ID, 1)
	if len(got) != 2 || got[1].Key != "k1" || got[2].Key != "k2" {
		t.Errorf("messages of A = %+v, want 1→k1 (untouched), 2→k2", got)
	}

	// The key stays unique across UIDVALIDITYs of one mailbox.
	err = ix.Update(ctx, func(tx *Tx) error {
		return tx.PutMessage(a.ID, Message{UIDValidity: 2, UID: 1, Key: "k1"})
	})
	if !errors.Is(err, ErrKeyInUse) {
		t.Errorf("PutMessage of a key used under another UIDVALIDITY = %v, want ErrKeyInUse", err)
	}
}

func TestConcurrentUpdates(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()
	mb, _ := ix.EnsureMailbox(ctx, "INBOX", "INBOX")
	const workers, steps = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*steps)
	for w := range workers {
		wg.Go(func() {
			for s := range steps {
				uid := mail.UID(w*steps + s + 1)
				errs <- ix.Update(ctx, func(tx *Tx) error {
					// Read, then write, in the transaction: had it begun
					// deferred, upgrading to the write lock would fail at
					// once with SQLITE_BUSY rather than wait.
					var n int
					if err := tx.stmt(ix.stmts.countMessages).QueryRowContext(tx.ctx, mb.ID).Scan(&n); err != nil {
						return err
					}
					return tx.PutMessage(mb.ID, Message{UIDValidity: 1, UID: uid, Key: fmt.Sprint("k", uid)})
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, err := ix.CountMessages(ctx, mb.ID); err != nil || n != workers*steps {
		t.Errorf("CountMessages = %d, %v; want %d", n, err, workers*steps)
	}
}

func TestUpdateCanceled(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	err := ix.Update(ctx, func(tx *Tx) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("Update with a canceled context = %v (fn called: %v), want context.Canceled", err, called)
	}
}

// putMessages commits messages with UIDs from..to, keys "k<uid>", under
// UIDVALIDITY 1.
func putMessages(t *testing.T, ix *Index, mailboxID int64, from, to mail.UID) {
	t.Helper()
	err := ix.Update(t.Context(), func(tx *Tx) error {
		for uid := from; uid <= to; uid++ {
			if err := tx.PutMessage(mailboxID, Message{UIDValidity: 1, UID: uid, Key: fmt.Sprint("k", uid)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUpdateContextEndsInsideFn(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	mb, _ := ix.EnsureMailbox(t.Context(), "INBOX", "INBOX")
	ctx, cancel := context.WithCancel(t.Context())
	err := ix.Update(ctx, func(tx *Tx) error {
		if err := tx.PutMessage(mb.ID, Message{UIDValidity: 1, UID: 1, Key: "k"}); err != nil {
			return err
		}
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update whose context ended inside fn = %v, want context.Canceled", err)
	}
	if n, err := ix.CountMessages(t.Context(), mb.ID); err != nil || n != 0 {
		t.Errorf("CountMessages = %d, %v; want 0: the canceled step is not committed", n, err)
	}
}

// TestMessagesOfAndCountRows: MessagesOf reads exactly the rows of
// the UIDs named, in UID order, across batches, skipping UIDs without a
// row and rows of another UIDVALIDITY; CountRows counts the rows of
// messages on the server and of those with a file.
func TestMessagesOfAndCountRows(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()
	mb, err := ix.EnsureMailbox(ctx, "INBOX", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	putMessages(t, ix, mb.ID, 1, 1200)
	err = ix.Update(ctx, func(tx *Tx) error {
		if err := tx.PutMessage(mb.ID, Message{UIDValidity: 2, UID: 7, Key: "other"}); err != nil {
			return err
		}
		for _, c := range []struct {
			uid   mail.UID
			state mail.State
		}{{3, mail.StateLocalOnly}, {4, mail.StateHeld}, {5, mail.StateRemoteOnly}, {6, mail.StateSkipped}} {
			if err := tx.PutMessage(mb.ID, Message{UIDValidity: 1, UID: c.uid, Key: fmt.Sprint("k", c.uid), State: c.state}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []mail.UID{2, 7, 600, 1100, 1200}
	ask := []mail.UID{1200, 7, 5000, 2, 600, 1100, 7}
	for i := range 700 {
		ask = append(ask, mail.UID(3000+i)) // no rows; a second batch
	}
	var got []mail.UID
	err = ix.MessagesOf(ctx, mb.ID, 1, ask, func(m Message) error {
		if m.Key != fmt.Sprint("k", m.UID) || m.UIDValidity != 1 {
			t.Errorf("row %d: key %q, UIDVALIDITY %d", m.UID, m.Key, m.UIDValidity)
		}
		got = append(got, m.UID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("MessagesOf read %v, want %v", got, want)
	}
	server, local, err := ix.CountRows(ctx, mb.ID, 1)
	if err != nil || server != 1198 || local != 1198 {
		t.Fatalf("CountRows: %d on the server, %d local, %v; want 1198 each (of 1200 rows, one local-only, one held, one remote-only, one skipped)", server, local, err)
	}
}
