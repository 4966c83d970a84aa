// Package tagmap maps notmuch tags to IMAP keywords and back: which tags
// leave the machine, under which keyword, and how a name that one side
// cannot spell is encoded for the other. It is pure code: it runs nothing
// and imports nothing of satchel.
//
// Keywords are case-insensitive (RFC 9051 §2.3.2: a flag is matched
// without regard to case) and tags are not, so two tags that differ only
// in case are one label: Label gives the key both sides are compared by.
//
// # Name encoding
//
// A keyword is an atom (RFC 9051 §9, flag-keyword = atom): printable
// ASCII without SP, ( ) { % * " \ or ]. A tag is any UTF-8 string. The
// encoding between them is reversible both ways:
//
//   - A tag whose bytes are all atom characters other than "=" is its own
//     keyword: work, lists/go, $label1.
//   - Any other byte of a tag (space, non-ASCII, a special, "=") is
//     written =XX, its value in two hexadecimal digits: "to do" is
//     to=20do, "über" is =C3=BCber, "a=b" is a=3Db.
//   - A keyword that is not such an encoding (an "=" not followed by two
//     hexadecimal digits of a byte that needed it, as in a=b or =41) becomes
//     the tag "=" followed by the keyword as it is: a=b is the tag =a=b,
//     and that tag is the keyword a=b again.
//
// A tag that is not valid UTF-8, holds a control character, is longer
// than MaxTag bytes or whose keyword would be longer than MaxKeyword
// bytes never leaves the machine; a keyword that is not an atom, or
// longer than MaxKeyword bytes, or whose tag would be longer than MaxTag,
// never becomes a tag.
package tagmap

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxKeyword bounds a synced keyword's length in bytes. notmuch stores a
// tag as a Xapian term, limited to 245 bytes with its prefix; servers
// limit keywords too (Dovecot's Maildir keeps them in one line each of
// its dovecot-keywords file). Longer names are not synced, either way.
const MaxKeyword = 200

// MaxTag is the longest tag notmuch stores, in bytes (NOTMUCH_TAG_MAX):
// a longer one fails the whole notmuch tag --batch.
const MaxTag = 200

// DefaultKeywords pairs keywords with tags where other tools use another
// word for the same label: Thunderbird and Apple Mail set $Junk (RFC 5788
// registry) for what notmuch users, afew and lieer tag spam. Every other
// keyword is the tag of the same name.
var DefaultKeywords = map[string]string{"$Junk": "spam"}

// DefaultLocal are the tags that never leave the machine: notmuch's own
// (new, inbox, attachment, signed, encrypted, which notmuch new sets) and
// those maildir.synchronize_flags keeps in the file name (unread,
// replied, passed, flagged, draft), which reach the server as system
// flags already.
var DefaultLocal = []string{"new", "inbox", "unread", "replied", "passed", "flagged", "draft", "attachment", "signed", "encrypted"}

// Map is a configured mapping. Its methods are safe for concurrent use.
type Map struct {
	// toTag: label of a mapped keyword → tag; toKeyword: tag → keyword.
	toTag     map[string]string
	toKeyword map[string]string
	local     map[string]bool
}

// New builds a Map from keyword → tag pairs (nil: DefaultKeywords) and the
// tags that stay local (nil: DefaultLocal). A pair must name an atom and
// a usable tag, and no keyword or tag may appear twice.
func New(keywords map[string]string, local []string) (*Map, error) {
	if keywords == nil {
		keywords = DefaultKeywords
	}
	if local == nil {
		local = DefaultLocal
	}
	m := &Map{toTag: map[string]string{}, toKeyword: map[string]string{}, local: map[string]bool{}}
	for _, t := range local {
		m.local[t] = true
	}
	for _, kw := range slices.Sorted(mapKeys(keywords)) {
		tag := keywords[kw]
		switch {
		case !IsKeyword(kw):
			return nil, fmt.Errorf("keyword %q: not an IMAP keyword (RFC 9051 §9 flag-keyword)", kw)
		case !usableTag(tag):
			return nil, fmt.Errorf("keyword %q: tag %q is empty, not UTF-8 or holds a control character", kw, tag)
		case m.toTag[Label(kw)] != "":
			return nil, fmt.Errorf("keyword %q: mapped twice (keywords are case-insensitive)", kw)
		case m.toKeyword[tag] != "":
			return nil, fmt.Errorf("tag %q: mapped to two keywords", tag)
		}
		m.toTag[Label(kw)] = tag
		m.toKeyword[tag] = kw
	}
	return m, nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Local reports whether a tag never leaves the machine.
func (m *Map) Local(tag string) bool { return m.local[tag] }

// Keyword returns the keyword a tag is stored as on the server; false if
// the tag stays local: a local tag, a tag another keyword is mapped from
// (the tag $Junk, when $Junk is spam), or one that cannot be encoded.
func (m *Map) Keyword(tag string) (string, bool) {
	if m.local[tag] {
		return "", false
	}
	if kw, ok := m.toKeyword[tag]; ok {
		return kw, true
	}
	kw, ok := EncodeTag(tag)
	if !ok || m.toTag[Label(kw)] != "" {
		return "", false
	}
	return kw, true
}

// Tag returns the tag a keyword becomes; false if the keyword is not
// synced: it is not an atom or too long, it names a local tag, or its tag
// is mapped from another keyword (the keyword spam, when $Junk is spam).
// $Forwarded and the system flags are never keywords here: a Maildir
// file name carries them.
func (m *Map) Tag(keyword string) (string, bool) {
	if t, ok := m.toTag[Label(keyword)]; ok {
		return t, true
	}
	tag, ok := DecodeKeyword(keyword)
	if !ok || m.local[tag] {
		return "", false
	}
	if _, mapped := m.toKeyword[tag]; mapped {
		return "", false
	}
	return tag, true
}

// Label is the key a keyword is compared by: keywords are case-insensitive
// (RFC 9051 §2.3.2), and are ASCII, so ASCII lower case is enough.
func Label(keyword string) string {
	for i := 0; i < len(keyword); i++ {
		if c := keyword[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(keyword)
		}
	}
	return keyword
}

// IsKeyword reports whether s can be sent as a keyword: a non-empty atom
// (RFC 9051 §9: ATOM-CHAR is any CHAR except atom-specials, which are
// ( ) { SP CTL % * " \ ]) of at most MaxKeyword bytes.
func IsKeyword(s string) bool {
	if s == "" || len(s) > MaxKeyword {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !atomChar(s[i]) {
			return false
		}
	}
	return true
}

func atomChar(c byte) bool {
	if c <= 0x20 || c >= 0x7f {
		return false
	}
	return !strings.ContainsRune(`(){%*"\]`, rune(c))
}

// plain reports whether a tag byte is written as it is: an atom
// character other than the escape "=".
func plain(c byte) bool { return atomChar(c) && c != '=' }

// usableTag reports whether a tag can be synced: non-empty UTF-8 without
// control characters.
func usableTag(t string) bool {
	if t == "" || len(t) > MaxTag || !utf8.ValidString(t) {
		return false
	}
	for _, r := range t {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789ABCDEF"

// escape writes each byte of t as itself or =XX.
func escape(t string) string {
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unescape reverses escape; false if kw is not what escape writes for a
// usable tag (up to the case of its hexadecimal digits).
func unescape(kw string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(kw); i++ {
		c := kw[i]
		if c != '=' {
			if !plain(c) {
				return "", false
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(kw) {
			return "", false
		}
		hi, ok1 := unhex(kw[i+1])
		lo, ok2 := unhex(kw[i+2])
		v := hi<<4 | lo
		if !ok1 || !ok2 || plain(v) {
			return "", false
		}
		b.WriteByte(v)
		i += 2
	}
	t := b.String()
	return t, usableTag(t)
}

// raw reports whether kw is a keyword that is not an escaped tag, so that
// it is carried as the tag "=" + kw. A keyword whose unescaped tag is
// itself "=" + such a keyword is one too: otherwise two keywords would
// share that tag. The recursion ends: the tag is shorter than kw.
func raw(kw string) bool {
	t, ok := unescape(kw)
	if !ok {
		return true
	}
	rest, ok := strings.CutPrefix(t, "=")
	return ok && IsKeyword(rest) && raw(rest)
}

// EncodeTag returns the keyword a tag is written as (see the package
// doc); false if the tag cannot be synced.
func EncodeTag(tag string) (string, bool) {
	if !usableTag(tag) {
		return "", false
	}
	if rest, ok := strings.CutPrefix(tag, "="); ok && IsKeyword(rest) && raw(rest) {
		return rest, true
	}
	kw := escape(tag)
	return kw, len(kw) <= MaxKeyword
}

// DecodeKeyword returns the tag a keyword is read as (see the package
// doc); false if the keyword is not an atom of at most MaxKeyword bytes.
// EncodeTag of the tag is the keyword again, up to case.
func DecodeKeyword(kw string) (string, bool) {
	if !IsKeyword(kw) {
		return "", false
	}
	if raw(kw) {
		t := "=" + kw
		return t, len(t) <= MaxTag
	}
	t, _ := unescape(kw)
	return t, true
}
