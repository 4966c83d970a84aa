package maildir

import (
	"testing"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestFlagsFromInfo(t *testing.T) {
	tests := []struct {
		info string
		want mail.Flags
	}{
		{"", mail.NewFlags()},
		{"S", mail.NewFlags(mail.FlagSeen)},
		{"FRS", mail.NewFlags(mail.FlagFlagged, mail.FlagAnswered, mail.FlagSeen)},
		{"DFPRST", mail.NewFlags(mail.FlagDraft, mail.FlagFlagged, mail.FlagForwarded, mail.FlagAnswered, mail.FlagSeen, mail.FlagDeleted)},
		{"SF", mail.NewFlags(mail.FlagFlagged, mail.FlagSeen)},
		{"abcSz", mail.NewFlags(mail.FlagSeen)},
		{"XYZ", mail.NewFlags()},
		{"s", mail.NewFlags()},
	}
	for _, tt := range tests {
		if got := FlagsFromInfo(tt.info); !got.Equal(tt.want) {
			t.Errorf("FlagsFromInfo(%q) = %v, want %v", tt.info, got, tt.want)
		}
	}
}

func TestInfoFromFlags(t *testing.T) {
	tests := []struct {
		flags mail.Flags
		want  string
	}{
		{mail.NewFlags(), ""},
		{mail.NewFlags(mail.FlagSeen, mail.FlagFlagged, mail.FlagAnswered), "FRS"},
		{mail.NewFlags(mail.FlagDeleted, mail.FlagDraft), "DT"},
		{mail.NewFlags(mail.FlagForwarded), "P"},
		{mail.NewFlags(`\seen`, "$forwarded"), "PS"},
		{mail.NewFlags("$Junk", "NonJunk", mail.FlagRecent), ""},
	}
	for _, tt := range tests {
		if got := InfoFromFlags(tt.flags); got != tt.want {
			t.Errorf("InfoFromFlags(%v) = %q, want %q", tt.flags, got, tt.want)
		}
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		flags mail.Flags
		ok    bool
	}{
		{"1.M2P3.host:2,FS", "1.M2P3.host", mail.NewFlags(mail.FlagFlagged, mail.FlagSeen), true},
		{"1.M2P3.host:2,", "1.M2P3.host", mail.NewFlags(), true},
		{"1.M2P3.host", "1.M2P3.host", mail.NewFlags(), true},
		{"k:1,FS", "k", mail.NewFlags(), true},
		{"k:2,Sab", "k", mail.NewFlags(mail.FlagSeen), true},
		{"k:", "k", mail.NewFlags(), true},
		{":2,S", "", mail.Flags{}, false},
		{"", "", mail.Flags{}, false},
		{".hidden:2,S", "", mail.Flags{}, false},
		{".", "", mail.Flags{}, false},
		{"a/b:2,S", "", mail.Flags{}, false},
		{"a\x00b", "", mail.Flags{}, false},
	}
	for _, tt := range tests {
		key, flags, ok := ParseName(tt.name)
		if key != tt.key || ok != tt.ok || !flags.Equal(tt.flags) {
			t.Errorf("ParseName(%q) = %q, %v, %v; want %q, %v, %v", tt.name, key, flags, ok, tt.key, tt.flags, tt.ok)
		}
	}
}
