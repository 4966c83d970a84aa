package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// TestMailboxLifecycle: a renamed mailbox keeps its rows; a reset one
// keeps only its limbo rows and last sync time; a forgotten one is gone
// with its rows and intents.
func TestMailboxLifecycle(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()
	a, _ := ix.EnsureMailbox(ctx, "Work", "Work")
	a.UIDValidity, a.UIDNext, a.HighestModSeq, a.Messages, a.LocalStamp = 1, 4, 9, 3, "stamp"
	a.LastSync = time.Unix(1700000000, 0)
	if err := ix.SaveMailbox(ctx, a); err != nil {
		t.Fatal(err)
	}
	putMessages(t, ix, a.ID, 1, 3)
	if err := ix.PutMessages(ctx, a.ID, []Message{{UIDValidity: 0, UID: 1, Key: "limbo", State: mail.StateLocalOnly}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.AddIntents(ctx, []mail.Intent{{MailboxID: a.ID, Kind: mail.IntentDownload, Key: "k9"}}); err != nil {
		t.Fatal(err)
	}

	if err := ix.RenameMailbox(ctx, a.ID, "Projects", "Projects"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ix.Mailbox(ctx, "Work"); ok {
		t.Fatal("the old name is still there")
	}
	p, ok, err := ix.Mailbox(ctx, "Projects")
	if err != nil || !ok || p.ID != a.ID || p.LocalPath != "Projects" || p.UIDValidity != 1 || p.LocalStamp != "" {
		t.Fatalf("renamed row %+v, %v, %v", p, ok, err)
	}
	if rows, _ := ix.Messages(ctx, a.ID, 1); len(rows) != 3 {
		t.Fatalf("%d rows after the rename, want 3", len(rows))
	}

	if err := ix.ResetMailbox(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	p, _, _ = ix.Mailbox(ctx, "Projects")
	if p.UIDValidity != 0 || p.UIDNext != 0 || p.HighestModSeq != 0 || p.Messages != 0 || !p.LastSync.Equal(a.LastSync) {
		t.Fatalf("reset row %+v", p)
	}
	if rows, _ := ix.Messages(ctx, a.ID, 1); len(rows) != 0 {
		t.Fatalf("%d rows after the reset, want 0", len(rows))
	}
	if rows, _ := ix.Messages(ctx, a.ID, 0); len(rows) != 1 {
		t.Fatalf("%d limbo rows after the reset, want 1", len(rows))
	}
	if ins, _ := ix.Intents(ctx, a.ID); len(ins) != 0 {
		t.Fatalf("%d intents after the reset, want 0", len(ins))
	}

	if err := ix.ForgetMailbox(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ix.Mailbox(ctx, "Projects"); ok {
		t.Fatal("forgotten mailbox still there")
	}
	if n, _ := ix.CountMessages(ctx, a.ID); n != 0 {
		t.Fatalf("%d rows of a forgotten mailbox", n)
	}
}
