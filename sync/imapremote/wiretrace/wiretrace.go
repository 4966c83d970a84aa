// Package wiretrace records the IMAP exchange on one connection as a
// line-oriented trace with credentials removed; it is what
// `satchel --trace FILE` writes.
//
// It owns the trace format and the redaction rules. It wraps the net.Conn
// directly, below any IMAP library, so the trace shows the bytes exactly as
// they crossed the socket, and it must import nothing but the standard
// library (in particular not go-imap: it finds secrets in the raw bytes,
// whatever library produced them).
//
// # Format
//
// One record per protocol line: "C" for client to server, "S" for server
// to client. The second byte of a record says what followed its text on the
// wire, and every record ends in "\n":
//
//	C: text   text, then CRLF, the IMAP line end (RFC 9051 §2.2)
//	C| text   text, then a bare LF
//	C+ text   text, then nothing yet: it continues in the next record of
//	          the same direction (a line longer than 64 KiB, or a stream
//	          that stopped mid-line when the connection was closed)
//
// Literal data (RFC 9051 §4.3; LITERAL+ of RFC 7888; literal8 of RFC 3516)
// follows the line that announced it and is split at its own line ends like
// any other data, so a message body reads one line per record; the bytes
// that follow a literal on the same command or response line share a
// record with the literal's last line. Literal bytes are streamed to the
// trace as they pass: at most one record (64 KiB) per direction is held,
// besides the server bytes held back while a client Write is in flight
// (at most 1 MiB, see Wrap).
//
// When nothing is redacted, joining the texts of one direction's records,
// each followed by the line end its second byte names, gives back exactly
// the bytes that direction carried.
//
// # Redaction
//
// These are replaced by "***", and nothing else is altered:
//
//   - the password of LOGIN (RFC 9051 §6.2.3), whether atom, quoted
//     string or literal; a literal password becomes the single text "***"
//     in place of all its bytes, its announced length stays visible;
//   - the initial response of AUTHENTICATE (RFC 9051 §6.2.2, RFC 4959),
//     every client line of the exchange it starts (SASL responses and the
//     "*" cancel) until the server's tagged OK, NO or BAD for that tag, and
//     the payload of the server's "+" challenges in that exchange, which can
//     carry tokens (an XOAUTH2 failure, for one); such a challenge is traced
//     as "S: + ***".
//
// Where the stream leaves room for doubt (a malformed LOGIN, a tag too long
// to keep, server bytes traced ahead of a Write in flight), the rules hide
// more, never less.
package wiretrace

import (
	"io"
	"net"
	"sync"
)

// maxDeferred caps the server bytes held back while a client Write is in
// flight (see tracer.read).
const maxDeferred = 1 << 20

// Wrap returns a net.Conn that behaves exactly like conn (all net.Conn
// methods, deadlines included, pass through; data is never altered) and
// copies what is written to conn as client lines and what is read from conn
// as server lines into w, redacted. Safe for one reader goroutine and one
// writer goroutine at the same time (as an IMAP client uses a conn); writes
// to w are serialized.
//
// The trace keeps cause before effect: server bytes read while a Write is
// in flight are traced after that Write's bytes. The trace never affects
// the connection: the first error from w stops the trace and is otherwise
// dropped. Close writes out a line left unfinished.
// Wrap the conn that carries plain IMAP: after STARTTLS, a client that
// layers TLS on top of the returned conn sends TLS records through it, and
// those are traced as they are. With a nil w, Wrap returns conn itself.
func Wrap(conn net.Conn, w io.Writer) net.Conn {
	if w == nil {
		return conn
	}
	t := &tracer{out: output{w: w}}
	t.client = &stream{dir: 'C', out: &t.out, rules: &clientRules{auth: &t.auth}}
	t.server = &stream{dir: 'S', out: &t.out, rules: &serverRules{auth: &t.auth}}
	return &traceConn{Conn: conn, t: t}
}

// traceConn passes every call to the embedded conn and traces the bytes
// that Read and Write actually moved.
type traceConn struct {
	net.Conn
	t *tracer
}

func (c *traceConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && n <= len(p) {
		c.t.read(p[:n])
	}
	return n, err
}

func (c *traceConn) Write(p []byte) (int, error) {
	c.t.beginWrite()
	n, err := c.Conn.Write(p)
	c.t.endWrite(p[:max(0, min(n, len(p)))])
	return n, err
}

func (c *traceConn) Close() error {
	err := c.Conn.Close()
	c.t.close()
	return err
}

// tracer is the state both directions share. mu guards all of it, the
// redaction state included, and serializes the writes to the trace.
//
// Client bytes are traced after conn.Write returns, so that the trace shows
// only what was accepted; by then the server may already have answered, and
// the reader goroutine may already hold that answer. Tracing the answer
// first would put it before its command in the trace and, worse, would run
// the server rules before the client rules have seen the AUTHENTICATE that
// makes a "+" challenge secret. So server bytes read while a client Write is
// in flight are deferred and traced right after that Write's bytes. The
// reader never waits for the writer: holding it could deadlock a peer that
// only reads once it has written.
type tracer struct {
	mu       sync.Mutex
	out      output
	auth     authState
	client   *stream
	server   *stream
	writing  int    // client Writes started and not yet traced
	deferred []byte // server bytes read while writing > 0
	closed   bool
}

func (t *tracer) beginWrite() {
	t.mu.Lock()
	t.writing++
	t.mu.Unlock()
}

func (t *tracer) endWrite(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.client.feed(p)
	t.writing--
	if t.writing == 0 {
		t.drainDeferred()
	}
	t.settle()
}

func (t *tracer) read(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.writing > 0 && len(t.deferred)+len(p) <= maxDeferred {
		t.deferred = append(t.deferred, p...)
		return
	}
	// Past the cap the server bytes are traced ahead of the client Write in
	// flight; the server rules then treat every "+" line as a possible
	// AUTHENTICATE challenge, since that Write may have started one.
	t.auth.unsure = t.writing > 0
	t.drainDeferred()
	t.server.feed(p)
	t.auth.unsure = false
	t.settle()
}

func (t *tracer) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.settle()
}

func (t *tracer) drainDeferred() {
	if len(t.deferred) == 0 {
		return
	}
	t.server.feed(t.deferred)
	t.deferred = nil
}

// settle writes the finished records out, and once the conn is closed and
// no Write is in flight, also whatever is left unfinished.
func (t *tracer) settle() {
	if t.closed && t.writing == 0 {
		t.drainDeferred()
		t.client.finish()
		t.server.finish()
	}
	t.out.flush()
}

// output collects records and writes them to the trace writer.
type output struct {
	w   io.Writer
	buf []byte
	err error // first error from w; the trace stops there
}

// flushAt is the output size at which records are written out even in the
// middle of a long Read or Write.
const flushAt = 64 << 10

// record appends one record: direction, kind, space, text, "\n".
func (o *output) record(dir, kind byte, text []byte) {
	if o.err != nil {
		return
	}
	o.buf = append(o.buf, dir, kind, ' ')
	o.buf = append(o.buf, text...)
	o.buf = append(o.buf, '\n')
	if len(o.buf) >= flushAt {
		o.flush()
	}
}

func (o *output) flush() {
	if len(o.buf) == 0 {
		return
	}
	if o.err == nil {
		_, o.err = o.w.Write(o.buf)
	}
	if cap(o.buf) > 2*flushAt {
		o.buf = nil
		return
	}
	o.buf = o.buf[:0]
}
