package store

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestGmailCopies(t *testing.T) {
	ix := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	ctx := t.Context()
	inbox, err := ix.EnsureMailbox(ctx, "INBOX", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	work, err := ix.EnsureMailbox(ctx, "Work", "Work")
	if err != nil {
		t.Fatal(err)
	}
	inbox.UIDValidity, work.UIDValidity = 7, 9
	if err := ix.SaveMailboxes(ctx, []mail.Mailbox{inbox, work}); err != nil {
		t.Fatal(err)
	}
	const big = uint64(math.MaxUint64 - 5) // above int64: stored as a negative INTEGER
	put := func(mbox int64, m Message) {
		t.Helper()
		if err := ix.Update(ctx, func(tx *Tx) error { return tx.PutMessage(mbox, m) }); err != nil {
			t.Fatal(err)
		}
	}
	put(inbox.ID, Message{UIDValidity: 7, UID: 1, Key: "a", GmailID: big, Flags: mail.NewFlags(mail.FlagSeen), MessageID: "<a@x>"})
	put(inbox.ID, Message{UIDValidity: 7, UID: 2, Key: "b", GmailID: 11})
	put(inbox.ID, Message{UIDValidity: 6, UID: 3, Key: "c", GmailID: 12})                          // an old UIDVALIDITY
	put(work.ID, Message{UIDValidity: 9, UID: 4, Key: "d", GmailID: 13, State: mail.StateSkipped}) // no local file
	// A flag update written without the id keeps it.
	put(inbox.ID, Message{UIDValidity: 7, UID: 2, Key: "b", Flags: mail.NewFlags(mail.FlagFlagged)})

	got, err := ix.GmailCopies(ctx, []uint64{big, 11, 12, 13, 99, 11})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("GmailCopies = %+v, want ids %d and 11 only", got, big)
	}
	if c := got[big]; c.MailboxID != inbox.ID || c.Row.UID != 1 || c.Row.Key != "a" || !c.Row.Flags.Has(mail.FlagSeen) || c.Row.MessageID != "<a@x>" || c.Row.GmailID != big {
		t.Errorf("copy of %d = %+v", big, c)
	}
	if c := got[11]; c.Row.UID != 2 || !c.Row.Flags.Has(mail.FlagFlagged) {
		t.Errorf("copy of 11 after a flag update = %+v", c)
	}
}
