package qresync

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
)

// maxHead is how much of a response line is looked at before any of it is
// passed on: enough for a tag and two more tokens ("* 4294967295 FETCH ").
// A line whose first tokens are longer is passed on unexamined.
const maxHead = 64

// maxKept is how much of a removed reply to Enable is kept for its error
// message; the rest is dropped unread.
const maxKept = 1024

// lineKind says what the read side does with the rest of the current line.
type lineKind uint8

const (
	lineStart    lineKind = iota // nothing of the line passed yet: classify it
	linePass                     // passed on; "{N}" at its end announces a literal
	lineText                     // passed on; no literal can follow (see decide)
	lineLiteral                  // literal data, passed on unexamined
	lineVanished                 // a VANISHED response: parsed and removed
	lineReply                    // the reply to Enable or GmailFetch: removed
	lineGmail                    // a FETCH response that may answer a GmailFetch: kept
	lineHeld                     // a kept response that was not: handed on
)

// reader is the state of the read side; only Read uses it.
type reader struct {
	br   *bufio.Reader
	kind lineKind
	mark literalMark
	left int64 // literal bytes still to pass
	van  vanishedParser
	// reply is the removed line of a reply to Enable: its first maxKept
	// bytes; tagged tells the tagged reply from "* ENABLED".
	reply  []byte
	tagged bool
	// replyGmail: the removed reply is the tagged reply to a GmailFetch.
	replyGmail bool
	gm         gmailLine
	err        error // a malformed VANISHED: reading stopped for good
	// tee: the response being passed is also kept, its first maxTee
	// bytes in teeBuf, to read a MAILBOXID from it once it ends.
	tee     teeKind
	teeBuf  []byte
	teeOver bool
}

func (c *Conn) readFiltered(p []byte) (int, error) {
	r := &c.rd
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Removed lines produce no bytes: go on until some are passed, since
	// go-imap's bufio.Reader gives up after a run of empty reads.
	for {
		switch r.kind {
		case lineStart:
			if err := c.classify(); err != nil {
				return 0, err
			}
		case lineLiteral:
			n, err := r.br.Read(p[:min(int64(len(p)), r.left)])
			r.teeAdd(p[:n])
			r.left -= int64(n)
			if r.left == 0 {
				r.kind = linePass
			}
			return n, err
		case linePass, lineText:
			buf, err := r.peek()
			if len(buf) == 0 {
				return 0, err
			}
			n := r.pass(buf[:min(len(buf), len(p))])
			copy(p, buf[:n])
			r.teeAdd(buf[:n])
			r.br.Discard(n)
			if r.kind == lineStart && r.tee != teeNone {
				c.teeDone()
			}
			return n, nil
		case lineVanished:
			buf, err := r.peek()
			if len(buf) == 0 {
				return 0, err
			}
			n, done, perr := r.van.feed(buf)
			r.br.Discard(n)
			if perr != nil {
				r.err = fmt.Errorf("read VANISHED response: %w", perr)
				return 0, r.err
			}
			if done {
				c.addVanished(&r.van)
				r.kind = lineStart
			}
		case lineGmail:
			buf, err := r.peek()
			if len(buf) == 0 {
				return 0, err
			}
			n, complete, pass := r.gm.feed(buf)
			r.br.Discard(n)
			switch {
			case complete:
				c.gmailRead(r.gm.buf)
				r.gm.reset()
				r.kind = lineStart
			case pass:
				r.kind = lineHeld
			case len(r.gm.buf) > maxGmailLine:
				if r.gm.ours {
					r.err = fmt.Errorf("read X-GM FETCH response: longer than %d bytes", maxGmailLine)
					return 0, r.err
				}
				// Not decided yet and this long: not a label list.
				r.gm.afterLeft, r.kind = -1, lineHeld
			}
		case lineHeld:
			n := copy(p, r.gm.buf[r.gm.passAt:])
			r.gm.passAt += n
			if r.gm.passAt == len(r.gm.buf) {
				switch left := r.gm.afterLeft; {
				case left > 0:
					r.kind, r.left = lineLiteral, left
				case left < 0:
					r.kind = linePass // the line goes on, unexamined
				default:
					r.kind = lineStart
				}
				r.gm.reset()
			}
			return n, nil
		case lineReply:
			buf, err := r.peek()
			if len(buf) == 0 {
				return 0, err
			}
			end := len(buf)
			i := bytes.IndexByte(buf, '\n')
			if i >= 0 {
				end = i + 1
			}
			if room := maxKept - len(r.reply); room > 0 {
				r.reply = append(r.reply, buf[:min(end, room)]...)
			}
			r.br.Discard(end)
			if i >= 0 && r.replyGmail {
				r.replyGmail = false
				c.gmailReplyRead(r.reply)
				r.reply = r.reply[:0]
				r.kind = lineStart
			} else if i >= 0 {
				c.replyRead(r.reply, r.tagged)
				r.reply = r.reply[:0]
				r.kind = lineStart
			}
		}
	}
}

// peek returns the buffered bytes, reading if there are none.
func (r *reader) peek() ([]byte, error) {
	if r.br.Buffered() == 0 {
		if _, err := r.br.Peek(1); err != nil {
			return nil, err
		}
	}
	return r.br.Peek(r.br.Buffered())
}

// pass returns how many bytes of buf, the continuation of a passed line,
// belong to it up to and including its LF, and moves on to what follows
// the LF: a literal or the next line.
func (r *reader) pass(buf []byte) int {
	if r.kind == lineText {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return len(buf)
		}
		r.kind = lineStart
		return i + 1
	}
	for i, b := range buf {
		size, literal, end := r.mark.feed(b, false)
		switch {
		case literal:
			r.mark = literalMark{}
			if size > 0 {
				r.kind, r.left = lineLiteral, size
			}
			return i + 1
		case end:
			r.mark = literalMark{}
			r.kind = lineStart
			return i + 1
		}
	}
	return len(buf)
}

// classify waits for enough of a new line to tell what it is, then sets
// r.kind; nothing of the line has been consumed yet.
func (c *Conn) classify() error {
	r := &c.rd
	for {
		n := r.br.Buffered()
		if n > 0 {
			head, _ := r.br.Peek(min(n, maxHead))
			if kind, ok := c.decide(head); ok {
				r.kind = kind
				return nil
			}
		}
		if _, err := r.br.Peek(n + 1); err != nil {
			if n > 0 {
				// The line stops short: hand on what there is (an
				// unfinished response is go-imap's error to report), then
				// the error.
				r.kind = linePass
				return nil
			}
			return err
		}
	}
}

// decide classifies a line from its first bytes, if it can. The framing
// is go-imap's: a response ends at LF (CR optional), and a "{N}" right
// before that LF announces a literal, except in the resp-text of status
// responses, tagged responses and continuation requests (RFC 9051 §7.1,
// §7.5), which go-imap reads as text up to the LF.
func (c *Conn) decide(head []byte) (kind lineKind, ok bool) {
	toks, n, ended := splitHead(head)
	full := len(head) >= maxHead
	// need reports that the line cannot be classified before its first k
	// tokens are there.
	need := func(k int) bool { return n < k && !ended && !full }
	if need(1) {
		return lineStart, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n == 0 {
		return linePass, true
	}
	t0 := toks[0].b
	switch {
	case string(t0) == "+":
		return lineText, true
	case string(t0) != "*":
		switch {
		case c.enable != nil && string(t0) == c.enable.tag:
			c.rd.tagged = true
			return lineReply, true
		case c.gmail != nil && string(t0) == c.gmail.tag:
			c.rd.replyGmail = true
			return lineReply, true
		case c.selectTag != "" && string(t0) == c.selectTag:
			c.selectTag = ""
		}
		c.rd.startTee(teeTagged)
		return lineText, true
	}
	if need(2) {
		return lineStart, false
	}
	if n < 2 {
		return linePass, true
	}
	t1 := toks[1].b
	switch {
	case bytes.EqualFold(t1, []byte("VANISHED")):
		// RFC 7162 §3.2.10. The parser starts at the byte after the
		// name, so that a VANISHED without arguments is malformed.
		c.rd.van = vanishedParser{ranges: c.rd.van.ranges[:0]}
		c.rd.br.Discard(toks[1].off + len(t1))
		return lineVanished, true
	case c.enable != nil && bytes.EqualFold(t1, []byte("ENABLED")):
		c.rd.tagged = false
		return lineReply, true
	case bytes.EqualFold(t1, []byte("OK")):
		if need(3) {
			return lineStart, false
		}
		if n >= 3 && bytes.EqualFold(toks[2].b, []byte("[CLOSED]")) {
			c.closedMailbox()
		}
		if n >= 3 && bytes.EqualFold(toks[2].b, []byte("[MAILBOXID")) {
			// RFC 8474 §4.2: the id of the mailbox a SELECT or EXAMINE
			// opens.
			c.rd.startTee(teeCode)
		}
		return lineText, true
	case c.askIDs && bytes.EqualFold(t1, []byte("STATUS")):
		// RFC 8474 §4.3: the MAILBOXID asked for by RequestMailboxIDs.
		c.rd.startTee(teeStatus)
		return linePass, true
	case bytes.EqualFold(t1, []byte("BYE")):
		c.rd.startTee(teeBye)
		return lineText, true
	case bytes.EqualFold(t1, []byte("NO")), bytes.EqualFold(t1, []byte("BAD")),
		bytes.EqualFold(t1, []byte("PREAUTH")):
		return lineText, true
	case isNumber(t1):
		if need(3) {
			return lineStart, false
		}
		if n >= 3 && c.selectTag != "" && bytes.EqualFold(toks[2].b, []byte("FETCH")) {
			c.fetches++
		}
		if n >= 3 && c.gmail != nil && bytes.EqualFold(toks[2].b, []byte("FETCH")) {
			c.rd.gm.reset()
			return lineGmail, true
		}
	}
	return linePass, true
}

// closedMailbox handles "OK [CLOSED]" (RFC 7162 §3.2.11): what was read
// before it concerns the mailbox that a SELECT or EXAMINE just closed.
// The caller holds c.mu.
func (c *Conn) closedMailbox() {
	c.vanished, c.earlier = nil, false
	c.selectID = ""
	if c.selectTag != "" {
		c.fetches = 0
	}
}

// token is one token at the start of a line and its offset in the line.
type token struct {
	b   []byte
	off int
}

// splitHead returns the first (up to three) tokens of head that are
// complete, i.e. followed by SP, CR or LF, and whether the line ends in
// head.
func splitHead(head []byte) (toks [3]token, n int, ended bool) {
	start := 0
	for i, b := range head {
		if b != ' ' && b != '\r' && b != '\n' {
			continue
		}
		if n < len(toks) {
			toks[n] = token{b: head[start:i], off: start}
			n++
		}
		if b != ' ' {
			return toks, n, bytes.IndexByte(head[i:], '\n') >= 0
		}
		if n == len(toks) {
			return toks, n, false
		}
		start = i + 1
	}
	return toks, n, false
}

func isNumber(b []byte) bool {
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	return len(b) > 0
}

// addVanished keeps the UIDs of a complete VANISHED response.
func (c *Conn) addVanished(v *vanishedParser) {
	c.mu.Lock()
	c.vanished = append(c.vanished, v.ranges...)
	if v.earlier {
		c.earlier = true
	}
	v.ranges = v.ranges[:0]
	if cap(v.ranges) > 1024 {
		v.ranges = nil
	}
	notify := c.onVanished
	c.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// replyRead takes a removed line of the reply to Enable: "* ENABLED ..."
// (RFC 5161 §3.2) or the tagged status that completes it.
func (c *Conn) replyRead(line []byte, tagged bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pe := c.enable
	if pe == nil {
		return
	}
	fields := bytes.Fields(line)
	if !tagged {
		for _, f := range fields[min(2, len(fields)):] {
			if bytes.EqualFold(f, []byte("QRESYNC")) {
				pe.saw = true
			}
		}
		return
	}
	c.enable = nil
	var err error
	switch {
	case len(fields) > 1 && bytes.EqualFold(fields[1], []byte("OK")):
		if pe.saw {
			c.enabled = true
		} else {
			err = fmt.Errorf("enable QRESYNC: %w", ErrNotEnabled)
		}
	case len(fields) > 1:
		err = fmt.Errorf("enable QRESYNC: server replied %s %q", fields[1], bytes.Join(fields[2:], []byte(" ")))
	default:
		err = errors.New("enable QRESYNC: server replied with an empty status")
	}
	pe.done <- err
}

// literalMark recognizes a literal announcement, "{N}" or (client side
// only) "{N+}", right before the LF that ends a line, with go-imap's
// tolerance of one SP and a missing CR before the LF.
type literalMark struct {
	state  uint8
	digits bool
	n      int64
}

const (
	markNone  = iota
	markOpen  // "{" and digits
	markPlus  // "{N+"
	markClose // "}"
	markSP    // "} "
	markCR    // "}\r" or "} \r"
)

// feed takes the next line byte. At an LF it reports either a literal of
// size bytes or the end of the line.
func (m *literalMark) feed(b byte, plus bool) (size int64, literal, end bool) {
	switch {
	case b == '\n':
		if m.state == markClose || m.state == markSP || m.state == markCR {
			return m.n, true, false
		}
		return 0, false, true
	case b == '{':
		*m = literalMark{state: markOpen}
	case m.state == markOpen && b >= '0' && b <= '9':
		if m.n > (1<<62)/10 {
			// Larger than any literal; go-imap rejects it too.
			*m = literalMark{}
			break
		}
		m.n = m.n*10 + int64(b-'0')
		m.digits = true
	case m.state == markOpen && m.digits && b == '+' && plus:
		m.state = markPlus
	case (m.state == markOpen && m.digits || m.state == markPlus) && b == '}':
		m.state = markClose
	case m.state == markClose && b == ' ':
		m.state = markSP
	case (m.state == markClose || m.state == markSP) && b == '\r':
		m.state = markCR
	default:
		*m = literalMark{}
	}
	return 0, false, false
}

// errMalformed is wrapped by every error of the VANISHED parser.
var errMalformed = errors.New("malformed")
