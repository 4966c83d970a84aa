package conflict

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestDecide(t *testing.T) {
	f := mail.ParseFlags
	present := func(s string) State { return State{Present: true, Flags: f(s)} }
	gone := State{}
	tests := []struct {
		name          string
		base          string
		hasBase       bool
		local, remote State
		policy        Policy
		want          Action
		wantFlags     string
		conflict      bool
	}{
		// Both present, with a base: per-flag merge whatever the policy.
		{"merge both changed", `\Seen`, true, present(`\Seen \Flagged`), present(`\Seen \Answered`), Merge, Keep, `\Answered \Flagged \Seen`, false},
		{"remote policy still merges with a base", `\Seen`, true, present(`\Seen \Flagged`), present(``), Remote, Keep, `\Flagged`, false},
		{"local policy still merges with a base", `\Seen`, true, present(``), present(`\Seen \Answered`), Local, Keep, `\Answered`, false},
		// No base.
		{"no base merge: union", ``, false, present(`\Seen`), present(`\Flagged`), Merge, Keep, `\Flagged \Seen`, true},
		{"no base merge: \\Deleted follows the server (set)", ``, false, present(`\Seen`), present(`\Deleted`), Merge, Keep, `\Deleted \Seen`, true},
		{"no base merge: \\Deleted follows the server (unset)", ``, false, present(`\Deleted \Seen`), present(`\Seen`), Merge, Keep, `\Seen`, true},
		{"no base remote", ``, false, present(`\Seen`), present(`\Flagged`), Remote, Keep, `\Flagged`, true},
		{"no base local", ``, false, present(`\Seen`), present(`\Flagged`), Local, Keep, `\Seen`, true},
		{"no base, same flags", ``, false, present(`\Seen`), present(`\Seen`), Merge, Keep, `\Seen`, false},
		// Expunged on the server.
		{"expunged, unchanged locally", `\Seen`, true, present(`\Seen`), gone, Merge, DeleteLocal, ``, false},
		{"expunged, read locally", ``, true, present(`\Seen`), gone, Merge, DeleteLocal, ``, true},
		{"expunged, flagged locally", `\Seen`, true, present(`\Seen \Flagged`), gone, Merge, RestoreRemote, `\Flagged \Seen`, true},
		{"expunged, flag kept (not added) locally", `\Flagged`, true, present(`\Flagged \Seen`), gone, Merge, DeleteLocal, ``, true},
		{"expunged, flagged locally, remote policy", `\Seen`, true, present(`\Seen \Flagged`), gone, Remote, DeleteLocal, ``, true},
		{"expunged, read locally, local policy", ``, true, present(`\Seen`), gone, Local, RestoreRemote, `\Seen`, true},
		{"expunged, unchanged, local policy", `\Seen`, true, present(`\Seen`), gone, Local, DeleteLocal, ``, false},
		{"unknown locally, not on server: upload", ``, false, present(`\Seen`), gone, Merge, RestoreRemote, `\Seen`, false},
		// Deleted locally.
		{"deleted, unchanged on server", `\Seen`, true, gone, present(`\Seen`), Merge, DeleteRemote, ``, false},
		{"deleted, answered on server", `\Seen`, true, gone, present(`\Seen \Answered`), Merge, DeleteRemote, ``, true},
		{"deleted, flagged on server", `\Seen`, true, gone, present(`\Seen \Flagged`), Merge, RestoreLocal, `\Flagged \Seen`, true},
		{"deleted, flagged on server, local policy", `\Seen`, true, gone, present(`\Seen \Flagged`), Local, DeleteRemote, ``, true},
		{"deleted, answered on server, remote policy", `\Seen`, true, gone, present(`\Seen \Answered`), Remote, RestoreLocal, `\Answered \Seen`, true},
		{"deleted, unchanged, remote policy", `\Seen`, true, gone, present(`\Seen`), Remote, DeleteRemote, ``, false},
		{"new on server: download", ``, false, gone, present(``), Merge, RestoreLocal, ``, false},
		// Gone on both sides.
		{"gone both", `\Seen`, true, gone, gone, Merge, Forget, ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(f(tt.base), tt.hasBase, tt.local, tt.remote, tt.policy)
			if got.Action != tt.want || !got.Flags.Equal(f(tt.wantFlags)) || got.Conflict != tt.conflict {
				t.Fatalf("Decide = %v %q conflict=%v, want %v %q conflict=%v", got.Action, got.Flags, got.Conflict, tt.want, tt.wantFlags, tt.conflict)
			}
		})
	}
}

func genState() *rapid.Generator[State] {
	return rapid.Custom(func(t *rapid.T) State {
		return State{Present: rapid.Bool().Draw(t, "present"), Flags: genFlags().Draw(t, "flags")}
	})
}

// apply plays an outcome on both sides, as the engine does, and returns
// the states and base of the next sync.
func apply(o Outcome) (base mail.Flags, hasBase bool, local, remote State) {
	switch o.Action {
	case Keep, RestoreLocal, RestoreRemote:
		s := State{Present: true, Flags: o.Flags}
		return o.Flags, true, s, s
	}
	return mail.Flags{}, false, State{}, State{}
}

// TestDecideSettles: after any decision is applied, the next sync has
// nothing to do (the same flags are kept, or the message is gone on both
// sides), whatever the policy.
func TestDecideSettles(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := genFlags().Draw(t, "base")
		hasBase := rapid.Bool().Draw(t, "hasBase")
		local, remote := genState().Draw(t, "local"), genState().Draw(t, "remote")
		p := Policy(rapid.IntRange(0, 2).Draw(t, "policy"))
		o := Decide(base, hasBase, local, remote, p)

		b2, hb2, l2, r2 := apply(o)
		again := Decide(b2, hb2, l2, r2, p)
		switch o.Action {
		case Keep, RestoreLocal, RestoreRemote:
			if again.Action != Keep || !again.Flags.Equal(o.Flags) || again.Conflict {
				t.Fatalf("not settled: %v %q then %v %q", o.Action, o.Flags, again.Action, again.Flags)
			}
		default:
			if again.Action != Forget {
				t.Fatalf("not settled: %v then %v", o.Action, again.Action)
			}
		}
		// Deciding twice on the same input gives the same answer.
		if o2 := Decide(base, hasBase, local, remote, p); o2.Action != o.Action || !o2.Flags.Equal(o.Flags) {
			t.Fatalf("not deterministic")
		}
	})
}

// TestDecideNeverLosesFlaggedMail: under the merge policy, a message one
// side flagged since the last sync survives the other side's deletion.
func TestDecideNeverLosesFlaggedMail(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := genFlags().Draw(t, "base").With(mail.FlagFlagged, false)
		kept := genFlags().Draw(t, "kept").With(mail.FlagFlagged, true)
		if rapid.Bool().Draw(t, "localSide") {
			o := Decide(base, true, State{Present: true, Flags: kept}, State{}, Merge)
			if o.Action != RestoreRemote {
				t.Fatalf("flagged local copy lost: %v", o.Action)
			}
		} else {
			o := Decide(base, true, State{}, State{Present: true, Flags: kept}, Merge)
			if o.Action != RestoreLocal {
				t.Fatalf("flagged server copy lost: %v", o.Action)
			}
		}
	})
}
