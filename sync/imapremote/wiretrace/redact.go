package wiretrace

import "bytes"

// maxTag bounds the tag kept to match the server's reply to AUTHENTICATE.
// A longer tag is never matched, so its exchange stays redacted until the
// connection ends: too much redaction, never too little.
const maxTag = 256

// authState is the redaction state the two directions share: the client
// rules start an AUTHENTICATE exchange, the server rules end it.
type authState struct {
	active bool
	tag    []byte
	known  bool // tag is complete (not longer than maxTag)

	// unsure is set while server bytes are traced ahead of a client Write
	// that may have started an exchange (see tracer.read).
	unsure bool
}

func (a *authState) begin(tag []byte, tooLong bool) {
	a.active = true
	a.tag = append(a.tag[:0], tag...)
	a.known = !tooLong
}

// token collects a short protocol word (tag, command name, status) for
// comparison, remembering whether it was cut.
type token struct {
	b       []byte
	tooLong bool
}

func (t *token) add(b byte, limit int) {
	if len(t.b) < limit {
		t.b = append(t.b, b)
		return
	}
	t.tooLong = true
}

// is compares with an upper-case keyword, folding ASCII letters only:
// IMAP keywords are ASCII and case-insensitive (RFC 9051 §9), and Unicode
// folding would let the Kelvin sign (U+212A) stand for "K".
func (t *token) is(word string) bool {
	if t.tooLong || len(t.b) != len(word) {
		return false
	}
	for i, b := range t.b {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		if b != word[i] {
			return false
		}
	}
	return true
}

func (t *token) reset() {
	t.b, t.tooLong = t.b[:0], false
}

// Client states within one command (RFC 9051 §2.2.1: tag SP command
// [SP arguments], possibly continued across literals).
type clientState uint8

const (
	cStart    clientState = iota // nothing of the command seen yet
	cTag                         // in the tag
	cName                        // in the command name
	cOther                       // arguments of a command with no secrets
	cUser                        // LOGIN: the user name
	cPassword                    // LOGIN: everything after the user name
	cMech                        // AUTHENTICATE: the mechanism name
	cDrop                        // a secret up to the line end
)

// The shape of the LOGIN user name (RFC 9051 §6.2.3: userid is an astring).
type userState uint8

const (
	uStart  userState = iota
	uAtom             // atom, or a literal's announcement
	uQuoted           // inside a quoted string
	uEscape           // after a backslash inside a quoted string
	uDone             // after the closing quote or the literal
)

// clientRules redact client commands: the LOGIN password, the
// AUTHENTICATE initial response and the client lines of an AUTHENTICATE
// exchange. Everything else passes unchanged.
type clientRules struct {
	auth *authState

	st     clientState
	tag    token
	name   token
	user   userState
	held   []byte // start of the password, shown if it is only "{N}"
	hidden bool   // the password's "***" is written; drop the rest
}

func (r *clientRules) byte(s *stream, b byte) {
	switch r.st {
	case cStart:
		if r.auth.active {
			// RFC 9051 §6.2.2: until the tagged reply, every client line
			// is a base64 SASL response, or "*" to cancel.
			s.emit(redacted)
			r.st = cDrop
			return
		}
		r.st = cTag
		r.byte(s, b)
	case cTag:
		s.emitByte(b)
		if b == ' ' {
			r.st = cName
		} else {
			r.tag.add(b, maxTag)
		}
	case cName:
		s.emitByte(b)
		if b != ' ' {
			r.name.add(b, len("AUTHENTICATE"))
			return
		}
		switch {
		case r.name.is("LOGIN"):
			r.st = cUser
		case r.name.is("AUTHENTICATE"):
			r.st = cMech
		default:
			r.st = cOther
		}
	case cOther:
		s.emitByte(b)
	case cUser:
		r.userByte(s, b)
	case cPassword:
		r.passwordByte(s, b)
	case cMech:
		if b == ' ' {
			// RFC 9051 §6.2.2 (SASL-IR, RFC 4959): what follows the
			// mechanism is the initial response.
			s.emitByte(b)
			s.emit(redacted)
			r.st = cDrop
			return
		}
		s.emitByte(b)
	case cDrop:
	}
}

// userByte passes the user name and finds where it ends; whatever follows
// the next space is the password.
func (r *clientRules) userByte(s *stream, b byte) {
	switch r.user {
	case uStart:
		switch b {
		case '"':
			r.user = uQuoted
		case ' ':
			r.st = cPassword
		default:
			r.user = uAtom
		}
		s.emitByte(b)
	case uAtom:
		s.emitByte(b)
		if b == ' ' {
			r.st = cPassword
		}
	case uQuoted:
		s.emitByte(b)
		switch b {
		case '\\':
			r.user = uEscape
		case '"':
			r.user = uDone
		}
	case uEscape:
		s.emitByte(b)
		r.user = uQuoted
	case uDone:
		if b == ' ' {
			s.emitByte(b)
			r.st = cPassword
			return
		}
		// Not a space after the user name: malformed, so treat the rest
		// as password rather than guess how the server splits it.
		r.st = cPassword
		r.passwordByte(s, b)
	}
}

// passwordByte hides the password. Its bytes are held only while they
// could still be a literal's announcement, which stays visible; as soon as
// they cannot, "***" is written in their place.
func (r *clientRules) passwordByte(s *stream, b byte) {
	if r.hidden {
		return
	}
	r.held = append(r.held, b)
	if !couldAnnounce(r.held) {
		r.hideHeld(s)
	}
}

func (r *clientRules) hideHeld(s *stream) {
	s.emit(redacted)
	clear(r.held)
	r.held = r.held[:0]
	r.hidden = true
}

func (r *clientRules) literalAllowed() bool {
	// SASL responses are base64 (RFC 9051 §6.2.2): a brace there is not
	// an announcement, and the line is hidden anyway.
	return r.st != cDrop
}

func (r *clientRules) lineEnd(s *stream, literal bool) {
	switch {
	case r.st == cStart && r.auth.active:
		// An empty SASL response is a line too.
		s.emit(redacted)
	case r.st == cPassword && len(r.held) > 0:
		// Held bytes that end the line and announce a literal are exactly
		// "{N}" (couldAnnounce admits nothing after "}").
		if literal {
			s.emit(r.held)
			r.held = r.held[:0]
		} else {
			r.hideHeld(s)
		}
	}
	if literal {
		return
	}
	if r.name.is("AUTHENTICATE") {
		r.auth.begin(r.tag.b, r.tag.tooLong)
	}
	r.reset()
}

func (r *clientRules) literalRedacted() bool {
	switch r.st {
	case cPassword, cMech, cDrop:
		return true
	case cUser:
		// A user name that is a literal is shown. After an unterminated
		// quoted string the command is malformed, and the literal may
		// well be the password.
		return r.user != uAtom
	}
	return false
}

func (r *clientRules) literalEnd() {
	switch r.st {
	case cUser:
		r.user = uDone
	case cPassword:
		// The literal's "***" stands for the password; anything after it
		// on the line is dropped without another marker.
		r.hidden = true
	}
}

func (r *clientRules) finish(s *stream) {
	if len(r.held) > 0 {
		r.hideHeld(s)
	}
}

func (r *clientRules) reset() {
	r.st = cStart
	r.tag.reset()
	r.name.reset()
	r.user = uStart
	r.held = r.held[:0]
	r.hidden = false
}

// couldAnnounce reports whether p is a prefix of a literal's announcement,
// "{" 1*DIGIT ["+"] "}" or the literal8 form with "~" before it, short
// enough to hold.
func couldAnnounce(p []byte) bool {
	if len(p) > 32 {
		return false
	}
	if p[0] == '~' {
		p = p[1:]
	}
	if len(p) == 0 {
		return true
	}
	if p[0] != '{' {
		return false
	}
	p = p[1:]
	i := 0
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	rest := p[i:]
	switch {
	case len(rest) == 0:
		return true
	case i == 0:
		return false
	case rest[0] == '+':
		rest = rest[1:]
	}
	return len(rest) == 0 || len(rest) == 1 && rest[0] == '}'
}

// Server states within one response (RFC 9051 §7).
type serverState uint8

const (
	sStart    serverState = iota
	sTag                  // in the tag or "*"
	sWord                 // in the word after the tag
	sText                 // status response text: no literals (§7.1)
	sData                 // any other response: literals possible
	sContinue             // a continuation request's text (§7.6)
	sDrop                 // a hidden challenge up to the line end
)

// serverRules hide AUTHENTICATE challenges and notice the tagged reply that
// ends the exchange.
type serverRules struct {
	auth *authState

	st   serverState
	tag  token
	word token
}

// plusRedacted replaces a "+" challenge line during AUTHENTICATE.
var plusRedacted = []byte("+ ***")

func (r *serverRules) byte(s *stream, b byte) {
	switch r.st {
	case sStart:
		if b == '+' {
			// RFC 9051 §7.6: a continuation request. During AUTHENTICATE
			// its text is a base64 challenge (§6.2.2).
			if r.auth.active || r.auth.unsure {
				s.emit(plusRedacted)
				r.st = sDrop
				return
			}
			s.emitByte(b)
			r.st = sContinue
			return
		}
		r.st = sTag
		r.byte(s, b)
	case sTag:
		s.emitByte(b)
		if b == ' ' {
			r.st = sWord
		} else {
			r.tag.add(b, maxTag)
		}
	case sWord:
		s.emitByte(b)
		if b != ' ' {
			r.word.add(b, len("PREAUTH"))
			return
		}
		if r.isStatus() {
			r.st = sText
		} else {
			r.st = sData
		}
	case sText, sData, sContinue:
		s.emitByte(b)
	case sDrop:
	}
}

// isStatus reports whether the word after the tag makes this a status
// response (RFC 9051 §7.1), whose text may end in a brace that announces
// nothing.
func (r *serverRules) isStatus() bool {
	for _, w := range []string{"OK", "NO", "BAD", "BYE", "PREAUTH"} {
		if r.word.is(w) {
			return true
		}
	}
	return false
}

func (r *serverRules) literalAllowed() bool {
	return r.st == sData
}

func (r *serverRules) lineEnd(_ *stream, literal bool) {
	if literal {
		return
	}
	// RFC 9051 §6.2.2: the exchange ends with the tagged OK, NO or BAD.
	if r.auth.active && r.auth.known && r.st != sStart && r.st != sTag &&
		!r.tag.tooLong && bytes.Equal(r.tag.b, r.auth.tag) &&
		(r.word.is("OK") || r.word.is("NO") || r.word.is("BAD")) {
		r.auth.active = false
	}
	r.st = sStart
	r.tag.reset()
	r.word.reset()
}

func (r *serverRules) literalRedacted() bool { return false }

func (r *serverRules) literalEnd() {}

func (r *serverRules) finish(*stream) {}
