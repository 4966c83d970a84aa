package maildir

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestMaildirPlusPlus(t *testing.T) {
	for _, tc := range []struct {
		levels []string
		want   string
	}{
		{[]string{"INBOX"}, ""},
		{[]string{"INBOX", "Sub"}, ".INBOX.Sub"},
		{[]string{"Work", "Projects", "Ünïcödé"}, ".Work.Projects.Ünïcödé"},
		{[]string{"v1.2"}, ".v1%2E2"},
		{[]string{".hidden"}, ".%2Ehidden"},
		{[]string{"a/b", "100%"}, ".a%2Fb.100%25"},
		{[]string{"cur"}, ".%63ur"},
		{[]string{""}, ".%"},
	} {
		got, err := MaildirPlusPlus.Encode(tc.levels)
		if err != nil || got != tc.want {
			t.Errorf("Encode(%q) = %q, %v; want %q", tc.levels, got, err, tc.want)
			continue
		}
		back, err := MaildirPlusPlus.Decode(got)
		if err != nil || !slices.Equal(back, tc.levels) {
			t.Errorf("Decode(%q) = %q, %v; want %q", got, back, err, tc.levels)
		}
	}
	for _, bad := range []string{"Work", ".a.b%2e", ".a%2", "..", ".a/b"} {
		if l, err := MaildirPlusPlus.Decode(bad); err == nil {
			t.Errorf("Decode(%q) = %q, want an error", bad, l)
		}
	}
	if _, err := MaildirPlusPlus.Encode([]string{strings.Repeat("x", 300)}); !errors.Is(err, ErrNameTooLong) {
		t.Errorf("a 300-byte name: %v, want ErrNameTooLong", err)
	}
}

// FuzzMaildirPlusPlus: every name maps to one directory below the root
// (no "/", starting with "."), and back to itself.
func FuzzMaildirPlusPlus(f *testing.F) {
	for _, s := range []string{"INBOX", "A/B", "v1.2", "..", "a%2Eb", "Друзья/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		levels := strings.Split(name, "/")
		rel, err := MaildirPlusPlus.Encode(levels)
		if err != nil {
			return
		}
		if name != "INBOX" && (!strings.HasPrefix(rel, ".") || strings.Contains(rel, "/") || rel == "." || rel == "..") {
			t.Fatalf("Encode(%q) = %q: not one hidden directory name", levels, rel)
		}
		back, err := MaildirPlusPlus.Decode(rel)
		if err != nil || !slices.Equal(back, levels) {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", levels, back, err)
		}
	})
}
