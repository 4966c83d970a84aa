package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestIntents(t *testing.T) {
	ctx := context.Background()
	ix, err := Open(ctx, filepath.Join(t.TempDir(), "ix.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	src, _ := ix.EnsureMailbox(ctx, "INBOX", "INBOX")
	dst, _ := ix.EnsureMailbox(ctx, "Archive", "Archive")
	old := mail.Message{UIDValidity: 7, UID: 3, Key: "k3", Flags: mail.NewFlags(mail.FlagSeen), Size: 10, InternalDate: time.Unix(1700000000, 0).UTC()}
	if err := ix.PutMessages(ctx, src.ID, []mail.Message{old}); err != nil {
		t.Fatal(err)
	}
	row := mail.Message{UIDValidity: 9, UID: 44, Key: "k3", Flags: mail.NewFlags(mail.FlagSeen, "$label1"), ModSeq: 1<<63 + 1,
		Size: 10, InternalDate: time.Unix(1700000000, 0).UTC(), MessageID: "<a@b>", LocalOnlyFlags: mail.NewFlags(mail.FlagForwarded)}
	in := mail.Intent{MailboxID: dst.ID, Kind: mail.IntentMove, UID: 3, Key: "k3", UIDNext: 40, Size: 10, Row: row, From: src.ID, FromUIDValidity: 7, FromUID: 3}
	in.HeaderHash[0], in.HeaderHash[31] = 1, 2
	ids, err := ix.AddIntents(ctx, []mail.Intent{in, {MailboxID: src.ID, Kind: mail.IntentDownload, UID: 5, Key: "k5"}})
	if err != nil || len(ids) != 2 {
		t.Fatalf("add: %v %v", ids, err)
	}
	got, err := ix.Intents(ctx, dst.ID)
	if err != nil || len(got) != 1 {
		t.Fatalf("intents: %v %v", got, err)
	}
	g := got[0]
	if g.Kind != in.Kind || g.UID != 3 || g.Key != "k3" || g.UIDNext != 40 || g.Size != 10 || g.HeaderHash != in.HeaderHash || g.From != src.ID || g.FromUID != 3 || g.FromUIDValidity != 7 {
		t.Fatalf("intent round trip: %+v", g)
	}
	if !g.Row.Flags.Equal(row.Flags) || g.Row.ModSeq != row.ModSeq || !g.Row.InternalDate.Equal(row.InternalDate) ||
		g.Row.MessageID != row.MessageID || !g.Row.LocalOnlyFlags.Equal(row.LocalOnlyFlags) || g.Row.UID != 44 {
		t.Fatalf("row round trip: %+v", g.Row)
	}
	// Completing writes the rows and forgets the intent together.
	err = ix.CompleteIntent(ctx, g.ID, []mail.RowChange{{MailboxID: dst.ID, Row: row}, {MailboxID: src.ID, Row: old, Delete: true}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ix.Intents(ctx, dst.ID); len(got) != 0 {
		t.Fatalf("intent still there: %v", got)
	}
	if m, _ := ix.Messages(ctx, dst.ID, 9); len(m) != 1 {
		t.Fatalf("moved row missing: %v", m)
	}
	if m, _ := ix.Messages(ctx, src.ID, 7); len(m) != 0 {
		t.Fatalf("source row still there: %v", m)
	}
	// A failing change rolls the whole completion back.
	rest, _ := ix.Intents(ctx, src.ID)
	bad := mail.Message{UIDValidity: 7, UID: 0, Key: "x"}
	if err := ix.CompleteIntent(ctx, rest[0].ID, []mail.RowChange{{MailboxID: src.ID, Row: bad}}); err == nil {
		t.Fatal("completing with an invalid row succeeded")
	}
	if again, _ := ix.Intents(ctx, src.ID); len(again) != 1 {
		t.Fatal("a failed completion forgot the intent")
	}
	if err := ix.DropIntent(ctx, rest[0].ID); err != nil {
		t.Fatal(err)
	}
	if again, _ := ix.Intents(ctx, src.ID); len(again) != 0 {
		t.Fatal("dropped intent still there")
	}
}
