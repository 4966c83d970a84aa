package qresync

import (
	"bytes"
)

// cmdKind says what the write side does with the next bytes go-imap writes.
type cmdKind uint8

const (
	cmdStart   cmdKind = iota // at a line start: read the tag and command name first
	cmdPass                   // pass the line on
	cmdHold                   // the armed SELECT: hold the line until its end
	cmdLiteral                // literal data, passed on unexamined
)

// holdKind says which command's last line is held, and so how it is
// rewritten.
type holdKind uint8

const (
	holdNone   holdKind = iota
	holdSelect          // the armed SELECT or EXAMINE: add the QRESYNC parameter
	holdStatus          // STATUS: add MAILBOXID to the items
	holdList            // LIST: add MAILBOXID to RETURN (STATUS (...))
)

// writer is the state of the write side; Conn.wmu guards it.
type writer struct {
	kind cmdKind
	mark literalMark
	left int64 // literal bytes still to pass
	// holding: the command is one whose last line is held to be
	// rewritten; it continues after each literal.
	holding holdKind
	head    []byte // the start of a line, until its command is known
	held    []byte // the held line
	tag     string // the held command's tag
	// armed is the QRESYNC parameter, with its leading SP, for the next
	// SELECT or EXAMINE; "" when none.
	armed string
	out   []byte
}

// atBoundary reports whether go-imap is between two commands, so that
// another command can be written without splitting one of its.
func (w *writer) atBoundary() bool {
	return w.kind == cmdStart && len(w.head) == 0
}

// write sends p, as go-imap wrote it, on c.Conn. Bytes of a line whose
// command is not known yet, and the held line of the armed SELECT, are
// kept for a later write: go-imap never waits for the server in the
// middle of a line, only after a literal announcement, which is passed on
// at once.
func (w *writer) write(c *Conn, p []byte) error {
	w.out = w.out[:0]
	for len(p) > 0 {
		switch w.kind {
		case cmdStart:
			n, decided := w.collectHead(p)
			p = p[n:]
			if decided {
				w.decide(c, w.head)
				w.feed(c, w.head)
				w.head = w.head[:0]
			}
		case cmdLiteral:
			n := int(min(int64(len(p)), w.left))
			// Literal data (an APPEND of a large message) goes out
			// without a copy.
			if err := w.flush(c); err != nil {
				return err
			}
			if _, err := c.Conn.Write(p[:n]); err != nil {
				return err
			}
			p = p[n:]
			w.left -= int64(n)
			if w.left == 0 {
				w.kind = cmdPass
				if w.holding != holdNone {
					w.kind = cmdHold
				}
			}
		default:
			p = p[w.feed(c, p):]
		}
	}
	return w.flush(c)
}

func (w *writer) flush(c *Conn) error {
	if len(w.out) == 0 {
		return nil
	}
	_, err := c.Conn.Write(w.out)
	w.out = w.out[:0]
	if cap(w.out) > 64<<10 {
		w.out = nil
	}
	return err
}

// collectHead adds bytes of p to w.head until the tag and the command name
// are known, the line ends, or maxHead bytes are there.
func (w *writer) collectHead(p []byte) (n int, decided bool) {
	for i, b := range p {
		w.head = append(w.head, b)
		if b == '\n' || len(w.head) >= maxHead {
			return i + 1, true
		}
		if b == ' ' && bytes.Count(w.head, []byte{' '}) == 2 {
			return i + 1, true
		}
	}
	return len(p), false
}

// decide sets what to do with the line that starts with head: hold it if
// it is a command to rewrite (the SELECT or EXAMINE that ArmSelect armed;
// after RequestMailboxIDs, STATUS and LIST), else pass it.
func (w *writer) decide(c *Conn, head []byte) {
	w.kind = cmdPass
	toks, n, _ := splitHead(head)
	if n < 2 || head[toks[1].off+len(toks[1].b)] != ' ' {
		return
	}
	name := toks[1].b
	hold := holdNone
	switch {
	case bytes.EqualFold(name, []byte("SELECT")) || bytes.EqualFold(name, []byte("EXAMINE")):
		c.selectWritten()
		if w.armed != "" {
			hold = holdSelect
		}
	case bytes.EqualFold(name, []byte("STATUS")):
		if c.asksIDs() {
			hold = holdStatus
		}
	case bytes.EqualFold(name, []byte("LIST")):
		if c.asksIDs() {
			hold = holdList
		}
	}
	if hold != holdNone {
		w.kind, w.holding, w.tag = cmdHold, hold, string(toks[0].b)
	}
}

// feed handles bytes of the current line (cmdPass or cmdHold) up to and
// including its LF, and returns how many it used.
func (w *writer) feed(c *Conn, p []byte) int {
	for i, b := range p {
		size, literal, end := w.mark.feed(b, true)
		if !literal && !end {
			continue
		}
		w.mark = literalMark{}
		line := p[:i+1]
		switch {
		case w.kind == cmdPass:
			w.out = append(w.out, line...)
		case literal:
			// The held line announces a literal (a mailbox name that
			// cannot be quoted): it goes out as it is, and the server may
			// have to answer it before go-imap sends more. What is to be
			// rewritten comes at the end of the command's last line.
			w.out = append(w.out, w.held...)
			w.out = append(w.out, line...)
			w.held = w.held[:0]
		case w.holding == holdSelect:
			w.held = append(w.held, line...)
			w.rewrite(c)
		default:
			w.held = append(w.held, line...)
			w.askMailboxID()
		}
		switch {
		case literal && size > 0:
			w.kind, w.left = cmdLiteral, size
		case literal:
			// "{0}": the line goes on.
		default:
			w.kind, w.holding = cmdStart, holdNone
		}
		return i + 1
	}
	if w.kind == cmdPass {
		w.out = append(w.out, p...)
	} else {
		w.held = append(w.held, p...)
	}
	return len(p)
}

// rewrite sends the held last line of the armed SELECT or EXAMINE with the
// QRESYNC parameter (RFC 7162 §3.2.5) in place of go-imap's "(CONDSTORE)":
// go-imap writes at most that one parameter, and a mailbox name, quoted or
// an atom, cannot end in " (CONDSTORE)".
func (w *writer) rewrite(c *Conn) {
	line := bytes.TrimSuffix(w.held, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	const condStore = " (CONDSTORE)"
	if len(line) >= len(condStore) && bytes.EqualFold(line[len(line)-len(condStore):], []byte(condStore)) {
		line = line[:len(line)-len(condStore)]
	}
	w.out = append(w.out, line...)
	w.out = append(w.out, w.armed...)
	w.out = append(w.out, "\r\n"...)
	w.held = w.held[:0]
	w.armed = ""

	c.mu.Lock()
	c.selectTag, c.fetches = w.tag, 0
	c.mu.Unlock()
}

// askMailboxID sends the held last line of a STATUS or LIST command with
// MAILBOXID (RFC 8474 §4.3) as its status item if it asks for none: "()"
// in "STATUS mailbox ()" or, in LIST, "RETURN (STATUS ())" (RFC 5819 §2).
// An empty list is never valid (RFC 9051 §9 status-att-list), so go-imap,
// which cannot name the item, is made to write one to ask for MAILBOXID
// alone; any other line goes out as it is.
func (w *writer) askMailboxID() {
	line := bytes.TrimSuffix(w.held, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	at := emptyListStatusItems(line)
	if w.holding == holdStatus {
		at = emptyStatusItems(line)
	}
	if at < 0 {
		w.out = append(w.out, w.held...)
	} else {
		w.out = append(w.out, w.held[:at]...)
		w.out = append(w.out, "MAILBOXID"...)
		w.out = append(w.out, w.held[at:]...)
	}
	w.held = w.held[:0]
}

// emptyStatusItems returns the offset of the ")" of an empty item list at
// the end of a STATUS command's last line (RFC 9051 §6.3.11: STATUS
// mailbox (items)), or -1. A quoted mailbox name ends in '"', so " ()"
// at the line's end is the list.
func emptyStatusItems(line []byte) int {
	if !bytes.HasSuffix(line, []byte(" ()")) {
		return -1
	}
	return len(line) - 1
}

// emptyListStatusItems returns the offset of the ")" of an empty STATUS
// item list among the return options of a LIST command's last line (RFC
// 5258 §3: "RETURN (...)" ends the line), or -1.
func emptyListStatusItems(line []byte) int {
	if len(line) == 0 || line[len(line)-1] != ')' {
		return -1
	}
	upper := bytes.ToUpper(line)
	ret := bytes.LastIndex(upper, []byte(" RETURN ("))
	if ret < 0 {
		return -1
	}
	opts := ret + len(" RETURN (")
	// The options are atoms and lists of them: a quoted pattern that
	// looks like them is not at the line's end.
	for _, ch := range line[opts:] {
		if ch != ' ' && ch != '(' && ch != ')' && (ch <= ' ' || ch >= 0x7f || ch == '"' || ch == '{') {
			return -1
		}
	}
	for i := opts; ; {
		j := bytes.Index(upper[i:], []byte("STATUS ()"))
		if j < 0 {
			return -1
		}
		start := i + j
		if prev := upper[start-1]; prev == ' ' || prev == '(' {
			return start + len("STATUS (")
		}
		i = start + 1
	}
}
