package imapremote

import (
	"bytes"
	"net"
	"strconv"
	"sync"
)

// go-imap v2.0.0-beta.8 sends every literal longer than 4,096 bytes as a
// synchronizing one and waits for the server's "+" before its data, even
// where the server offers LITERAL+ (RFC 7888 §3: a non-synchronizing
// literal of any size). A message to APPEND is such a literal, so a batch
// of pipelined APPENDs would cost one round trip per message.
//
// literalPlus sits right below go-imap and lifts that wait once enabled
// (the server advertised LITERAL+): it sends each synchronizing literal
// announcement "{N}" as "{N+}" and gives go-imap, at the next boundary
// between two of the server's responses, the "+" it waits for, so that
// go-imap goes on with the data at once. The server sees nothing but
// non-synchronizing literals, which it must take whatever it thinks of
// the command (RFC 7888 §3), and go-imap sees the continuation it asked
// for: the commands and replies are otherwise untouched.
//
// It follows the framing on both sides: a line, or a literal announced
// by the "{N}" that ends a line (RFC 9051 §4.3), whose bytes pass
// unexamined. An injected "+" never lands inside a response.
type literalPlus struct {
	net.Conn

	// mu guards everything below; cond signals a Read's end and a
	// continuation owed.
	mu   sync.Mutex
	cond *sync.Cond
	on   bool // the server has LITERAL+

	// The write side (go-imap writes one command at a time).
	w lineFrame
	// held: a possible literal announcement, from its "{", not yet sent.
	held []byte
	out  []byte

	// The read side: what the server sent and go-imap has not read yet,
	// the framing of what it has read, and the continuations it is owed.
	r       lineFrame
	buf     []byte
	spare   []byte
	rerr    error
	reading bool // a Read of Conn is under way
	owed    int
	partial int // bytes of the continuation at hand already given
}

// continuation is the "+" given to go-imap for each literal made
// non-synchronizing (RFC 9051 §7.5: "+" SP text CRLF).
const continuation = "+ go ahead (LITERAL+)\r\n"

func newLiteralPlus(conn net.Conn) *literalPlus {
	l := &literalPlus{Conn: conn}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// enable starts making literals non-synchronizing; call it once the
// server's capabilities are known, between commands.
func (l *literalPlus) enable(on bool) {
	l.mu.Lock()
	l.on = on
	l.mu.Unlock()
}

// lineFrame follows one direction of the stream.
type lineFrame struct {
	left int64 // literal bytes still to pass
	// mid: inside a line; tail: its last bytes, to find "{N}" before
	// its end.
	mid  bool
	tail []byte
}

// feed follows b through the framing and returns the offset just after
// the first response boundary in it (a line end not announcing a
// literal), or -1.
func (f *lineFrame) feed(b []byte) int {
	boundary := -1
	for i := 0; i < len(b); {
		if f.left > 0 {
			k := int(min(int64(len(b)-i), f.left))
			f.left -= int64(k)
			i += k
			continue
		}
		j := len(b)
		if k := bytes.IndexByte(b[i:], '\n'); k >= 0 {
			j = i + k
		}
		f.tail = append(f.tail, b[i:j]...)
		if len(f.tail) > 32 {
			f.tail = append(f.tail[:0], f.tail[len(f.tail)-32:]...)
		}
		if j == len(b) {
			f.mid = true
			return boundary
		}
		i = j + 1
		if n, ok := announced(f.tail); ok {
			f.left = n
			f.mid = true // the line goes on after the literal
		} else {
			f.mid = false
			if boundary < 0 {
				boundary = i
			}
		}
		f.tail = f.tail[:0]
	}
	return boundary
}

// atBoundary: between two lines, outside any literal.
func (f *lineFrame) atBoundary() bool { return !f.mid && f.left == 0 }

// announced reads the literal size a line ends with: "{N}", "{N+}",
// "~{N}" (RFC 3516), before the CRLF (a bare LF too, or a space before
// the CR, which some servers send).
func announced(line []byte) (int64, bool) {
	for len(line) > 0 && (line[len(line)-1] == '\r' || line[len(line)-1] == ' ') {
		line = line[:len(line)-1]
	}
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	line = line[:len(line)-1]
	if line[len(line)-1] == '+' {
		line = line[:len(line)-1]
	}
	i := len(line)
	for i > 0 && line[i-1] >= '0' && line[i-1] <= '9' {
		i--
	}
	if i == 0 || i == len(line) || line[i-1] != '{' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(line[i:]), 10, 64)
	return n, err == nil
}

// Write passes go-imap's bytes on, with each synchronizing literal
// announcement made non-synchronizing once enabled. It reports all of p
// written when it is: the bytes of what may be an announcement are held
// until the line's end shows whether it is one (go-imap completes a line
// before it waits). The lock is not held while writing: go-imap's reader
// must go on taking the server's replies meanwhile, or a server blocked
// on its replies would stop reading the literal.
func (l *literalPlus) Write(p []byte) (int, error) {
	l.mu.Lock()
	if !l.on && len(l.held) == 0 {
		l.w.feed(p)
		l.mu.Unlock()
		if _, err := l.Conn.Write(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	out := l.out[:0]
	pass := func(b []byte) {
		l.w.feed(b)
		out = append(out, b...)
	}
	rest := p
	for len(rest) > 0 {
		if l.w.left > 0 {
			// Literal data: passed on as it is.
			k := int(min(int64(len(rest)), l.w.left))
			pass(rest[:k])
			rest = rest[k:]
			continue
		}
		c := rest[0]
		rest = rest[1:]
		if len(l.held) > 0 {
			if n, done, ok := l.holdMore(c); ok {
				if done {
					// "{N}" CRLF: a synchronizing literal announced.
					pass([]byte("{" + strconv.FormatInt(n, 10) + "+}\r\n"))
					l.held = l.held[:0]
					l.owed++
				}
				continue
			}
			pass(l.held)
			l.held = l.held[:0]
		}
		if c == '{' && l.on {
			l.held = append(l.held, c)
			continue
		}
		pass([]byte{c})
	}
	l.out = out
	owed := l.owed
	l.mu.Unlock()
	if owed > 0 {
		l.cond.Broadcast()
	}
	if len(out) > 0 {
		if _, err := l.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// holdMore takes the next byte of a held "{" digits "}" CR LF: ok says
// it belongs to it; done, once the LF completes it, that n is the size
// announced.
func (l *literalPlus) holdMore(c byte) (n int64, done, ok bool) {
	h := l.held
	last := h[len(h)-1]
	switch {
	case c >= '0' && c <= '9' && (last == '{' || last >= '0' && last <= '9') && len(h) < 19:
	case c == '}' && last >= '0' && last <= '9':
	case c == '\r' && last == '}':
	case c == '\n' && last == '\r':
		n, err := strconv.ParseInt(string(h[1:len(h)-2]), 10, 64)
		return n, err == nil, err == nil
	default:
		return 0, false, false
	}
	l.held = append(l.held, c)
	return 0, false, true
}

// Read returns the server's bytes, with an owed continuation put in at
// the first boundary between responses. A Read of Conn it starts goes on
// after it returns with a continuation, and is awaited by the next.
func (l *literalPlus) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.owed > 0 && l.r.atBoundary() {
			n := copy(p, continuation[l.partial:])
			if l.partial += n; l.partial == len(continuation) {
				l.partial = 0
				l.owed--
			}
			return n, nil
		}
		if len(l.buf) > 0 {
			n := copy(p, l.buf)
			if l.owed > 0 {
				// Stop at the first boundary: the continuation goes
				// there.
				if b := l.r.peekBoundary(p[:n]); b >= 0 {
					n = b
				}
			}
			l.r.feed(p[:n])
			l.buf = l.buf[n:]
			return n, nil
		}
		if l.rerr != nil {
			return 0, l.rerr
		}
		if !l.reading {
			l.reading = true
			go l.fill()
		}
		l.cond.Wait()
	}
}

// peekBoundary is feed without the change: the offset after the first
// boundary in b, or -1.
func (f *lineFrame) peekBoundary(b []byte) int {
	c := lineFrame{left: f.left, mid: f.mid, tail: append([]byte(nil), f.tail...)}
	return c.feed(b)
}

// fill reads from Conn once, into buf.
func (l *literalPlus) fill() {
	if cap(l.spare) == 0 {
		l.spare = make([]byte, 32<<10)
	}
	b := l.spare[:cap(l.spare)]
	n, err := l.Conn.Read(b)
	l.mu.Lock()
	l.buf, l.rerr, l.reading = b[:n], err, false
	l.cond.Broadcast()
	l.mu.Unlock()
}
