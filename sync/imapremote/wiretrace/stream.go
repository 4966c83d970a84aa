package wiretrace

// maxRecord is the longest record text. A longer line is written in pieces
// of this size (kind '+'), so memory stays bounded whatever the peer sends.
const maxRecord = 64 << 10

// Record kinds: what followed a record's text on the wire.
const (
	kindCRLF = ':' // CRLF
	kindLF   = '|' // a bare LF
	kindMore = '+' // nothing: the text continues in the next record
)

// redacted replaces a secret in the trace.
var redacted = []byte("***")

// rules decide, for one direction, which bytes of a command or response
// reach the trace. A stream calls them in wire order: byte for every line
// byte outside literals, lineEnd at every line end, and for a literal that
// line end announced, literalRedacted and then literalEnd.
type rules interface {
	// byte handles one line byte; it writes what the trace shows of it
	// (possibly nothing, possibly "***") with stream.emit.
	byte(s *stream, b byte)
	// literalAllowed reports whether a "{N}" ending the current line
	// announces a literal here.
	literalAllowed() bool
	// lineEnd is called at a line end before the record is closed; literal
	// reports whether a literal follows, so the command or response goes
	// on. Without one, the command or response is complete.
	lineEnd(s *stream, literal bool)
	// literalRedacted reports whether the literal just announced is secret.
	literalRedacted() bool
	// literalEnd is called after the literal's last byte.
	literalEnd()
	// finish writes out anything held back, because the stream stopped.
	finish(s *stream)
}

// crState remembers a CR whose meaning depends on the next byte: with an LF
// it is a line end, otherwise it is data.
type crState uint8

const (
	crNone    crState = iota
	crLine            // a CR in line text, to be passed through the rules
	crLiteral         // a CR in literal data that is traced as is
)

// stream splits one direction into records and tracks the framing that
// decides what is a line and what is literal data (RFC 9051 §4.3): a line
// ending in "{N}", "{N+}" or "~{N}" is followed by N bytes that are never
// parsed as protocol, whatever they contain.
type stream struct {
	dir   byte // 'C' or 'S'
	out   *output
	rules rules

	text []byte // the current record's text as the trace shows it
	cr   crState

	mark    marker
	inLit   bool
	litLeft int64 // literal bytes still to come
	litDrop bool  // the literal is secret: its bytes are not traced
}

// feed traces p, the next bytes of this direction.
func (s *stream) feed(p []byte) {
	for len(p) > 0 {
		if s.inLit {
			p = s.literal(p)
			continue
		}
		s.lineByte(p[0])
		p = p[1:]
	}
}

func (s *stream) lineByte(b byte) {
	if s.cr != crNone {
		if b == '\n' {
			s.cr = crNone
			s.lineEnd(kindCRLF)
			return
		}
		s.flushCR()
	}
	switch b {
	case '\r':
		s.cr = crLine
	case '\n':
		// Not an IMAP line end (RFC 9051 §2.2), but peers that accept a
		// bare LF end the line there, so it ends the line here too.
		s.lineEnd(kindLF)
	default:
		s.lineText(b)
	}
}

// flushCR turns a pending CR into data, as it was not followed by LF.
func (s *stream) flushCR() {
	cr := s.cr
	s.cr = crNone
	switch cr {
	case crLine:
		s.lineText('\r')
	case crLiteral:
		s.emitByte('\r')
	}
}

func (s *stream) lineText(b byte) {
	s.mark.add(b)
	s.rules.byte(s, b)
}

func (s *stream) lineEnd(kind byte) {
	n, lit := s.mark.literal()
	lit = lit && s.rules.literalAllowed()
	s.mark = marker{}
	s.rules.lineEnd(s, lit)
	s.endRecord(kind)
	if !lit {
		return
	}
	s.inLit, s.litLeft = true, n
	s.litDrop = s.rules.literalRedacted()
	if s.litDrop {
		s.emit(redacted)
	}
	if n == 0 {
		s.endLiteral()
	}
}

// literal consumes the literal bytes at the start of p and returns the rest.
func (s *stream) literal(p []byte) []byte {
	n := len(p)
	if int64(n) > s.litLeft {
		n = int(s.litLeft)
	}
	s.litLeft -= int64(n)
	if !s.litDrop {
		s.literalText(p[:n])
	}
	if s.litLeft == 0 {
		s.endLiteral()
	}
	return p[n:]
}

// literalText traces literal data, split at its own line ends.
func (s *stream) literalText(p []byte) {
	for len(p) > 0 {
		if s.cr != crNone {
			if p[0] == '\n' {
				s.cr = crNone
				s.endRecord(kindCRLF)
				p = p[1:]
				continue
			}
			s.flushCR()
		}
		i := indexLineByte(p)
		if i < 0 {
			s.emit(p)
			return
		}
		s.emit(p[:i])
		if p[i] == '\n' {
			s.endRecord(kindLF)
		} else {
			s.cr = crLiteral
		}
		p = p[i+1:]
	}
}

func indexLineByte(p []byte) int {
	for i, b := range p {
		if b == '\r' || b == '\n' {
			return i
		}
	}
	return -1
}

func (s *stream) endLiteral() {
	s.inLit, s.litDrop = false, false
	s.rules.literalEnd()
}

// emit appends to the current record, writing it out in pieces when it
// would exceed maxRecord.
func (s *stream) emit(p []byte) {
	for len(p) > 0 {
		if len(s.text) == maxRecord {
			s.endRecord(kindMore)
		}
		n := min(len(p), maxRecord-len(s.text))
		s.text = append(s.text, p[:n]...)
		p = p[n:]
	}
}

func (s *stream) emitByte(b byte) {
	if len(s.text) == maxRecord {
		s.endRecord(kindMore)
	}
	s.text = append(s.text, b)
}

func (s *stream) endRecord(kind byte) {
	s.out.record(s.dir, kind, s.text)
	s.text = s.text[:0]
}

// finish writes out the unfinished record, as the stream has stopped. If
// more bytes do arrive, they continue it.
func (s *stream) finish() {
	if s.cr != crNone {
		s.flushCR()
	}
	s.rules.finish(s)
	if len(s.text) > 0 {
		s.endRecord(kindMore)
	}
}

// marker recognizes a literal's announcement at the end of a line, byte by
// byte so that a line of any length needs no buffer: "{" number64 ["+"] "}"
// (RFC 9051 §9; "+" is LITERAL+/LITERAL-, RFC 7888). literal8 (RFC 3516)
// writes "~{N}", which ends the same way.
type marker struct {
	state    uint8
	n        int64
	overflow bool
}

const (
	markNone   uint8 = iota
	markOpen         // "{"
	markDigits       // "{" 1*DIGIT
	markPlus         // "{" 1*DIGIT "+"
	markClose        // "{" 1*DIGIT ["+"] "}"
)

func (m *marker) add(b byte) {
	switch {
	case b == '{':
		*m = marker{state: markOpen}
	case b >= '0' && b <= '9' && (m.state == markOpen || m.state == markDigits):
		d := int64(b - '0')
		if m.n > (1<<63-1-d)/10 {
			m.overflow = true
		} else {
			m.n = m.n*10 + d
		}
		m.state = markDigits
	case b == '+' && m.state == markDigits:
		m.state = markPlus
	case b == '}' && (m.state == markDigits || m.state == markPlus):
		m.state = markClose
	default:
		*m = marker{}
	}
}

// literal reports whether the line so far ends in an announcement, and
// the length announced. A length beyond number64 announces nothing: the
// peer rejects it, and trusting it would swallow the rest of the stream.
func (m *marker) literal() (int64, bool) {
	return m.n, m.state == markClose && !m.overflow
}
