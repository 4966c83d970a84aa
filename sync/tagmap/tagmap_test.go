package tagmap

import (
	"strings"
	"testing"
)

func TestEncodeDecode(t *testing.T) {
	for _, c := range []struct{ tag, kw string }{
		{"work", "work"},
		{"Work", "Work"},
		{"lists/go", "lists/go"},
		{"$label1", "$label1"},
		{"to do", "to=20do"},
		{"über", "=C3=BCber"},
		{"a=b", "a=3Db"},
		{`\Seen`, "=5CSeen"}, // never a system flag
		{"x]", "x=5D"},
		{"(p)", "=28p=29"},
		{"50%", "50=25"},
		{"=a=b", "a=b"}, // a keyword that is no escape is carried raw
		{"==41", "=41"}, // an escape of a byte that needs none
		{"==C3", "=C3"}, // an escape that is not UTF-8
	} {
		kw, ok := EncodeTag(c.tag)
		if !ok || kw != c.kw {
			t.Errorf("EncodeTag(%q) = %q, %v; want %q", c.tag, kw, ok, c.kw)
		}
		tag, ok := DecodeKeyword(c.kw)
		if !ok || tag != c.tag {
			t.Errorf("DecodeKeyword(%q) = %q, %v; want %q", c.kw, tag, ok, c.tag)
		}
	}
	for _, bad := range []string{"", "a\x01b", "\xff", strings.Repeat("é", 40), strings.Repeat("t", MaxTag+1)} {
		if kw, ok := EncodeTag(bad); ok {
			t.Errorf("EncodeTag(%q) = %q: a tag that cannot be synced was encoded", bad, kw)
		}
	}
	for _, bad := range []string{"", "a b", "x(", `\Seen`, "é", strings.Repeat("k", MaxKeyword+1), "a\x01", "a=" + strings.Repeat("k", MaxTag-2)} {
		if tag, ok := DecodeKeyword(bad); ok {
			t.Errorf("DecodeKeyword(%q) = %q: not a keyword, decoded", bad, tag)
		}
	}
}

// TestRawTower: the tag "=a=b" is the keyword a=b; the keyword that
// escapes that tag, =3Da=3Db, is therefore carried raw too, so that no
// two keywords share a tag.
func TestRawTower(t *testing.T) {
	seen := map[string]string{}
	for _, kw := range []string{"a=b", "=3Da=3Db", "=3D=3D3Da=3D3Db", "=3Da=3Db"} {
		tag, ok := DecodeKeyword(kw)
		if !ok {
			t.Fatalf("DecodeKeyword(%q) failed", kw)
		}
		if other, dup := seen[tag]; dup && Label(other) != Label(kw) {
			t.Fatalf("keywords %q and %q both decode to tag %q", other, kw, tag)
		}
		seen[tag] = kw
		back, ok := EncodeTag(tag)
		if !ok || Label(back) != Label(kw) {
			t.Fatalf("keyword %q -> tag %q -> keyword %q", kw, tag, back)
		}
	}
}

func TestMap(t *testing.T) {
	m, err := New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tag, kw string
		ok      bool
	}{
		{"spam", "$Junk", true},
		{"work", "work", true},
		{"$NotJunk", "$NotJunk", true},
		{"inbox", "", false},
		{"unread", "", false},
		{"attachment", "", false},
		{"$Junk", "", false}, // the tag $Junk would be the keyword spam is mapped from
	} {
		kw, ok := m.Keyword(c.tag)
		if ok != c.ok || kw != c.kw {
			t.Errorf("Keyword(%q) = %q, %v; want %q, %v", c.tag, kw, ok, c.kw, c.ok)
		}
	}
	for _, c := range []struct {
		kw, tag string
		ok      bool
	}{
		{"$Junk", "spam", true},
		{"$junk", "spam", true}, // case-insensitive
		{"JUNK", "JUNK", true},
		{"spam", "", false}, // the tag spam is $Junk's
		{"unread", "", false},
		{"Inbox", "Inbox", true}, // tags are case-sensitive: Inbox is not inbox
		{"$label1", "$label1", true},
	} {
		tag, ok := m.Tag(c.kw)
		if ok != c.ok || tag != c.tag {
			t.Errorf("Tag(%q) = %q, %v; want %q, %v", c.kw, tag, ok, c.tag, c.ok)
		}
	}
	if Label("Work") != Label("work") || Label("Work") == Label("work2") {
		t.Error("Label does not fold case")
	}
	for _, bad := range []map[string]string{
		{"a b": "x"},
		{"x": ""},
		{"x": "a\x01"},
		{"Foo": "a", "foo": "b"},
		{"a": "t", "b": "t"},
	} {
		if _, err := New(bad, nil); err == nil {
			t.Errorf("New(%q) accepted a bad mapping", bad)
		}
	}
}

// FuzzNames: every syncable tag is a keyword that decodes to it again,
// every keyword a tag that encodes to it again (up to case), and an
// encoded tag is always an atom, never a system flag.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"work", "to do", "über", "a=b", "=a=b", "=41", "=3Da=3Db", `\Seen`, "$Junk", "x\x00y", "=", "=="} {
		f.Add(s)
	}
	m, err := New(nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if kw, ok := EncodeTag(s); ok {
			if !IsKeyword(kw) || strings.HasPrefix(kw, `\`) {
				t.Fatalf("tag %q encoded as %q: not a keyword", s, kw)
			}
			back, ok := DecodeKeyword(kw)
			if !ok || back != s {
				t.Fatalf("tag %q -> %q -> %q, %v", s, kw, back, ok)
			}
		}
		if tag, ok := DecodeKeyword(s); ok {
			kw, ok := EncodeTag(tag)
			if !ok || Label(kw) != Label(s) {
				t.Fatalf("keyword %q -> tag %q -> %q, %v", s, tag, kw, ok)
			}
		}
		if kw, ok := m.Keyword(s); ok {
			if tag, ok := m.Tag(kw); !ok || tag != s {
				t.Fatalf("mapped tag %q -> %q -> %q, %v", s, kw, tag, ok)
			}
		}
		if tag, ok := m.Tag(s); ok {
			if kw, ok := m.Keyword(tag); !ok || Label(kw) != Label(s) {
				t.Fatalf("mapped keyword %q -> %q -> %q, %v", s, tag, kw, ok)
			}
		}
	})
}
