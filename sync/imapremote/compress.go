package imapremote

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// Compression modes of Options.Compress.
const (
	CompressAuto = "auto" // COMPRESS=DEFLATE whenever the server offers it
	CompressOff  = "off"  // never send COMPRESS
)

// capCompressDeflate is RFC 4978's capability (§1); go-imap has no name
// for it and no support for the command.
const capCompressDeflate = imap.Cap("COMPRESS=DEFLATE")

// compressTag is the tag of the COMPRESS command satchel writes itself.
// go-imap's tags are "T1", "T2", ..., package qresync's "Q1", ...: the
// reply cannot be mistaken for theirs.
const compressTag = "Z1"

// compressLevel: RFC 4978 §3 leaves the rate to each sender. Level 2 is
// the fastest of Go's levels that keeps its 32 KiB of history across
// flushes: a command is small and flushed alone, and compresses only
// against the commands before it. BestSpeed (1) stores or merely Huffman
// codes a write under 128 bytes and forgets the history, so it makes
// commands larger (200 flushed STOREs: 7110 bytes in, 9110 out at level
// 1, 3073 at level 2), and its writer takes more memory (about 1.2 MB
// against 0.8 MB: Go's writer allocates its token buffer and encoder
// tables at every level).
const compressLevel = 2

// maxCompressReply bounds the tagged reply to COMPRESS held back until
// its line end.
const maxCompressReply = 8 << 10

// ErrCompression: the server agreed to compress (RFC 4978 §3) but what it
// sent afterwards is not a DEFLATE stream (RFC 1951). It is not
// transient: the same server will do the same again; imap.compress: off
// avoids it.
var ErrCompression = errors.New("the server's compressed data is corrupt")

// COMPRESS=DEFLATE (RFC 4978) is negotiated by two pieces around the
// trace, so that --trace shows the exchange and everything after it
// uncompressed. The stack, bottom up:
//
//	TCP, watchdog, (TLS), deflateConn, wiretrace, compressGate, qresync, go-imap
//
// deflateConn sits on the transport: it switches both directions to raw
// DEFLATE exactly after the CRLF of the tagged OK (RFC 4978 §3), a point
// that only the layer reading the transport can find: go-imap, and qresync
// below it, read ahead through buffers, so bytes the server compressed
// right after its OK may already be in them. compressGate sits above the
// trace: it writes the COMPRESS command itself, holding go-imap's writes
// back until the reply (the client must not send anything before it,
// RFC 4978 §3), and removes the reply, whose tag go-imap does not know,
// from what go-imap reads. The trace passes bytes through unchanged, so
// the gate finds the reply at the stream offsets deflateConn reports.
//
// The watchdog below TLS counts compressed bytes: traffic while data
// flows, however well it compresses.

// Read modes of deflateConn.
const (
	modeWatch   = iota // plain, framing tracked: a COMPRESS may come
	modePlain          // plain for good: no COMPRESS, or it was refused
	modeInflate        // the server's bytes are DEFLATE
)

// deflateConn is the transport with RFC 4978 compression. Read is called
// from one goroutine (go-imap's reader), Write from any; Read is where
// the switch happens, on the reply that compressGate.start waits for.
type deflateConn struct {
	net.Conn // TLS or TCP

	wmu sync.Mutex
	fw  *flate.Writer // nil until compression starts

	mu      sync.Mutex
	mode    int
	pending *pendingCompress // COMPRESS written, reply not yet read
	frame   framing          // the server's framing, in modeWatch
	out     []byte           // plaintext classified, not yet returned
	rerr    error            // returned once out is drained
	off     int64            // plaintext bytes returned by Read
	drop    [2]int64         // the reply's offsets [start, end) in that stream
	inf     io.ReadCloser    // the server's DEFLATE stream, in modeInflate
	corrupt error            // the server's stream is not DEFLATE

	buf []byte // transport reads in modeWatch; only Read uses it
}

// pendingCompress is the COMPRESS command's outcome, sent once.
type pendingCompress struct {
	done chan compressResult // buffered
}

type compressResult struct {
	status string // "OK", "NO", "BAD"
	code   string // the response code's name, upper case ("COMPRESSIONACTIVE")
	text   string // the reply line without tag and CRLF
	err    error  // the connection ended first
}

func newDeflateConn(conn net.Conn) *deflateConn {
	return &deflateConn{Conn: conn, drop: [2]int64{-1, -1}}
}

// plain stops watching for a COMPRESS reply: none will come.
func (d *deflateConn) plain() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mode == modeWatch && d.pending == nil {
		d.mode = modePlain
	}
}

// compressed reports whether the server's data is DEFLATE.
func (d *deflateConn) compressed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mode == modeInflate
}

// Write sends p, compressed once compression is on. Each Write ends with
// a flush (a sync flush, RFC 1951 §3.2.4's empty stored block), so that
// nothing go-imap wrote waits in the compressor: a pipelined command, a
// literal's last bytes, DONE ending an IDLE. go-imap writes through a
// buffer of its own, so a Write is a whole command or a buffer's worth.
func (d *deflateConn) Write(p []byte) (int, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.mu.Lock()
	corrupt := d.corrupt
	d.mu.Unlock()
	if corrupt != nil {
		// go-imap closes the connection when its reader fails; the
		// command written next would report only that. Say why.
		return 0, corrupt
	}
	if d.fw == nil {
		return d.Conn.Write(p)
	}
	if _, err := d.fw.Write(p); err != nil {
		return 0, err
	}
	if err := d.fw.Flush(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// startWriter compresses every later Write.
func (d *deflateConn) startWriter() {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	// NewWriter fails only for an invalid level.
	d.fw, _ = flate.NewWriter(d.Conn, compressLevel)
}

// Close closes the transport; a start waiting for its reply returns.
func (d *deflateConn) Close() error {
	err := d.Conn.Close()
	d.mu.Lock()
	d.fail(net.ErrClosed)
	d.mu.Unlock()
	return err
}

// fail gives a pending COMPRESS its outcome when the reply cannot come.
// The caller holds mu.
func (d *deflateConn) fail(err error) {
	if d.pending != nil {
		d.pending.done <- compressResult{err: err}
		d.pending = nil
	}
}

// dropRange is where the reply to COMPRESS sits in the stream Read
// returns; [-1, -1) until it has been read.
func (d *deflateConn) dropRange() (int64, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.drop[0], d.drop[1]
}

func (d *deflateConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		d.mu.Lock()
		if len(d.out) > 0 {
			n := copy(p, d.out)
			d.out = d.out[n:]
			d.off += int64(n)
			d.mu.Unlock()
			return n, nil
		}
		if d.rerr != nil {
			err := d.rerr
			d.mu.Unlock()
			return 0, err
		}
		mode, inf := d.mode, d.inf
		d.mu.Unlock()

		switch mode {
		case modePlain:
			return d.Conn.Read(p)
		case modeInflate:
			n, err := inf.Read(p)
			err = inflateErr(err)
			d.mu.Lock()
			d.off += int64(n)
			if errors.Is(err, ErrCompression) && d.corrupt == nil {
				d.corrupt = err
			}
			d.mu.Unlock()
			return n, err
		}
		if d.buf == nil {
			d.buf = make([]byte, 4<<10)
		}
		n, err := d.Conn.Read(d.buf)
		d.mu.Lock()
		if cerr := d.classify(d.buf[:n]); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			d.rerr = err
			d.fail(err)
		}
		if d.mode != modeWatch {
			// Framing is followed no longer.
			d.buf, d.frame = nil, framing{}
		}
		d.mu.Unlock()
	}
}

// inflateErr explains a failure of the server's DEFLATE stream. The end of
// the connection stays what it is (io.ErrUnexpectedEOF in the middle of a
// block), for watchdog.explain to see; anything else means the server did
// not send DEFLATE.
func inflateErr(err error) error {
	var corrupt flate.CorruptInputError
	var internal flate.InternalError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &corrupt), errors.As(err, &internal):
		return fmt.Errorf("%w (RFC 4978 COMPRESS=DEFLATE; imap.compress: off turns it off): %w", ErrCompression, err)
	case err == io.EOF:
		// A DEFLATE stream the server ended with a final block: the
		// connection is over.
		return io.EOF
	}
	return err
}

// classify passes b, the transport's next bytes in modeWatch, into out,
// and finds the reply to a pending COMPRESS. The caller holds mu.
func (d *deflateConn) classify(b []byte) error {
	f := &d.frame
	for len(b) > 0 {
		if f.litLeft > 0 {
			k := int(min(int64(len(b)), f.litLeft))
			d.out = append(d.out, b[:k]...)
			f.litLeft -= int64(k)
			b = b[k:]
			continue
		}
		seg, rest := b, []byte(nil)
		end := false
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			seg, rest, end = b[:i+1], b[i+1:], true
		}
		f.note(seg)
		if d.pending != nil && !f.emitted && f.maybeTag(compressTag) {
			// Held back until the line shows whether it is the reply.
			f.held = append(f.held, seg...)
			if len(f.held) > maxCompressReply {
				return fmt.Errorf("reply to COMPRESS longer than %d bytes", maxCompressReply)
			}
		} else {
			d.out = append(d.out, f.held...)
			d.out = append(d.out, seg...)
			f.held, f.emitted = f.held[:0], true
		}
		b = rest
		if !end {
			continue
		}
		if len(f.held) > 0 {
			line := f.held
			f.held = nil
			// The reply goes up for the trace and is removed above it.
			start := d.off + int64(len(d.out))
			d.drop = [2]int64{start, start + int64(len(line))}
			d.out = append(d.out, line...)
			f.reset()
			r := parseCompressReply(string(line))
			pend := d.pending
			d.pending = nil
			if r.status == "OK" {
				// RFC 4978 §3: the server compresses "starting
				// immediately after the CRLF which ends the tagged OK".
				// Whatever followed it in this read is DEFLATE.
				d.mode = modeInflate
				d.inf = flate.NewReader(io.MultiReader(bytes.NewReader(bytes.Clone(b)), d.Conn))
				b = nil
			} else {
				d.mode = modePlain
			}
			pend.done <- r
			if d.mode == modePlain {
				d.out = append(d.out, b...)
				b = nil
			}
			continue
		}
		n, lit := literalAtLineEnd(f.tail)
		f.reset()
		if lit {
			f.litLeft = n
		}
	}
	return nil
}

// parseCompressReply reads "Z1 OK text", "Z1 NO [CODE ...] text".
func parseCompressReply(line string) compressResult {
	line = strings.TrimRight(line, "\r\n")
	rest := strings.TrimPrefix(line, compressTag+" ")
	status, text, _ := strings.Cut(rest, " ")
	r := compressResult{status: strings.ToUpper(status), text: rest}
	if strings.HasPrefix(text, "[") {
		if end := strings.IndexByte(text, ']'); end > 0 {
			name, _, _ := strings.Cut(text[1:end], " ")
			r.code = strings.ToUpper(name)
		}
	}
	return r
}

// framing follows the server's lines and literals (RFC 9051 §4.3), as
// go-imap's decoder does, so that a tagged reply is recognised only at
// the start of a line and never inside a literal.
type framing struct {
	head    []byte // the current line's first bytes (up to 8)
	tail    []byte // its last bytes (up to 32), for a literal announcement
	emitted bool   // some of the current line has gone into out
	held    []byte // the current line, held back as a possible reply
	litLeft int64  // literal bytes still to come
}

func (f *framing) note(seg []byte) {
	if k := 8 - len(f.head); k > 0 {
		f.head = append(f.head, seg[:min(k, len(seg))]...)
	}
	f.tail = append(f.tail, seg...)
	if len(f.tail) > 32 {
		f.tail = append(f.tail[:0], f.tail[len(f.tail)-32:]...)
	}
}

// maybeTag reports whether the current line may still be, or is, a
// tagged response with tag.
func (f *framing) maybeTag(tag string) bool {
	want := tag + " "
	n := min(len(f.head), len(want))
	return string(f.head[:n]) == want[:n]
}

func (f *framing) reset() {
	f.head, f.tail, f.emitted = f.head[:0], f.tail[:0], false
}

// literalAtLineEnd reads the "{N}" (or literal8's "~{N}", RFC 3516)
// ending a line (RFC 9051 §4.3), CRLF or LF included.
func literalAtLineEnd(line []byte) (int64, bool) {
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(line[open+1:len(line)-1]), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// compressGate sits between the trace and qresync: it sends COMPRESS and
// removes its reply from what go-imap reads.
type compressGate struct {
	net.Conn // the trace, or the deflateConn itself
	d        *deflateConn

	wmu sync.Mutex // go-imap's writes wait while COMPRESS is in flight
	off int64      // bytes read from Conn; only Read uses it
}

func (g *compressGate) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	return g.Conn.Write(p)
}

func (g *compressGate) Read(p []byte) (int, error) {
	for {
		n, err := g.Conn.Read(p)
		from, to := g.d.dropRange()
		start, end := g.off, g.off+int64(n)
		g.off = end
		if from >= 0 && from < end && to > start {
			a, b := int(max(from, start)-start), int(min(to, end)-start)
			copy(p[a:], p[b:n])
			n -= b - a
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// start sends COMPRESS DEFLATE (RFC 4978 §3) and waits for the reply. It
// returns the server's refusal as a compressResult with a status other
// than OK, and an error only when the connection failed. It must be
// called with go-imap idle (no command in flight) and its reader running,
// which delivers the reply; go-imap's writes wait until it returns.
func (g *compressGate) start(ctx context.Context) (compressResult, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	pend := &pendingCompress{done: make(chan compressResult, 1)}
	g.d.mu.Lock()
	if g.d.mode != modeWatch || g.d.pending != nil {
		g.d.mu.Unlock()
		return compressResult{}, errors.New("COMPRESS sent twice")
	}
	g.d.pending = pend
	g.d.mu.Unlock()

	if _, err := io.WriteString(g.Conn, compressTag+" COMPRESS DEFLATE\r\n"); err != nil {
		return compressResult{}, err
	}
	var r compressResult
	select {
	case r = <-pend.done:
	case <-ctx.Done():
		g.d.Close()
		return compressResult{}, ctx.Err()
	}
	if r.err != nil {
		return r, r.err
	}
	if r.status == "OK" {
		// RFC 4978 §3: "the client MUST compress starting with the first
		// command after COMPRESS".
		g.d.startWriter()
	}
	return r, nil
}

// compressRefusals holds the servers ("host:port") whose refusal of
// COMPRESS has been logged: a server that advertises COMPRESS=DEFLATE and
// refuses it will do so on every connection, and watch mode reconnects.
var compressRefusals sync.Map

// compress turns COMPRESS=DEFLATE on after login (RFC 4978 §3: COMPRESS
// is a command of the authenticated state) when the server offers it and
// opts allow it. A refusal leaves the connection uncompressed: NO
// [COMPRESSIONACTIVE] (RFC 4978 §3, RFC 5530) says a lower layer
// compresses already; any other NO or BAD is logged once per server.
func (c *Client) compress(ctx context.Context, g *compressGate, opts Options) error {
	if opts.Compress == CompressOff || !c.caps.Has(capCompressDeflate) {
		g.d.plain()
		return nil
	}
	r, err := g.start(ctx)
	if err != nil {
		return fmt.Errorf("%w to %s: COMPRESS: %w", ErrConnect, opts.Host, c.ioErr(ctx, err))
	}
	switch {
	case r.status == "OK":
		c.compressed = true
	case r.code == "COMPRESSIONACTIVE":
		c.log.Debug("server compresses in another layer", "reply", r.text)
	default:
		key := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
		if _, logged := compressRefusals.LoadOrStore(key, true); !logged {
			c.log.Warn("server refused COMPRESS it advertised; continuing uncompressed", "server", key, "reply", r.text)
		}
	}
	return nil
}
