package qresync

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"
)

// scriptConn is a net.Conn whose Read returns the given pieces, one per
// call at most, then io.EOF; what is written is kept.
type scriptConn struct {
	in  [][]byte
	out bytes.Buffer
}

func (s *scriptConn) Read(p []byte) (int, error) {
	for len(s.in) > 0 && len(s.in[0]) == 0 {
		s.in = s.in[1:]
	}
	if len(s.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.in[0])
	s.in[0] = s.in[0][n:]
	return n, nil
}

func (s *scriptConn) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s *scriptConn) Close() error                { return nil }
func (s *scriptConn) LocalAddr() net.Addr         { return nil }
func (s *scriptConn) RemoteAddr() net.Addr        { return nil }
func (s *scriptConn) SetDeadline(time.Time) error { return nil }

func (s *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (s *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// filtered is what go-imap would get from a server stream.
type filtered struct {
	out     string
	uids    []Range
	earlier bool
	err     error
}

// readThrough wraps a conn that delivers pieces and reads it to the end
// with reads of readSize bytes.
func readThrough(pieces [][]byte, readSize int) filtered {
	c := Wrap(&scriptConn{in: pieces})
	var out bytes.Buffer
	buf := make([]byte, readSize)
	var err error
	for {
		var n int
		n, err = c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	uids, earlier := c.Vanished()
	return filtered{out: out.String(), uids: uids, earlier: earlier, err: err}
}

// splits returns the ways of cutting s that the tests try: whole, in two
// at every byte boundary, and one byte per piece.
func splits(s string) [][][]byte {
	b := []byte(s)
	ways := [][][]byte{{b}}
	for i := 1; i < len(b); i++ {
		ways = append(ways, [][]byte{b[:i:i], b[i:]})
	}
	var bytewise [][]byte
	for i := range b {
		bytewise = append(bytewise, b[i:i+1:i+1])
	}
	return append(ways, bytewise)
}

// copies returns fresh copies of pieces: scriptConn consumes them.
func copies(pieces [][]byte) [][]byte {
	out := make([][]byte, len(pieces))
	for i, p := range pieces {
		out[i] = bytes.Clone(p)
	}
	return out
}

// expand lists the UIDs of ranges.
func expand(rs []Range) []uint32 {
	var out []uint32
	for _, r := range rs {
		for u := uint64(r.First); u <= uint64(r.Last); u++ {
			out = append(out, uint32(u))
		}
	}
	return out
}
