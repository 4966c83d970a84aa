package store

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/satchel-mail/satchel/sync/mail"
)

// TestTagBases: a base is read back as written, follows its message's
// row out when the row is deleted, and is not recorded for a message
// that has no row; refused keywords are per mailbox and recorded once.
func TestTagBases(t *testing.T) {
	ctx := t.Context()
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	mb, err := ix.EnsureMailbox(ctx, "INBOX", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	putMessages(t, ix, mb.ID, 1, 3)
	err = ix.SaveTagBases(ctx, []mail.TagBase{
		{MailboxID: mb.ID, UIDValidity: 1, UID: 1, NotmuchID: "a@x", Labels: []string{"work", "$label1", "work"}},
		{MailboxID: mb.ID, UIDValidity: 1, UID: 2, NotmuchID: "b@x"},
		{MailboxID: mb.ID, UIDValidity: 1, UID: 9, NotmuchID: "gone@x", Labels: []string{"x"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ix.TagBases(ctx, mb.ID, 1, []mail.UID{1, 2, 3, 9})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got[1].Labels, []string{"$label1", "work"}) || got[1].NotmuchID != "a@x" || len(got[2].Labels) != 0 {
		t.Fatalf("bases read back: %+v", got)
	}
	byKey, err := ix.TagMessagesByKey(ctx, mb.ID, 1, []string{"k2", "k7"})
	if err != nil || len(byKey) != 1 || byKey["k2"].UID != 2 {
		t.Fatalf("TagMessagesByKey: %+v, %v", byKey, err)
	}
	byUID, err := ix.TagMessagesByUID(ctx, mb.ID, 1, []mail.UID{3, 1, 8})
	if err != nil || len(byUID) != 2 || byUID[3].Key != "k3" {
		t.Fatalf("TagMessagesByUID: %+v, %v", byUID, err)
	}
	if err := ix.DeleteMessages(ctx, mb.ID, 1, []mail.UID{1}); err != nil {
		t.Fatal(err)
	}
	if got, _ := ix.TagBases(ctx, mb.ID, 1, []mail.UID{1}); len(got) != 0 {
		t.Fatalf("base of a deleted message survived: %+v", got)
	}
	if err := ix.AddRefusedKeywords(ctx, mb.ID, []string{"k27", "k26", "k27"}); err != nil {
		t.Fatal(err)
	}
	if err := ix.AddRefusedKeywords(ctx, mb.ID, []string{"k26"}); err != nil {
		t.Fatal(err)
	}
	refused, err := ix.RefusedKeywords(ctx, mb.ID)
	if err != nil || !slices.Equal(refused, []string{"k26", "k27"}) {
		t.Fatalf("refused keywords %q, %v", refused, err)
	}
}
