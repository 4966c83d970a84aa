package sync

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestDeleteLimitAllows(t *testing.T) {
	tests := []struct {
		limit DeleteLimit
		size  int
		want  int
	}{
		{DeleteLimit{25, 10}, 40, 10},
		{DeleteLimit{25, 10}, 41, 10},
		{DeleteLimit{25, 10}, 44, 11},
		{DeleteLimit{25, 10}, 0, 10},
		{DeleteLimit{25, 10}, 1000, 250},
		{DeleteLimit{12.5, 0}, 100, 12},
		{DeleteLimit{0, 50}, 1000, 50},
		{DeleteLimit{0, 0}, 1000, 0},
		{DeleteLimit{100, 10}, 1000, 1000},
	}
	for _, tt := range tests {
		if got := tt.limit.allows(tt.size); got != tt.want {
			t.Errorf("%+v.allows(%d) = %d, want %d", tt.limit, tt.size, got, tt.want)
		}
	}
}

// guardBox is a mailbox synced before, with n messages on both sides.
func guardBox(name string, n int) *box {
	b := &box{
		mailboxEntry: mailboxEntry{RemoteMailbox: mail.RemoteMailbox{Name: name}, rel: name},
		mb:           mail.Mailbox{Name: name, UIDValidity: 1, LastSync: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		st:           mail.MailboxStatus{UIDValidity: 1, Messages: uint32(n)},
		files:        map[string]mail.Flags{},
		res:          &MailboxResult{Name: name},
	}
	b.plan = &Plan{Mailbox: name}
	var known []mail.Message
	for i := 1; i <= n; i++ {
		row := mail.Message{UIDValidity: 1, UID: mail.UID(i), Key: fmt.Sprint("k", i), Size: 100}
		known = append(known, row)
		b.files[row.Key] = mail.Flags{}
	}
	b.known = rowsOf(1, known...)
	return b
}

// firstRows returns the first n rows of b, by UID.
func firstRows(b *box, n int) []mail.Message {
	return slices.Collect(b.known.all())[:n]
}

func TestGuardDeletions(t *testing.T) {
	limit := &DeleteLimit{Percent: 25, Min: 10}
	tests := []struct {
		name string
		opts Options
		// local and server deletions planned in a mailbox of 40; moves
		// out of it.
		removeLocal, deleteRemote, moves int
		held                             bool
	}{
		{"30 of 40 deleted locally", Options{MaxDelete: limit}, 0, 30, 0, true},
		{"30 of 40 expunged on the server", Options{MaxDelete: limit}, 30, 0, 0, true},
		{"10 of 40: the minimum", Options{MaxDelete: limit}, 10, 10, 0, false},
		{"11 of 40 on one side", Options{MaxDelete: limit}, 2, 11, 0, true},
		{"moves are not deletions", Options{MaxDelete: limit}, 0, 5, 30, false},
		{"forced", Options{MaxDelete: limit, Force: true}, 15, 15, 0, false},
		{"no limit", Options{}, 15, 15, 0, false},
		{"zero: nothing may go", Options{MaxDelete: &DeleteLimit{}}, 0, 1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := guardBox("INBOX", 40)
			other := guardBox("Archive", 0)
			all := firstRows(b, 40)
			b.plan.RemoveLocal = all[:tt.removeLocal]
			b.plan.DeleteRemote = all[tt.removeLocal : tt.removeLocal+tt.deleteRemote]
			for _, r := range all[tt.removeLocal+tt.deleteRemote : tt.removeLocal+tt.deleteRemote+tt.moves] {
				b.plan.MoveOut = append(b.plan.MoveOut, Move{Row: r, To: other, ToKey: r.Key, Source: b})
			}
			b.plan.Download = []mail.RemoteMessage{{UID: 41}}
			b.plan.LocalFlags = []FlagUpdate{{UID: 40, Key: "k40"}}

			apply := guardPlans([]*box{b, other}, tt.opts, slog.New(slog.DiscardHandler))
			if len(apply) != 2 {
				t.Fatalf("%d mailboxes to apply, want both", len(apply))
			}
			if len(b.plan.Download) != 1 || len(b.plan.LocalFlags) != 1 || len(b.plan.MoveOut) != tt.moves {
				t.Errorf("the rest of the plan changed: %+v", b.plan)
			}
			if !tt.held {
				if b.res.Safety != nil || b.res.Held != 0 || len(b.plan.RemoveLocal) != tt.removeLocal || len(b.plan.DeleteRemote) != tt.deleteRemote {
					t.Fatalf("held: %v (%d); plan keeps %d removals, %d deletions", b.res.Safety, b.res.Held, len(b.plan.RemoveLocal), len(b.plan.DeleteRemote))
				}
				return
			}
			if !errors.Is(b.res.Safety, ErrTooManyDeletions) || b.res.Held != tt.removeLocal+tt.deleteRemote {
				t.Fatalf("Safety %v, Held %d; want ErrTooManyDeletions, %d", b.res.Safety, b.res.Held, tt.removeLocal+tt.deleteRemote)
			}
			if len(b.plan.RemoveLocal)+len(b.plan.DeleteRemote) != 0 {
				t.Fatalf("the plan still deletes: %d local, %d on the server", len(b.plan.RemoveLocal), len(b.plan.DeleteRemote))
			}
			// A held removal keeps its row, marked held; a held server
			// deletion leaves its row as it was.
			if len(b.plan.Rows) != tt.removeLocal {
				t.Fatalf("%d rows recorded, want %d", len(b.plan.Rows), tt.removeLocal)
			}
			for _, r := range b.plan.Rows {
				if r.State != mail.StateHeld {
					t.Errorf("UID %d recorded as %q, want held", r.UID, r.State)
				}
			}
		})
	}
}

func TestGuardFirstSync(t *testing.T) {
	tests := []struct {
		name     string
		synced   bool // LastSync set, rows present
		server   int  // messages on the server
		uploads  int
		force    bool
		refusing bool
	}{
		{"150 files, empty server", false, 0, 150, false, true},
		{"100 files: the limit", false, 0, 100, false, false},
		{"150 files, 2000 on the server", false, 2000, 150, false, false},
		{"250 files, 2000 on the server", false, 2000, 250, false, true},
		{"forced", false, 0, 150, true, false},
		{"synced before", true, 5, 150, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := guardBox("INBOX", 0)
			if tt.synced {
				b = guardBox("INBOX", 5)
			} else {
				b.mb.LastSync = time.Time{}
			}
			b.st.Messages = uint32(tt.server)
			for i := range tt.uploads {
				b.plan.Upload = append(b.plan.Upload, Upload{Key: fmt.Sprint("new", i)})
			}
			b.plan.Download = []mail.RemoteMessage{{UID: 1}}
			other := guardBox("Archive", 3)
			apply := guardPlans([]*box{b, other}, Options{Force: tt.force}, slog.New(slog.DiscardHandler))
			if !tt.refusing {
				if len(apply) != 2 || b.res.Safety != nil || len(b.plan.Upload) != tt.uploads {
					t.Fatalf("refused: %v; %d to apply, %d uploads", b.res.Safety, len(apply), len(b.plan.Upload))
				}
				return
			}
			if len(apply) != 1 || apply[0] != other {
				t.Fatalf("mailboxes to apply: %d, want only the other one", len(apply))
			}
			if !errors.Is(b.res.Safety, ErrTooManyUploads) || b.res.Held != tt.uploads {
				t.Fatalf("Safety %v, Held %d", b.res.Safety, b.res.Held)
			}
			if !b.plan.Empty() || b.res.Plan != b.plan {
				t.Fatalf("the refused mailbox's plan still does something: %+v", b.plan)
			}
		})
	}
}

// TestGuardFirstSyncUnlinksAdoption: a message the server moved into a
// mailbox whose first sync is refused is not adopted; the row of its
// local copy, in a mailbox that is synced, is held rather than left to
// look synced after that mailbox's state advances.
func TestGuardFirstSyncUnlinksAdoption(t *testing.T) {
	src := guardBox("INBOX", 3)
	dst := guardBox("Archive", 0)
	dst.mb.LastSync = time.Time{}
	for i := range 150 {
		dst.plan.Upload = append(dst.plan.Upload, Upload{Key: fmt.Sprint("new", i)})
	}
	row, _ := src.known.get(2)
	dst.plan.Adopt = []Adoption{{Remote: mail.RemoteMessage{UID: 7}, Key: row.Key, FromRel: "INBOX", From: src, Row: &row, RowBox: src}}
	apply := guardPlans([]*box{src, dst}, Options{}, slog.New(slog.DiscardHandler))
	if len(apply) != 1 || apply[0] != src {
		t.Fatalf("mailboxes to apply: %v", apply)
	}
	if len(src.plan.Rows) != 1 || src.plan.Rows[0].UID != 2 || src.plan.Rows[0].State != mail.StateHeld {
		t.Fatalf("rows of the source: %+v, want UID 2 held", src.plan.Rows)
	}
}
