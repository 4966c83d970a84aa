package imaptest

import (
	"slices"
	"testing"
)

func TestQuoteMailbox(t *testing.T) {
	tests := []struct{ name, want string }{
		{"INBOX", "INBOX"},
		{"inbox", "INBOX"},
		{"Archive/2023", `"Archive/2023"`},
		{"Spaces in name", `"Spaces in name"`},
		// RFC 3501 §5.1.3's example.
		{"~peter/mail/台北/日本語", `"~peter/mail/&U,BTFw-/&ZeVnLIqe-"`},
		{"Über", `"&ANw-ber"`}, // as Dovecot names it on disk
		{"Tom & Jerry", `"Tom &- Jerry"`},
		{`say "hi" \o/`, `"say \"hi\" \\o/"`},
		{"😀", `"&2D3eAA-"`}, // a surrogate pair
	}
	for _, tt := range tests {
		if got := quoteMailbox(tt.name); got != tt.want {
			t.Errorf("quoteMailbox(%q) = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestParseAppendUID(t *testing.T) {
	tests := []struct {
		line    string
		want    []uint32
		wantErr bool
	}{
		{"M0 OK [APPENDUID 1795650112 7] Append completed.", []uint32{7}, false},
		{"M0 OK [APPENDUID 1795650112 1:4] Append completed.", []uint32{1, 2, 3, 4}, false},
		{"M0 OK [APPENDUID 1 3,5:6,9] done", []uint32{3, 5, 6, 9}, false},
		{"M0 OK Append completed.", nil, true},
		{"M0 OK [APPENDUID 1] x", nil, true},
		{"M0 OK [APPENDUID 1 4:2] x", nil, true},
		{"M0 OK [APPENDUID 1 0] x", nil, true},
	}
	for _, tt := range tests {
		got, err := parseAppendUID(tt.line)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseAppendUID(%q) = %v, %v; want %v, error %v", tt.line, got, err, tt.want, tt.wantErr)
		}
	}
}
