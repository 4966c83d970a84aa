package qresync

import (
	"bytes"
	"encoding/base64"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxTee bounds how much of a STATUS response or of an "OK [MAILBOXID"
// line is kept to be parsed; a longer one (a mailbox name of kilobytes)
// passes on without its MAILBOXID being recorded.
const maxTee = 16 << 10

// maxIDs bounds the MAILBOXIDs kept between two calls of MailboxIDs, so
// that a server sending STATUS responses unasked cannot grow the map
// without end.
const maxIDs = 1 << 20

// RequestMailboxIDs makes every STATUS command that go-imap writes from
// now on with an empty item list, "STATUS mailbox ()", and every LIST
// with the return option "STATUS ()" (RFC 5819 §2), ask for MAILBOXID
// (RFC 8474 §4.3) instead; go-imap has no name for the item, and writes
// an empty list for zero StatusOptions. The MAILBOXIDs in the server's
// STATUS responses are kept for MailboxIDs. Commands are otherwise sent
// as go-imap wrote them, and the responses reach go-imap unchanged: it
// skips the item it does not know.
//
// MAILBOXID is asked for alone, in a command of its own, because Cyrus
// 3.6.1 answers it with stray bytes, a ")" among them, when it comes with
// items that open the mailbox (MESSAGES, UIDNEXT): go-imap then fails the
// whole response. Call it only when the server advertises OBJECTID: a
// server without it may reject the item.
func (c *Conn) RequestMailboxIDs() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.askIDs = true
}

// MailboxIDs returns and forgets the MAILBOXIDs (RFC 8474 §4.3) read from
// STATUS responses since the last call, by mailbox name as go-imap reports
// it: decoded from modified UTF-7 (RFC 3501 §5.1.3), and "INBOX" for any
// case of it (RFC 9051 §5.1). A response read before go-imap's command
// returned is in it; one whose name or id is malformed is not.
func (c *Conn) MailboxIDs() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := c.ids
	c.ids = nil
	return ids
}

// SelectMailboxID returns the MAILBOXID of the mailbox opened by the last
// SELECT or EXAMINE go-imap wrote, from the server's untagged
// "OK [MAILBOXID (id)]" (RFC 8474 §4.2), or "" when the server sent none.
// Valid once go-imap's Select has returned.
func (c *Conn) SelectMailboxID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.selectID
}

// asksIDs reports whether RequestMailboxIDs was called.
func (c *Conn) asksIDs() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.askIDs
}

// selectWritten forgets the MAILBOXID of the previous SELECT: a new
// SELECT or EXAMINE is being written. The caller holds c.wmu.
func (c *Conn) selectWritten() {
	c.mu.Lock()
	c.selectID = ""
	c.mu.Unlock()
}

// teeKind says what a kept response is parsed for.
type teeKind uint8

const (
	teeNone   teeKind = iota
	teeStatus         // "* STATUS mailbox (...)"
	teeCode           // "* OK [MAILBOXID (id)] ..."
	teeTagged         // "tag OK ...": for [THROTTLED]
	teeBye            // "* BYE text"
)

// startTee begins keeping the response whose first byte is next.
func (r *reader) startTee(k teeKind) {
	r.tee, r.teeBuf, r.teeOver = k, r.teeBuf[:0], false
}

// teeAdd keeps passed bytes of the response being kept.
func (r *reader) teeAdd(b []byte) {
	if r.tee == teeNone || r.teeOver {
		return
	}
	if len(r.teeBuf)+len(b) > maxTee {
		r.teeOver = true
		return
	}
	r.teeBuf = append(r.teeBuf, b...)
}

// teeDone parses the kept response, which has just ended, and records
// its MAILBOXID.
func (c *Conn) teeDone() {
	r := &c.rd
	k := r.tee
	r.tee = teeNone
	if r.teeOver {
		return
	}
	switch k {
	case teeStatus:
		name, id, ok := parseStatusID(r.teeBuf)
		if !ok {
			break
		}
		c.mu.Lock()
		if c.ids == nil {
			c.ids = make(map[string]string)
		}
		if _, seen := c.ids[name]; seen || len(c.ids) < maxIDs {
			c.ids[name] = id
		}
		c.mu.Unlock()
	case teeCode:
		if id, ok := parseCodeID(r.teeBuf); ok {
			c.mu.Lock()
			c.selectID = id
			c.mu.Unlock()
		}
	case teeTagged:
		c.mu.Lock()
		c.noteTagged(r.teeBuf)
		c.mu.Unlock()
	case teeBye:
		c.mu.Lock()
		c.noteBye(r.teeBuf)
		c.mu.Unlock()
	}
	if cap(r.teeBuf) > 4<<10 {
		r.teeBuf = nil
	}
}

// wire is a cursor over one response, for the two parsers below.
type wire struct {
	b []byte
	i int
}

func (p *wire) spaces() {
	for p.i < len(p.b) && p.b[p.i] == ' ' {
		p.i++
	}
}

// word takes an atom-like token: up to SP, a parenthesis, a bracket's end
// or the line end.
func (p *wire) word() []byte {
	start := p.i
	for p.i < len(p.b) && !bytes.ContainsRune([]byte(" ()]\r\n"), rune(p.b[p.i])) {
		p.i++
	}
	return p.b[start:p.i]
}

func (p *wire) byte(ch byte) bool {
	if p.i < len(p.b) && p.b[p.i] == ch {
		p.i++
		return true
	}
	return false
}

// astring takes a mailbox name as the server wrote it (RFC 9051 §9
// "mailbox"): a quoted string (with \" and \\ escapes), a literal, or an
// atom, which may hold ']' (go-imap reads it the same way).
func (p *wire) astring() ([]byte, bool) {
	switch {
	case p.byte('"'):
		var out []byte
		for p.i < len(p.b) {
			ch := p.b[p.i]
			p.i++
			switch ch {
			case '"':
				return out, true
			case '\\':
				if p.i == len(p.b) {
					return nil, false
				}
				ch = p.b[p.i]
				p.i++
			case '\r', '\n':
				return nil, false
			}
			out = append(out, ch)
		}
		return nil, false
	case p.byte('{'):
		n := 0
		digits := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			n = n*10 + int(p.b[p.i]-'0')
			p.i++
			if digits++; digits > 9 {
				return nil, false
			}
		}
		if digits == 0 || !p.byte('}') {
			return nil, false
		}
		p.byte(' ') // go-imap's framing allows one SP before the CRLF
		p.byte('\r')
		if !p.byte('\n') || len(p.b)-p.i < n {
			return nil, false
		}
		out := p.b[p.i : p.i+n]
		p.i += n
		return out, true
	default:
		start := p.i
		for p.i < len(p.b) && p.b[p.i] > ' ' && p.b[p.i] < 0x7f && !bytes.ContainsRune([]byte(`(){%*"\`), rune(p.b[p.i])) {
			p.i++
		}
		return p.b[start:p.i], p.i > start
	}
}

// objectID takes "(" objectid ")" (RFC 8474 §7).
func (p *wire) objectID() (string, bool) {
	p.spaces()
	if !p.byte('(') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) && isObjectIDChar(p.b[p.i]) {
		p.i++
	}
	id := p.b[start:p.i]
	if len(id) == 0 || len(id) > 255 || !p.byte(')') {
		return "", false
	}
	return string(id), true
}

// isObjectIDChar: objectid = 1*255(ALPHA / DIGIT / "_" / "-") (RFC 8474 §7).
func isObjectIDChar(ch byte) bool {
	return ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-'
}

// skipValue skips one status-att value: a number, an atom or a
// parenthesized list (an extension's value that is unknown here).
func (p *wire) skipValue() bool {
	p.spaces()
	if !p.byte('(') {
		return len(p.word()) > 0
	}
	for depth := 1; depth > 0; {
		if p.i == len(p.b) || p.b[p.i] == '\r' || p.b[p.i] == '\n' {
			return false
		}
		switch p.b[p.i] {
		case '(':
			depth++
		case ')':
			depth--
		}
		p.i++
	}
	return true
}

// parseStatusID reads a whole STATUS response (RFC 9051 §7.2.4, literals
// included) and returns its mailbox name, decoded as go-imap decodes it,
// and its MAILBOXID (RFC 8474 §4.3), if it has one:
//
//   - STATUS "Entw&APw-rfe" (MESSAGES 2 MAILBOXID (F2212ea87) UIDNEXT 9)
func parseStatusID(resp []byte) (name, id string, ok bool) {
	p := &wire{b: resp}
	if !p.byte('*') {
		return "", "", false
	}
	p.spaces()
	if !strings.EqualFold(string(p.word()), "STATUS") {
		return "", "", false
	}
	p.spaces()
	raw, ok := p.astring()
	if !ok {
		return "", "", false
	}
	p.spaces()
	if !p.byte('(') {
		return "", "", false
	}
	for {
		p.spaces()
		if p.byte(')') {
			break
		}
		att := p.word()
		if len(att) == 0 {
			return "", "", false
		}
		if !strings.EqualFold(string(att), "MAILBOXID") {
			if !p.skipValue() {
				return "", "", false
			}
			continue
		}
		if id, ok = p.objectID(); !ok {
			return "", "", false
		}
	}
	if id == "" {
		return "", "", false
	}
	name, ok = decodeMailbox(string(raw))
	return name, id, ok
}

// parseCodeID reads an untagged "OK [MAILBOXID (id)] text" line (RFC 8474
// §4.2) and returns the id.
func parseCodeID(line []byte) (string, bool) {
	p := &wire{b: line}
	if !p.byte('*') {
		return "", false
	}
	p.spaces()
	if !strings.EqualFold(string(p.word()), "OK") {
		return "", false
	}
	p.spaces()
	if !p.byte('[') || !strings.EqualFold(string(p.word()), "MAILBOXID") {
		return "", false
	}
	id, ok := p.objectID()
	if !ok || !p.byte(']') {
		return "", false
	}
	return id, true
}

// decodeMailbox turns a mailbox name from the wire into the name go-imap
// reports: "INBOX" in any case is INBOX (RFC 9051 §5.1), anything else is
// decoded from modified UTF-7 (RFC 3501 §5.1.3). Like go-imap, it lets
// raw UTF-8 through and rejects what is not valid modified UTF-7; a name
// go-imap cannot decode makes its response fail, so no id is needed for
// it.
func decodeMailbox(s string) (string, bool) {
	if strings.EqualFold(s, "INBOX") {
		return "INBOX", true
	}
	if !utf8.ValidString(s) {
		return "", false
	}
	var b strings.Builder
	afterShift := false // the last thing decoded was a base64 run
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch > 0x7e && ch < utf8.RuneSelf {
			return "", false
		}
		if ch != '&' {
			b.WriteByte(ch)
			afterShift = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", false
		}
		run := s[i+1 : i+1+end]
		i += 1 + end
		if run == "" {
			b.WriteByte('&') // "&-"
			afterShift = false
			continue
		}
		// RFC 3501 §5.1.3: two base64 runs are never adjacent; they
		// would have been one.
		if afterShift {
			return "", false
		}
		text, ok := decodeBase64Run(run)
		if !ok {
			return "", false
		}
		b.WriteString(text)
		afterShift = true
	}
	return b.String(), true
}

// mutf7Base64 is modified BASE64 (RFC 3501 §5.1.3): "," for "/", no
// padding.
var mutf7Base64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// decodeBase64Run decodes the UTF-16BE text between "&" and "-".
func decodeBase64Run(run string) (string, bool) {
	for i := 0; i < len(run); i++ {
		ch := run[i]
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '+' || ch == ',') {
			return "", false
		}
	}
	raw, err := mutf7Base64.DecodeString(run)
	if err != nil || len(raw)%2 != 0 || len(raw) == 0 {
		return "", false
	}
	units := make([]uint16, len(raw)/2)
	for i := range units {
		units[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
	}
	var b strings.Builder
	for i := 0; i < len(units); i++ {
		r := rune(units[i])
		switch {
		case utf16.IsSurrogate(r):
			if i+1 == len(units) {
				return "", false
			}
			i++
			if r = utf16.DecodeRune(r, rune(units[i])); r == utf8.RuneError {
				return "", false
			}
		case r >= 0x20 && r <= 0x7e:
			// Printable ASCII represents itself, never in base64.
			return "", false
		}
		b.WriteRune(r)
	}
	return b.String(), true
}
