package mail

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFlags(t *testing.T) {
	f := NewFlags(`\seen`, `\Recent`, "$label1", `\FLAGGED`, "")
	if got := f.String(); got != `$label1 \Flagged \Seen` {
		t.Fatalf("canonical form %q", got)
	}
	if !f.Has(`\SEEN`) || f.Has(`\Recent`) {
		t.Fatal("Has is not case-insensitive for system flags, or kept \\Recent")
	}
	if got := f.System().String(); got != `\Flagged \Seen` {
		t.Fatalf("System %q", got)
	}
	if got := f.Keywords().String(); got != `$label1` {
		t.Fatalf("Keywords %q", got)
	}
	if !ParseFlags(f.String()).Equal(f) {
		t.Fatal("ParseFlags(String) lost something")
	}
	// A set made from a flag with a tab in it reads back, as every
	// stored form does, split at the tab.
	NewFlags("$x\t$y")
	if got := ParseFlags("$x\t$y"); got.String() != "$x $y" {
		t.Fatalf("ParseFlags of a tab-separated form: %q", got)
	}
	g := f.With(FlagSeen, false).With(FlagDraft, true)
	if g.Has(FlagSeen) || !g.Has(FlagDraft) || !f.Has(FlagSeen) {
		t.Fatal("With changed the original or did not change the copy")
	}
}

// FuzzParseFlags: the stored form always reads back to the same set, and
// parsing never keeps \Recent or an empty flag.
func FuzzParseFlags(f *testing.F) {
	for _, s := range []string{"", `\Seen`, `\seen $Junk \Recent`, "  a  b ", "\\Flagged\t$x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl := ParseFlags(s)
		again := ParseFlags(fl.String())
		if !again.Equal(fl) {
			t.Fatalf("round trip of %q: %q then %q", s, fl, again)
		}
		for _, x := range fl.List() {
			if x == "" || strings.EqualFold(x, FlagRecent) || strings.ContainsAny(x, " \t\n\r") {
				t.Fatalf("bad flag %q from %q", x, s)
			}
		}
		if utf8.ValidString(s) && fl.Len() > len(strings.Fields(s)) {
			t.Fatalf("more flags than fields in %q", s)
		}
	})
}
