package config

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"20MB", 20 << 20, true},
		{"20mb", 20 << 20, true},
		{"20 MiB", 20 << 20, true},
		{"512KB", 512 << 10, true},
		{"512k", 512 << 10, true},
		{"1GB", 1 << 30, true},
		{"3B", 3, true},
		{"8589934591GB", 8589934591 << 30, true},
		{"8589934592GB", 0, false}, // 2^63 bytes
		{"1TB", 0, false},
		{"1.5MB", 0, false},
		{"-1", 0, false},
		{"MB", 0, false},
		{"", 0, false},
		{"0x10", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestParseSizeUnits checks every unit against its multiplier, for any
// count that fits.
func TestParseSizeUnits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		unit := rapid.SampledFrom([]string{"", "B", "K", "KB", "KiB", "M", "MB", "MiB", "G", "GB", "GiB"}).Draw(t, "unit")
		shift := map[byte]uint{'K': 10, 'M': 20, 'G': 30}[append([]byte(unit), 'B')[0]]
		n := rapid.Int64Range(0, 1<<(62-shift)).Draw(t, "n")
		sep := rapid.SampledFrom([]string{"", " "}).Draw(t, "sep")
		if unit == "" {
			sep = ""
		}
		got, err := parseSize(fmt.Sprintf("%d%s%s", n, sep, unit))
		if err != nil || got != n<<shift {
			t.Fatalf("got %d, %v; want %d", got, err, n<<shift)
		}
	})
}

func TestParseSince(t *testing.T) {
	tests := []struct {
		in   string
		want Since
		ok   bool
	}{
		{"", Since{}, true},
		{"90d", Since{Days: 90}, true},
		{"1d", Since{Days: 1}, true},
		{"36500d", Since{Days: 36500}, true},
		{"2024-01-31", Since{Date: time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC)}, true},
		{"2024-02-29", Since{Date: time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)}, true},
		{"2023-02-29", Since{}, false},
		{"36501d", Since{}, false},
		{"0d", Since{}, false},
		{"-3d", Since{}, false},
		{"+3d", Since{}, false},
		{"d", Since{}, false},
		{"3w", Since{}, false},
		{"2024/01/31", Since{}, false},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in)
		if (err == nil) != tt.ok || !got.Date.Equal(tt.want.Date) || got.Days != tt.want.Days {
			t.Errorf("parseSince(%q) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseMaxDelete(t *testing.T) {
	tests := []struct {
		in   string
		want MaxDelete
		ok   bool
	}{
		{"25%", MaxDelete{25, 10}, true},
		{"25%,10", MaxDelete{25, 10}, true},
		{"25% , 3", MaxDelete{25, 3}, true},
		{"12.5%", MaxDelete{12.5, 10}, true},
		{"0%,0", MaxDelete{0, 0}, true},
		{"100%", MaxDelete{100, 10}, true},
		{"50", MaxDelete{0, 50}, true},
		{"0", MaxDelete{0, 0}, true},
		{"100.1%", MaxDelete{}, false},
		{"25", MaxDelete{0, 25}, true},
		{"25%,", MaxDelete{}, false},
		{",10", MaxDelete{}, false},
		{"%", MaxDelete{}, false},
		{".5%", MaxDelete{}, false},
		{"10,25%", MaxDelete{}, false},
		{"99999999999", MaxDelete{}, false},
		{"1%,99999999999", MaxDelete{}, false},
	}
	for _, tt := range tests {
		got, err := parseMaxDelete(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseMaxDelete(%q) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	hex64 := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	want, _ := parseFingerprint(hex64)
	if len(want) != 32 || want[0] != 0x01 || want[31] != 0xef {
		t.Fatalf("parseFingerprint(%s) = %x", hex64, want)
	}
	colons := ""
	for i := 0; i < len(hex64); i += 2 {
		if i > 0 {
			colons += ":"
		}
		colons += hex64[i : i+2]
	}
	for _, in := range []string{colons, "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"} {
		if got, err := parseFingerprint(in); err != nil || string(got) != string(want) {
			t.Errorf("parseFingerprint(%s) = %x, %v", in, got, err)
		}
	}
	if got, err := parseFingerprint(""); got != nil || err != nil {
		t.Errorf(`parseFingerprint("") = %x, %v; want nil, nil`, got, err)
	}
	for _, in := range []string{hex64[:62], hex64 + "00", hex64[:63] + "g", hex64[:63], "sha256:" + hex64} {
		if _, err := parseFingerprint(in); err == nil {
			t.Errorf("parseFingerprint(%s) succeeded", in)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"personal", "work-2", "a.b", "A_B", "x", "-dash", "a..b"} {
		if msg := checkName(ok); msg != "" {
			t.Errorf("checkName(%q) = %q", ok, msg)
		}
	}
	for _, bad := range []string{"", ".hidden", "..", ".", "a/b", `a\b`, "a b", "ümlaut", "a:b", "a\x00"} {
		if checkName(bad) == "" {
			t.Errorf("checkName(%q) accepted it", bad)
		}
	}
}

func TestCheckPattern(t *testing.T) {
	for _, ok := range []string{"*", "INBOX", "Lists/*", "[a-z]*", `\*`, "?"} {
		if msg := checkPattern(ok); msg != "" {
			t.Errorf("checkPattern(%q) = %q", ok, msg)
		}
	}
	for _, bad := range []string{"[", "[a-", `a\`, "x[]"} {
		if checkPattern(bad) == "" {
			t.Errorf("checkPattern(%q) accepted it", bad)
		}
	}
}
