package sync

import (
	"log/slog"
	"testing"

	"github.com/satchel-mail/satchel/sync/mail"
)

// TestUnstorableFlagsStayLocal: a flag the server cannot store (not in
// PERMANENTFLAGS, no \*) is recorded as local-only, not sent, and not sent
// again on the next sync.
func TestUnstorableFlagsStayLocal(t *testing.T) {
	st := mail.MailboxStatus{UIDValidity: 1, UIDNext: 2, PermanentFlags: mail.NewFlags(mail.FlagSeen, mail.FlagFlagged)}
	row := mail.Message{UIDValidity: 1, UID: 1, Key: "k1", Flags: mail.NewFlags(mail.FlagSeen)}
	newBox := func(local mail.Flags, row mail.Message) *box {
		return &box{
			mailboxEntry: mailboxEntry{RemoteMailbox: mail.RemoteMailbox{Name: "INBOX"}, rel: "INBOX"},
			st:           st,
			mode:         mail.ModeCondStore,
			known:        rowsOf(1, row),
			gone:         map[mail.UID]bool{},
			files:        map[string]mail.Flags{"k1": local},
		}
	}
	pl := &planner{log: slog.New(slog.DiscardHandler), info: map[*box]map[string]mail.LocalInfo{}}

	// The user marks the message forwarded and flagged.
	b := newBox(mail.NewFlags(mail.FlagSeen, mail.FlagForwarded, mail.FlagFlagged), row)
	if err := pl.planAll([]*box{b}, nil); err != nil {
		t.Fatal(err)
	}
	if len(b.plan.RemoteFlags) != 1 {
		t.Fatalf("remote flag updates %+v, want one", b.plan.RemoteFlags)
	}
	f := b.plan.RemoteFlags[0]
	want := mail.NewFlags(mail.FlagSeen, mail.FlagFlagged)
	if got := storableFlags(st, f.Flags); !got.Equal(want) {
		t.Fatalf("would store %q, want %q", got, want)
	}

	// After the store, the row holds $Forwarded as local-only; the next
	// sync sends nothing.
	row.Flags = mail.NewFlags(mail.FlagSeen, mail.FlagForwarded, mail.FlagFlagged)
	row.LocalOnlyFlags = mail.NewFlags(mail.FlagForwarded)
	b = newBox(mail.NewFlags(mail.FlagSeen, mail.FlagForwarded, mail.FlagFlagged), row)
	b.changed = []mail.RemoteMessage{{UID: 1, Flags: mail.NewFlags(mail.FlagSeen, mail.FlagFlagged), ModSeq: 9}}
	if err := pl.planAll([]*box{b}, nil); err != nil {
		t.Fatal(err)
	}
	if len(b.plan.RemoteFlags)+len(b.plan.LocalFlags) != 0 {
		t.Fatalf("second sync would change flags: %+v %+v", b.plan.RemoteFlags, b.plan.LocalFlags)
	}
	// Only the new MODSEQ is recorded; $Forwarded is still there locally.
	if len(b.plan.Rows) != 1 || !b.plan.Rows[0].Flags.Has(mail.FlagForwarded) || b.plan.Rows[0].ModSeq != 9 {
		t.Fatalf("rows %+v", b.plan.Rows)
	}
}
