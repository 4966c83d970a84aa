package maildir

import (
	"bytes"
	"io"
)

// Messages travel over IMAP with CRLF line ends (RFC 9051 §2.2, RFC 5322
// §2.1) and are stored in a Maildir with LF, the Unix convention that mail
// readers expect. The converters below work on streams, so a message is
// never held whole in memory.

// lfWriter turns CRLF into LF; see NewLFWriter.
type lfWriter struct {
	w   io.Writer
	cr  bool   // the last byte written was a CR whose successor is unknown
	out []byte // reused output buffer, so each Write is one downstream Write
	err error  // first downstream error; the writer is dead after it
}

// NewLFWriter returns a writer that turns each CRLF into LF and passes
// every other byte through unchanged, bare CRs and bare LFs included. A CR
// that ends one Write is held back until the next Write shows whether an
// LF follows; Close writes a CR still held at the end of the stream. The
// returned writer also has a Flush() error method that does the same
// without ending the stream. Close does not close w. After an error from
// w, every call returns that error.
func NewLFWriter(w io.Writer) io.WriteCloser {
	return &lfWriter{w: w}
}

func (l *lfWriter) Write(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	out := l.out[:0]
	if l.cr {
		l.cr = false
		if p[0] != '\n' {
			out = append(out, '\r')
		}
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			out = append(out, p...)
			break
		}
		out = append(out, p[:i]...)
		switch {
		case i+1 == len(p):
			l.cr = true // decided by the next Write or by Close
		case p[i+1] != '\n':
			out = append(out, '\r')
		}
		// For a CRLF the CR is dropped and the LF is copied with the
		// next segment.
		p = p[i+1:]
	}
	l.out = out
	if len(out) > 0 {
		if _, err := l.w.Write(out); err != nil {
			// How much of p reached w is unknown after the CRLF
			// folding; report none and refuse further use.
			l.err = err
			return 0, err
		}
	}
	return n, nil
}

// Flush writes a held-back CR: the caller says no LF follows it.
func (l *lfWriter) Flush() error {
	if l.err != nil {
		return l.err
	}
	if !l.cr {
		return nil
	}
	l.cr = false
	if _, err := l.w.Write([]byte{'\r'}); err != nil {
		l.err = err
		return err
	}
	return nil
}

// Close ends the stream: it flushes a held-back CR.
func (l *lfWriter) Close() error { return l.Flush() }

// crlfReader turns bare LF into CRLF; see NewCRLFReader.
type crlfReader struct {
	r       io.Reader
	in      []byte
	out     []byte // reused conversion buffer
	pending []byte // converted bytes not yet returned (a tail of out)
	prevCR  bool   // the last input byte was a CR
	err     error  // error from r, returned once pending is drained
}

// NewCRLFReader returns a reader that turns each LF not preceded by a CR
// into CRLF and passes every other byte through, so that a message stored
// with LF line ends can be uploaded in the CRLF form IMAP requires
// (RFC 9051 §4.3: a literal's lines end in CRLF). A CR followed by LF stays
// as it is, across reads of r too.
func NewCRLFReader(r io.Reader) io.Reader {
	return &crlfReader{r: r}
}

func (c *crlfReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.pending) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.in == nil {
			c.in = make([]byte, 32<<10)
		}
		n, err := c.r.Read(c.in)
		c.err = err
		c.pending = c.convert(c.in[:n])
		if n == 0 && err == nil {
			// r made no progress; let the caller decide whether to retry
			// (io.Reader allows 0, nil).
			return 0, nil
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// convert returns in with bare LFs expanded, in a buffer owned by c.
func (c *crlfReader) convert(in []byte) []byte {
	out := c.out[:0]
	for len(in) > 0 {
		i := bytes.IndexByte(in, '\n')
		if i < 0 {
			out = append(out, in...)
			c.prevCR = in[len(in)-1] == '\r'
			break
		}
		out = append(out, in[:i]...)
		prevCR := c.prevCR
		if i > 0 {
			prevCR = in[i-1] == '\r'
		}
		if !prevCR {
			out = append(out, '\r')
		}
		out = append(out, '\n')
		c.prevCR = false
		in = in[i+1:]
	}
	c.out = out
	return out
}
