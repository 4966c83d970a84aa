package maildir

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Mailbox names become local paths as follows. A mailbox name, decoded to
// UTF-8 and split on the server's hierarchy delimiter, is a list of levels;
// each level becomes one escaped component, and the components are joined
// with "/" into a path relative to the account's root. Mailbox "A" and its
// child "A.B" (delimiter ".") therefore live in "A" and "A/B": the child is
// a directory next to the parent's own cur/, new/ and tmp/.
//
// Escaping a level, byte by byte ("%XX" is the byte 0xXX, two uppercase
// hex digits):
//
//   - "%", "/", "\", NUL, the control bytes 0x01–0x1F and 0x7F, and bytes
//     that are not part of valid UTF-8 are escaped; everything else,
//     including non-ASCII text, is kept, so names stay readable.
//   - A leading "." is escaped, so no component is ".", ".." or a hidden
//     name (the Maildir spec and mail readers skip dot files).
//   - A level equal to "cur", "new" or "tmp" in any case gets its first
//     byte escaped, so it cannot collide with the Maildir's own
//     subdirectories.
//   - The empty level is "%" alone.
//   - A level whose escaped form exceeds 255 bytes (NAME_MAX) is cut into
//     chunks of at most 250 bytes, never inside an escape or a UTF-8
//     sequence, stored as nested directories; every chunk but the last
//     ends with "%+". A chunk that would start with "." has it escaped.
//
// "%+" and a lone "%" cannot come from escaping (a literal "%" is "%25"),
// so decoding is unambiguous. Every name has exactly one encoding: the
// decoders reject anything the encoders would not produce. The mapping
// treats "INBOX" like any other name; the caller decides where it goes.

const (
	// maxElem is NAME_MAX on the common file systems.
	maxElem = 255
	// maxChunk leaves room for the "%+" continuation mark.
	maxChunk = 250
	// maxRelPath keeps the full path of a message under PATH_MAX (4096)
	// with room for the account root and "/cur/<key>:2,<info>".
	maxRelPath = 3800
)

// ErrNameTooLong is returned by EncodeName when the local path of a
// mailbox would be too long to be opened.
var ErrNameTooLong = errors.New("mailbox name too long for the file system")

// EncodeName maps the hierarchy levels of a mailbox name (already decoded
// to UTF-8, split on the server's delimiter) to a relative path of escaped
// components joined with "/", as described above. The path never leaves
// the root it is joined to. It fails for an empty list and, with
// ErrNameTooLong, for a path longer than 3800 bytes.
func EncodeName(levels []string) (string, error) {
	if len(levels) == 0 {
		return "", errors.New("encode mailbox name: no levels")
	}
	parts := make([]string, len(levels))
	n := 0
	for i, l := range levels {
		parts[i] = EncodeComponent(l)
		n += len(parts[i]) + 1
		if n-1 > maxRelPath {
			return "", fmt.Errorf("encode mailbox name (over %d bytes): %w", maxRelPath, ErrNameTooLong)
		}
	}
	return strings.Join(parts, "/"), nil
}

// DecodeName is the inverse of EncodeName: it maps a relative path back to
// the levels of the mailbox name. It rejects every path EncodeName cannot
// produce.
func DecodeName(rel string) ([]string, error) {
	if rel == "" {
		return nil, errors.New("decode mailbox path: empty")
	}
	if len(rel) > maxRelPath {
		return nil, fmt.Errorf("decode mailbox path (%d bytes): %w", len(rel), ErrNameTooLong)
	}
	elems := strings.Split(rel, "/")
	var levels []string
	start := 0
	for i, e := range elems {
		if i < len(elems)-1 && strings.HasSuffix(e, "%+") {
			continue // a chunk of a long level; the next element goes on
		}
		l, err := unescape(elems[start : i+1])
		if err != nil {
			return nil, fmt.Errorf("decode mailbox path %q: %w", rel, err)
		}
		levels = append(levels, l)
		start = i + 1
	}
	enc, err := EncodeName(levels)
	if err != nil {
		return nil, fmt.Errorf("decode mailbox path %q: %w", rel, err)
	}
	if enc != rel {
		return nil, fmt.Errorf("decode mailbox path %q: not in canonical form", rel)
	}
	return levels, nil
}

// escapeLevel escapes every byte of a non-empty level that needs it, as
// described above, without cutting it into chunks.
func escapeLevel(level string) []byte {
	reserved := isReserved(level)
	var b []byte
	for i := 0; i < len(level); {
		var n int
		b, n = appendUnit(b, level, i, i == 0, reserved)
		i += n
	}
	return b
}

// EncodeComponent escapes one level of a mailbox name. The result is a
// single path element of at most 255 bytes, or, for a long level, several
// joined with "/" of which all but the last end with "%+".
func EncodeComponent(level string) string {
	if level == "" {
		return "%"
	}
	b := escapeLevel(level)
	if len(b) <= maxElem {
		return string(b)
	}
	// Too long for one directory name: cut into chunks, filling each
	// greedily so the split is deterministic.
	reserved := isReserved(level)
	b = b[:0]
	chunk := 0
	for i := 0; i < len(level); {
		start := len(b)
		nb, n := appendUnit(b, level, i, chunk == 0, reserved)
		if size := len(nb) - start; chunk > 0 && chunk+size > maxChunk {
			b = append(nb[:start], "%+/"...)
			chunk = 0
			continue // encode the unit again, now at a chunk start
		}
		b = nb
		chunk += len(nb) - start
		i += n
	}
	return string(b)
}

// DecodeComponent is the inverse of EncodeComponent. It rejects every
// string EncodeComponent cannot produce.
func DecodeComponent(enc string) (string, error) {
	l, err := unescape(strings.Split(enc, "/"))
	if err != nil {
		return "", fmt.Errorf("decode %q: %w", enc, err)
	}
	if EncodeComponent(l) != enc {
		return "", fmt.Errorf("decode %q: not in canonical form", enc)
	}
	return l, nil
}

// isReserved reports whether a level would collide with a Maildir
// subdirectory.
func isReserved(level string) bool {
	return strings.EqualFold(level, "cur") || strings.EqualFold(level, "new") || strings.EqualFold(level, "tmp")
}

// appendUnit appends the escaped form of the unit of level starting at i
// (one byte, or one whole UTF-8 sequence) and returns how many bytes of
// level it consumed. atStart says the unit begins a directory name, where
// "." must be escaped; reserved says the level is cur/new/tmp, whose first
// byte is escaped.
func appendUnit(b []byte, level string, i int, atStart, reserved bool) ([]byte, int) {
	r, size := utf8.DecodeRuneInString(level[i:])
	c := level[i]
	switch {
	case r == utf8.RuneError && size == 1, // not valid UTF-8
		c < 0x20, c == 0x7f, c == '%', c == '/', c == '\\',
		atStart && c == '.',
		i == 0 && reserved:
		const hex = "0123456789ABCDEF"
		return append(b, '%', hex[c>>4], hex[c&0xf]), 1
	}
	return append(b, level[i:i+size]...), size
}

// unescape joins the chunks of one component and undoes the escapes. It
// only checks the syntax; callers compare a re-encoding to reject
// non-canonical input.
func unescape(chunks []string) (string, error) {
	if len(chunks) == 1 && chunks[0] == "%" {
		return "", nil
	}
	var b strings.Builder
	for i, c := range chunks {
		if i < len(chunks)-1 {
			var ok bool
			if c, ok = strings.CutSuffix(c, "%+"); !ok {
				return "", errors.New("path element is not a continued chunk")
			}
		}
		for j := 0; j < len(c); j++ {
			if c[j] != '%' {
				b.WriteByte(c[j])
				continue
			}
			if j+2 >= len(c) {
				return "", errors.New("truncated escape")
			}
			hi, ok1 := unhex(c[j+1])
			lo, ok2 := unhex(c[j+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("invalid escape %q", c[j:j+3])
			}
			b.WriteByte(hi<<4 | lo)
			j += 2
		}
	}
	return b.String(), nil
}

// unhex reads one uppercase hex digit; lowercase is not canonical.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
