package imaptest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The Gmail emulation's command syntax (RFC 9051 §9, RFC 3501 §9): a
// parser over one command as read by readCommand (scripted.go), literals
// inlined as "{N}\r\n" and their N bytes.

var errSyntax = errors.New("syntax error")

type gmParser struct {
	s string
	i int
}

func (p *gmParser) done() bool { return p.i >= len(p.s) }

func (p *gmParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

// sp consumes one space.
func (p *gmParser) sp() error {
	if p.peek() != ' ' {
		return errSyntax
	}
	p.i++
	return nil
}

// more consumes a space and reports whether one was there.
func (p *gmParser) more() bool { return p.sp() == nil }

// atom reads up to a space, a parenthesis or the end: atoms, sequence
// sets, flags (with their backslash), numbers.
func (p *gmParser) atom() (string, error) {
	start := p.i
	for !p.done() {
		c := p.s[p.i]
		if c == ' ' || c == '(' || c == ')' || c < 0x20 || c == 0x7f {
			break
		}
		p.i++
	}
	if p.i == start {
		return "", errSyntax
	}
	return p.s[start:p.i], nil
}

func (p *gmParser) number() (uint64, error) {
	a, err := p.atom()
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(a, 10, 64)
}

// astring reads an atom, a quoted string or a literal.
func (p *gmParser) astring() (string, error) {
	switch p.peek() {
	case '"':
		p.i++
		var b strings.Builder
		for !p.done() {
			c := p.s[p.i]
			p.i++
			switch c {
			case '"':
				return b.String(), nil
			case '\\':
				if p.done() {
					return "", errSyntax
				}
				c = p.s[p.i]
				p.i++
			case '\r', '\n':
				return "", errSyntax
			}
			b.WriteByte(c)
		}
		return "", errSyntax
	case '{':
		end := strings.Index(p.s[p.i:], "}\r\n")
		if end < 0 {
			return "", errSyntax
		}
		size, _, ok := literalAtEnd(p.s[p.i : p.i+end+1])
		start := p.i + end + 3
		if !ok || int64(len(p.s)-start) < size {
			return "", errSyntax
		}
		p.i = start + int(size)
		return p.s[start:p.i], nil
	}
	return p.atom()
}

// list reads "(" item *(SP item) ")" (or "()"), calling item for each.
func (p *gmParser) list(item func() error) error {
	if p.peek() != '(' {
		return errSyntax
	}
	p.i++
	if p.peek() == ')' {
		p.i++
		return nil
	}
	for {
		if err := item(); err != nil {
			return err
		}
		switch p.peek() {
		case ' ':
			p.i++
		case ')':
			p.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// astrings reads a parenthesized list of astrings, or a single one (STORE
// takes both forms, RFC 9051 §6.4.6; Google's documentation writes labels
// either way).
func (p *gmParser) astrings() ([]string, error) {
	var out []string
	if p.peek() != '(' {
		v, err := p.astring()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		for p.more() {
			v, err := p.astring()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	err := p.list(func() error {
		v, err := p.astring()
		out = append(out, v)
		return err
	})
	return out, err
}

// gmSet is a sequence set or UID set (RFC 9051 §9 sequence-set); 0 stands
// for "*".
type gmSet [][2]uint32

func parseSet(s string) (gmSet, error) {
	var set gmSet
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, ":")
		lo, err := setNum(a)
		if err != nil {
			return nil, err
		}
		hi := lo
		if isRange {
			if hi, err = setNum(b); err != nil {
				return nil, err
			}
		}
		set = append(set, [2]uint32{lo, hi})
	}
	return set, nil
}

func setNum(s string) (uint32, error) {
	if s == "*" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, errSyntax
	}
	return uint32(n), nil
}

// contains says whether n is in the set, "*" standing for last (RFC 9051
// §9: "*" is the largest number in use; a range is either way round).
func (set gmSet) contains(n, last uint32) bool {
	for _, r := range set {
		lo, hi := r[0], r[1]
		if lo == 0 {
			lo = last
		}
		if hi == 0 {
			hi = last
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if n >= lo && n <= hi {
			return true
		}
	}
	return false
}

// formatUIDs writes UIDs (in their order, as COPYUID pairs them, RFC 4315
// §3) as a set, runs of consecutive ones as ranges.
func formatUIDs(uids []uint32) string {
	var b strings.Builder
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(uids[i]), 10))
		if j > i {
			b.WriteString(":" + strconv.FormatUint(uint64(uids[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}

// quoteIMAP writes s as a quoted string, or as a literal when it holds
// CR, LF or NUL (RFC 9051 §4.3).
func quoteIMAP(s string) string {
	if strings.ContainsAny(s, "\r\n\x00") {
		return "{" + strconv.Itoa(len(s)) + "}\r\n" + s
	}
	return Quote(s)
}

// isAtom says whether s can be written as an atom: no atom-specials (RFC
// 9051 §9 ATOM-CHAR) and no '[' either, which Gmail quotes too
// (ruby/net-imap#272: "[foobar]").
func isAtom(s string) bool {
	if s == "" || strings.EqualFold(s, "NIL") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\[]`, c) >= 0 {
			return false
		}
	}
	return true
}

// encodeMUTF7 spells a UTF-8 mailbox or label name in modified UTF-7
// (RFC 3501 §5.1.3; mutf7 is in multiappend.go), as
// Gmail writes mailbox names and X-GM-LABELS (Google's documentation:
// labels are encoded like mailbox names).
func encodeMUTF7(s string) string {
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		buf := make([]byte, 0, 2*len(run))
		for _, u := range run {
			buf = append(buf, byte(u>>8), byte(u))
		}
		b.WriteString("&" + mutf7.EncodeToString(buf) + "-")
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		run = utf16.AppendRune(run, r)
	}
	flush()
	return b.String()
}

// decodeMUTF7 reads a modified UTF-7 name; a malformed one is an error.
func decodeMUTF7(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '&' {
			if c < 0x20 || c > 0x7e {
				return "", fmt.Errorf("mailbox name %q: byte %#x outside modified UTF-7", s, c)
			}
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '-')
		if end < 0 {
			return "", fmt.Errorf("mailbox name %q: unterminated shift", s)
		}
		enc := s[i+1 : i+end]
		i += end
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := mutf7.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", fmt.Errorf("mailbox name %q: bad shift %q", s, enc)
		}
		u := make([]uint16, len(raw)/2)
		for j := range u {
			u[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == utf8.RuneError {
				return "", fmt.Errorf("mailbox name %q: bad UTF-16", s)
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// mailboxArg writes a mailbox name for a response: modified UTF-7,
// always quoted, as Gmail writes names.
func mailboxArg(name string) string {
	return quoteIMAP(encodeMUTF7(name))
}

// labelArg writes one label of X-GM-LABELS: a system label as an atom
// (\Inbox), or quoted with its backslash escaped ("\\Inbox") when quoted
// asks for it; a user label in modified UTF-7, as an atom when it can be
// one, else quoted (Google's documentation: (\Inbox \Sent Important
// "Muy Importante")).
func labelArg(l string, quoted bool) string {
	if strings.HasPrefix(l, `\`) {
		if quoted {
			return Quote(l)
		}
		return l
	}
	enc := encodeMUTF7(l)
	if isAtom(enc) {
		return enc
	}
	return quoteIMAP(enc)
}
