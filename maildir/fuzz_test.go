package maildir

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Run with: go test -fuzz=FuzzDecodeName ./maildir/ (one target at a
// time). Seeds live in testdata/fuzz/<FuzzName>/ and in f.Add below.

func FuzzDecodeName(f *testing.F) {
	for _, s := range []string{
		"INBOX", "INBOX/Sent", "%", "a/%/b", "%2E.", "%63ur", "cur", "..", "a//b",
		"%2e", "%41", "a%+/b", strings.Repeat("a", 250) + "%+/bbbbbb", "\xff", "Entwürfe/日本",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		levels, err := DecodeName(rel)
		if err != nil {
			return
		}
		enc, err := EncodeName(levels)
		if err != nil {
			t.Fatalf("DecodeName(%q) = %q, which does not encode: %v", rel, levels, err)
		}
		if enc != rel {
			t.Fatalf("DecodeName(%q) = %q, which encodes as %q", rel, levels, enc)
		}
		checkElements(t, rel)
	})
}

func FuzzEncodeName(f *testing.F) {
	f.Add("INBOX.Sent", byte('.'))
	f.Add("a/../b", byte('/'))
	f.Add("cur\x00new\x00tmp", byte(0))
	f.Add(".hidden|%|%+|", byte('|'))
	f.Add(strings.Repeat("é", 200), byte('/'))
	f.Add("\xff\xfe/\xed\xa0\x80", byte('/'))
	f.Fuzz(func(t *testing.T, name string, delim byte) {
		levels := strings.Split(name, string([]byte{delim}))
		rel, err := EncodeName(levels)
		if err != nil {
			if !errors.Is(err, ErrNameTooLong) {
				t.Fatalf("EncodeName(%q): %v", levels, err)
			}
			return
		}
		checkElements(t, rel)
		back, err := DecodeName(rel)
		if err != nil {
			t.Fatalf("DecodeName(%q): %v", rel, err)
		}
		if !slices.Equal(back, levels) {
			t.Fatalf("DecodeName(EncodeName(%q)) = %q", levels, back)
		}
	})
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"1.M2P3.host:2,FS", "k", "k:2,", "k:1,S", ":2,S", ".x", "a/b", "k:2,Sab", "k::2,S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		key, flags, ok := ParseName(name)
		if !ok {
			if key != "" {
				t.Fatalf("ParseName(%q) = %q, not ok", name, key)
			}
			return
		}
		if !validKey(key) || !strings.HasPrefix(name, key) {
			t.Fatalf("ParseName(%q) gave key %q", name, key)
		}
		canon := key + ":2," + InfoFromFlags(flags)
		k2, f2, ok2 := ParseName(canon)
		if !ok2 || k2 != key || !f2.Equal(flags) {
			t.Fatalf("ParseName(%q) = %q, %v, %v; want %q, %v", canon, k2, f2, ok2, key, flags)
		}
	})
}

// FuzzSniffMessageID checks that the header sniffer never panics and does
// not depend on how the stream is cut into writes.
func FuzzSniffMessageID(f *testing.F) {
	f.Add("Message-ID: <a@b>\n\nbody", 3)
	f.Add("Subject: x\nMessage-ID:\n <fold@ed>\n\n", 1)
	f.Add("\nMessage-ID: <x@y>\n", 2)
	f.Add("Message-ID: <h@o>", 5)
	f.Add("broken\nMessage-ID: <b@r>\n\n", 4)
	f.Fuzz(func(t *testing.T, msg string, step int) {
		whole := &headerSniffer{}
		_, _ = whole.Write([]byte(msg))
		want := whole.messageID()
		if strings.ContainsAny(want, "\r\n") {
			t.Fatalf("Message-ID %q holds a line break", want)
		}
		step = max(1, min(step%64, len(msg)))
		cut := &headerSniffer{}
		for s := msg; s != ""; {
			n := min(step, len(s))
			_, _ = cut.Write([]byte(s[:n]))
			s = s[n:]
		}
		if got := cut.messageID(); got != want {
			t.Fatalf("in writes of %d: %q, whole: %q", step, got, want)
		}
	})
}
