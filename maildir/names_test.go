package maildir

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"
)

func TestEncodeComponent(t *testing.T) {
	a250, a249 := strings.Repeat("a", 250), strings.Repeat("a", 249)
	tests := []struct{ level, want string }{
		{"INBOX", "INBOX"},
		{"Entwürfe", "Entwürfe"},
		{"日本語", "日本語"},
		{"", "%"},
		{".", "%2E"},
		{"..", "%2E."},
		{".hidden", "%2Ehidden"},
		{"a.b.", "a.b."},
		{"cur", "%63ur"},
		{"NEW", "%4EEW"},
		{"Tmp", "%54mp"},
		{"curry", "curry"},
		{"a/b", "a%2Fb"},
		{"100%", "100%25"},
		{"%+", "%25+"},
		{`a\b`, "a%5Cb"},
		{"\x00\x01\x1f\x7f", "%00%01%1F%7F"},
		{"tab\there", "tab%09here"},
		{"\xff\xfe", "%FF%FE"},
		{"a\xe2\x82", "a%E2%82"},      // truncated UTF-8 sequence
		{"\xed\xa0\x80", "%ED%A0%80"}, // a UTF-16 surrogate is not UTF-8
		{"space and ~!", "space and ~!"},
		{strings.Repeat("a", 255), strings.Repeat("a", 255)},
		{strings.Repeat("a", 256), a250 + "%+/" + "aaaaaa"},
		{strings.Repeat("a", 300), a250 + "%+/" + strings.Repeat("a", 50)},
		// An escape is never cut: "%2F" does not fit after 249 bytes.
		{a249 + "/" + strings.Repeat("b", 10), a249 + "%+/%2F" + strings.Repeat("b", 10)},
		// A UTF-8 sequence is never cut.
		{a249 + "é" + strings.Repeat("b", 10), a249 + "%+/é" + strings.Repeat("b", 10)},
		// A chunk never starts with ".".
		{a250 + "." + strings.Repeat("b", 10), a250 + "%+/%2E" + strings.Repeat("b", 10)},
		{a250 + a250 + "xyz", a250 + "%+/" + a250 + "%+/xyz"},
	}
	for _, tt := range tests {
		got := EncodeComponent(tt.level)
		if got != tt.want {
			t.Errorf("EncodeComponent(%q) = %q, want %q", trim(tt.level), trim(got), trim(tt.want))
			continue
		}
		back, err := DecodeComponent(got)
		if err != nil || back != tt.level {
			t.Errorf("DecodeComponent(%q) = %q, %v; want %q", trim(got), trim(back), err, trim(tt.level))
		}
	}
}

func TestEncodeName(t *testing.T) {
	tests := []struct {
		levels []string
		want   string
	}{
		{[]string{"INBOX"}, "INBOX"},
		{[]string{"INBOX", "Sent"}, "INBOX/Sent"},
		{[]string{"a", "", "b"}, "a/%/b"},
		{[]string{"..", "..", "etc"}, "%2E./%2E./etc"},
		{[]string{"Archive", "cur"}, "Archive/%63ur"},
		{[]string{"a/b", "c"}, "a%2Fb/c"},
	}
	for _, tt := range tests {
		got, err := EncodeName(tt.levels)
		if err != nil || got != tt.want {
			t.Errorf("EncodeName(%q) = %q, %v; want %q", tt.levels, got, err, tt.want)
			continue
		}
		back, err := DecodeName(got)
		if err != nil || !slices.Equal(back, tt.levels) {
			t.Errorf("DecodeName(%q) = %q, %v; want %q", got, back, err, tt.levels)
		}
	}
}

func TestEncodeNameLimits(t *testing.T) {
	if _, err := EncodeName(nil); err == nil {
		t.Error("EncodeName(nil) succeeded")
	}
	// 3800 bytes exactly is allowed, one more is not.
	var fits []string
	for range 18 {
		fits = append(fits, strings.Repeat("b", 200))
	}
	// 18 levels and their 18 separators, then the rest.
	fits = append(fits, strings.Repeat("c", 3800-18*201))
	rel, err := EncodeName(fits)
	if err != nil || len(rel) != 3800 {
		t.Fatalf("EncodeName of 3800 bytes: %d bytes, %v", len(rel), err)
	}
	if _, err := DecodeName(rel); err != nil {
		t.Errorf("DecodeName of 3800 bytes: %v", err)
	}
	fits[len(fits)-1] += "c"
	if _, err := EncodeName(fits); !errors.Is(err, ErrNameTooLong) {
		t.Errorf("EncodeName of 3801 bytes: %v, want ErrNameTooLong", err)
	}
	// Escapes count: 1300 NULs are 3900 bytes.
	if _, err := EncodeName([]string{strings.Repeat("\x00", 1300)}); !errors.Is(err, ErrNameTooLong) {
		t.Errorf("EncodeName of 1300 escaped bytes: %v, want ErrNameTooLong", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	a250 := strings.Repeat("a", 250)
	for _, rel := range []string{
		"",
		"/",
		"/abs",
		"a/",
		"a//b",
		".",
		"..",
		"a/../b",
		".hidden",
		"cur",
		"a/NEW",
		"%2e",                     // lowercase hex
		"%ZZ",                     // not hex
		"%4",                      // truncated
		"a%",                      // truncated
		"%%",                      // not an escape
		"%41",                     // "A" needs no escape
		"%2E%2E",                  // ".." is "%2E."
		"a%2E",                    // only a leading "." is escaped
		"a%+",                     // continuation without a next chunk
		"a%+/b",                   // a short level is never cut
		"a\x00b",                  // raw NUL
		"a\x01",                   // raw control byte
		"\xff",                    // raw invalid UTF-8
		`a\b`,                     // raw backslash
		"%+",                      // continuation of nothing
		a250 + "%+/" + a250 + "a", // the last chunk is not full enough to need a cut: wrong split
		strings.Repeat("a", 256),  // too long for one element
		a250 + "%+/.b",            // a chunk starting with "."
	} {
		if levels, err := DecodeName(rel); err == nil {
			t.Errorf("DecodeName(%q) = %q, want an error", trim(rel), levels)
		}
	}
	if _, err := DecodeComponent("a/b"); err == nil {
		t.Error(`DecodeComponent("a/b") succeeded`)
	}
}

// genLevel draws mailbox name levels: text, arbitrary bytes, the names
// the escaping singles out, and long levels built from pieces that make
// chunk boundaries interesting.
func genLevel() *rapid.Generator[string] {
	piece := rapid.SampledFrom([]string{"a", "b", ".", "%", "+", "/", "\\", "\x00", "\x7f", "é", "日", "😀", "\xff", "\xe2\x82", "cur"})
	return rapid.OneOf(
		rapid.String(),
		rapid.Map(rapid.SliceOfN(rapid.Byte(), 0, 40), func(b []byte) string { return string(b) }),
		rapid.SampledFrom([]string{"", ".", "..", "...", ".x", "cur", "NEW", "tMp", "%", "%+", "%2E", "INBOX"}),
		rapid.Map(rapid.SliceOfN(piece, 0, 700), func(p []string) string { return strings.Join(p, "") }),
	)
}

// checkElements asserts what every produced path element must satisfy.
func checkElements(t interface{ Fatalf(string, ...any) }, rel string) {
	if !filepath.IsLocal(rel) {
		t.Fatalf("%q is not a local path", rel)
	}
	for _, e := range strings.Split(rel, "/") {
		switch {
		case e == "" || len(e) > maxElem:
			t.Fatalf("element %q of %q: length %d", e, rel, len(e))
		case e[0] == '.':
			t.Fatalf("element %q of %q starts with a dot", e, rel)
		case isReserved(e):
			t.Fatalf("element %q of %q is a Maildir subdirectory", e, rel)
		case !utf8.ValidString(e):
			t.Fatalf("element %q of %q is not UTF-8", e, rel)
		case strings.ContainsFunc(e, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }):
			t.Fatalf("element %q of %q holds a control byte or backslash", e, rel)
		}
	}
}

func TestNameRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		levels := rapid.SliceOfN(genLevel(), 1, 8).Draw(t, "levels")
		rel, err := EncodeName(levels)
		if err != nil {
			if !errors.Is(err, ErrNameTooLong) {
				t.Fatalf("EncodeName: %v", err)
			}
			n := len(levels) - 1
			for _, l := range levels {
				n += len(EncodeComponent(l))
			}
			if n <= maxRelPath {
				t.Fatalf("EncodeName refused a path of %d bytes", n)
			}
			return
		}
		if len(rel) > maxRelPath {
			t.Fatalf("EncodeName gave %d bytes", len(rel))
		}
		checkElements(t, rel)
		back, err := DecodeName(rel)
		if err != nil {
			t.Fatalf("DecodeName(%q): %v", rel, err)
		}
		if !slices.Equal(back, levels) {
			t.Fatalf("DecodeName(EncodeName(%q)) = %q", levels, back)
		}
		for _, l := range levels {
			c, err := DecodeComponent(EncodeComponent(l))
			if err != nil || c != l {
				t.Fatalf("DecodeComponent(EncodeComponent(%q)) = %q, %v", l, c, err)
			}
		}
	})
}
