package conflict

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestMergeFlagEveryCombination(t *testing.T) {
	// All eight combinations of one flag on base/local/remote.
	tests := []struct {
		base, local, remote, want bool
		why                       string
	}{
		{false, false, false, false, "no change"},
		{true, true, true, true, "no change"},
		{false, true, false, true, "added locally"},
		{false, false, true, true, "added on the server"},
		{false, true, true, true, "added on both sides"},
		{true, false, true, false, "removed locally"},
		{true, true, false, false, "removed on the server"},
		{true, false, false, false, "removed on both sides"},
	}
	for _, tt := range tests {
		if got := mergeFlag(tt.base, tt.local, tt.remote); got != tt.want {
			t.Errorf("%s: mergeFlag(%v, %v, %v) = %v, want %v", tt.why, tt.base, tt.local, tt.remote, got, tt.want)
		}
	}
}

func TestMergeFlags(t *testing.T) {
	f := mail.ParseFlags
	tests := []struct {
		name                string
		base, local, remote string
		want                string
	}{
		{"read locally, flagged remotely", ``, `\Seen`, `\Flagged`, `\Flagged \Seen`},
		{"unread locally, answered remotely", `\Seen`, ``, `\Answered \Seen`, `\Answered`},
		{"keyword kept when local cannot store it", `$label1 \Seen`, `$label1 \Seen \Flagged`, `$label1 \Seen`, `$label1 \Flagged \Seen`},
		{"keyword removed on the server", `$Junk`, `$Junk`, ``, ``},
		{"both deleted", `\Seen`, `\Deleted \Seen`, `\Deleted \Seen`, `\Deleted \Seen`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MergeFlags(f(tt.base), f(tt.local), f(tt.remote))
			if !got.Equal(f(tt.want)) {
				t.Errorf("MergeFlags(%q, %q, %q) = %q, want %q", tt.base, tt.local, tt.remote, got, tt.want)
			}
		})
	}
}

var flagPool = []string{mail.FlagSeen, mail.FlagAnswered, mail.FlagFlagged, mail.FlagDeleted, mail.FlagDraft, mail.FlagForwarded, "$Junk", "$label1"}

func genFlags() *rapid.Generator[mail.Flags] {
	return rapid.Custom(func(t *rapid.T) mail.Flags {
		return mail.NewFlags(rapid.SliceOfDistinct(rapid.SampledFrom(flagPool), rapid.ID[string]).Draw(t, "flags")...)
	})
}

func TestMergeProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base, local, remote := genFlags().Draw(t, "base"), genFlags().Draw(t, "local"), genFlags().Draw(t, "remote")
		m := MergeFlags(base, local, remote)

		// A second sync after the merge: both sides hold m and the base is m.
		if again := MergeFlags(m, m, m); !again.Equal(m) {
			t.Fatalf("merge not stable: %q then %q", m, again)
		}
		// Merging again with the merged result on either side changes nothing.
		if again := MergeFlags(base, m, remote); !again.Equal(m) {
			t.Fatalf("merge not idempotent: MergeFlags(%q, %q, %q) = %q", base, m, remote, again)
		}
		// Sides are symmetric.
		if sym := MergeFlags(base, remote, local); !sym.Equal(m) {
			t.Fatalf("merge depends on side order: %q vs %q", m, sym)
		}
		// No side's change is lost: every flag that one side changed
		// relative to the base has that side's value in the result.
		for _, f := range flagPool {
			if local.Has(f) != base.Has(f) && m.Has(f) != local.Has(f) {
				t.Fatalf("local change of %s lost: base %q local %q remote %q merged %q", f, base, local, remote, m)
			}
			if remote.Has(f) != base.Has(f) && m.Has(f) != remote.Has(f) {
				t.Fatalf("remote change of %s lost: base %q local %q remote %q merged %q", f, base, local, remote, m)
			}
		}
	})
}
