package wiretrace

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// fakeConn is a net.Conn whose Read returns what the test put in pending,
// and whose Write keeps what it is given.
type fakeConn struct {
	pending []byte
	sent    bytes.Buffer
}

func (f *fakeConn) Read(p []byte) (int, error) {
	if len(f.pending) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

func (f *fakeConn) Write(p []byte) (int, error)      { return f.sent.Write(p) }
func (f *fakeConn) Close() error                     { return nil }
func (f *fakeConn) LocalAddr() net.Addr              { return fakeAddr("local") }
func (f *fakeConn) RemoteAddr() net.Addr             { return fakeAddr("remote") }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

type fakeAddr string

func (a fakeAddr) Network() string { return "fake" }
func (a fakeAddr) String() string  { return string(a) }

// step is what one side sends next: dir 'C' is written by the client,
// dir 'S' is read from the server.
type step struct {
	dir  byte
	data string
}

func c(data string) step { return step{'C', data} }
func s(data string) step { return step{'S', data} }

// splitter cuts one step's bytes into the pieces that cross Read or Write.
type splitter func(data []byte) [][]byte

func whole(data []byte) [][]byte { return [][]byte{data} }

func byteByByte(data []byte) [][]byte {
	var out [][]byte
	for i := range data {
		out = append(out, data[i:i+1])
	}
	return out
}

// sizes cycles through fixed piece sizes, so pieces end at varied places.
func sizes(n ...int) splitter {
	return func(data []byte) [][]byte {
		var out [][]byte
		for i := 0; len(data) > 0; i++ {
			k := min(n[i%len(n)], len(data))
			out = append(out, data[:k])
			data = data[k:]
		}
		return out
	}
}

// trace runs the steps through a wrapped fakeConn, closes it, and returns
// the trace and the bytes the client wrote.
func trace(steps []step, split splitter) (string, []byte) {
	fc := &fakeConn{}
	var out bytes.Buffer
	conn := Wrap(fc, &out)
	for _, st := range steps {
		for _, piece := range split([]byte(st.data)) {
			if len(piece) == 0 {
				continue
			}
			if st.dir == 'C' {
				if _, err := conn.Write(piece); err != nil {
					panic(err)
				}
				continue
			}
			fc.pending = piece
			buf := make([]byte, len(piece))
			for len(fc.pending) > 0 {
				if _, err := conn.Read(buf); err != nil {
					panic(err)
				}
			}
		}
	}
	if err := conn.Close(); err != nil {
		panic(err)
	}
	return out.String(), fc.sent.Bytes()
}

// reconstruct undoes the trace format: per direction, each record's text
// followed by the line end its kind names. It checks that every record is
// well formed.
func reconstruct(trace string) (client, server []byte, err error) {
	if trace == "" {
		return nil, nil, nil
	}
	if !strings.HasSuffix(trace, "\n") {
		return nil, nil, fmt.Errorf("trace does not end in a newline")
	}
	for i, rec := range strings.Split(strings.TrimSuffix(trace, "\n"), "\n") {
		if len(rec) < 3 || rec[2] != ' ' {
			return nil, nil, fmt.Errorf("record %d %q: no prefix", i, rec)
		}
		text := rec[3:]
		if len(text) > maxRecord {
			return nil, nil, fmt.Errorf("record %d: %d bytes of text", i, len(text))
		}
		var dst *[]byte
		switch rec[0] {
		case 'C':
			dst = &client
		case 'S':
			dst = &server
		default:
			return nil, nil, fmt.Errorf("record %d %q: direction %q", i, rec, rec[0])
		}
		*dst = append(*dst, text...)
		switch rec[1] {
		case kindCRLF:
			*dst = append(*dst, '\r', '\n')
		case kindLF:
			*dst = append(*dst, '\n')
		case kindMore:
		default:
			return nil, nil, fmt.Errorf("record %d %q: kind %q", i, rec, rec[1])
		}
	}
	return client, server, nil
}

// literal returns a non-synchronizing literal (RFC 7888) holding data.
func literal(data string) string {
	return fmt.Sprintf("{%d+}\r\n%s", len(data), data)
}
