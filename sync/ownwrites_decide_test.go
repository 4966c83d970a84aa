package sync

import (
	"testing"

	"github.com/satchel-mail/satchel/sync/mail"
)

// TestAfterWritesDecide: the state after a run's writes is recorded only
// when the index accounts for every difference from the state learned;
// each way another client could have written is refused.
func TestAfterWritesDecide(t *testing.T) {
	seen, flagged := mail.NewFlags(mail.FlagSeen), mail.NewFlags(mail.FlagFlagged)
	// Learned: 8 messages, UIDNEXT 10. The run appended 10 and 11 (rows
	// without MODSEQ), stored \Flagged on 3 (MODSEQ 108) and expunged one.
	base := func() afterWrites {
		return afterWrites{
			before: mail.MailboxStatus{UIDValidity: 1, UIDNext: 10, HighestModSeq: 100, Messages: 8},
			after:  mail.MailboxStatus{UIDValidity: 1, UIDNext: 12, HighestModSeq: 110, Messages: 9},
			changed: []mail.RemoteMessage{
				{UID: 3, Flags: flagged, ModSeq: 108},
				{UID: 10, Flags: seen, ModSeq: 105},
				{UID: 11, Flags: mail.NewFlags(), ModSeq: 106},
			},
			rows: map[mail.UID]mail.Message{
				3:  {UID: 3, Flags: flagged, ModSeq: 108},
				10: {UID: 10, Flags: seen},
				11: {UID: 11, Flags: mail.NewFlags()},
			},
			onServer: 9,
			added:    map[mail.UID]bool{10: true, 11: true},
			removed:  1,
		}
	}
	cases := []struct {
		name   string
		change func(a *afterWrites)
		ok     bool
	}{
		{"own writes only", func(*afterWrites) {}, true},
		{"a change after STATUS is left to the next run", func(a *afterWrites) {
			a.changed = append(a.changed, mail.RemoteMessage{UID: 5, Flags: seen, ModSeq: 111})
		}, true},
		{"another client's new message", func(a *afterWrites) {
			a.after.UIDNext, a.after.Messages = 13, 10
			a.onServer = 10
			a.added[12] = false
		}, false},
		{"a UID jump beyond what the run added", func(a *afterWrites) { a.after.UIDNext = 4_000_000_000 }, false},
		{"another client's expunge", func(a *afterWrites) { a.after.Messages = 8; a.onServer = 8 }, false},
		{"the index holds a message the server lost", func(a *afterWrites) { a.onServer = 10 }, false},
		{"another client's flag change", func(a *afterWrites) {
			a.changed = append(a.changed, mail.RemoteMessage{UID: 5, Flags: seen, ModSeq: 109})
			a.rows[5] = mail.Message{UID: 5, Flags: mail.NewFlags(), ModSeq: 50}
		}, false},
		{"a change with no row", func(a *afterWrites) {
			a.changed = append(a.changed, mail.RemoteMessage{UID: 6, Flags: seen, ModSeq: 109})
		}, false},
		{"a change after the run's STORE", func(a *afterWrites) {
			a.changed[0].ModSeq = 109
		}, false},
		{"an appended message's flags changed", func(a *afterWrites) {
			a.changed[1].Flags = mail.NewFlags(mail.FlagSeen, mail.FlagFlagged)
		}, false},
		{"a row off the server", func(a *afterWrites) {
			r := a.rows[3]
			r.State = mail.StateLocalOnly
			a.rows[3] = r
		}, false},
		{"renumbered", func(a *afterWrites) { a.after.UIDValidity = 2 }, false},
		{"HIGHESTMODSEQ went back", func(a *afterWrites) { a.after.HighestModSeq = 99 }, false},
		{"no HIGHESTMODSEQ learned", func(a *afterWrites) { a.before.HighestModSeq = 0 }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := base()
			c.change(&a)
			fixed, why := a.decide()
			if (why == "") != c.ok {
				t.Fatalf("decide: %q, want ok=%v", why, c.ok)
			}
			if !c.ok {
				return
			}
			got := map[mail.UID]mail.ModSeq{}
			for _, r := range fixed {
				got[r.UID] = r.ModSeq
			}
			if len(got) != 2 || got[10] != 105 || got[11] != 106 {
				t.Fatalf("rows given a MODSEQ: %v, want 10→105 and 11→106", got)
			}
		})
	}
}
