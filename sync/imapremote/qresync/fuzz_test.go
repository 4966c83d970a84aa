package qresync

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// cut splits data into pieces of 1 to 17 bytes, chosen by a generator
// seeded from data, so that every input is also tried cut up.
func cut(data []byte) [][]byte {
	seed := uint32(len(data)) + 1
	for _, b := range data {
		seed = seed*31 + uint32(b)
	}
	var pieces [][]byte
	for rest := data; len(rest) > 0; {
		seed = seed*1664525 + 1013904223
		n := min(len(rest), int(seed>>28)+1)
		pieces = append(pieces, bytes.Clone(rest[:n]))
		rest = rest[n:]
	}
	return pieces
}

// FuzzRead: what go-imap reads and what Vanished returns do not depend on
// how the server's bytes are cut up or read; a stream without VANISHED in
// it passes unchanged.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"* VANISHED (EARLIER) 1:3,5,7:9\r\n* 3 FETCH (UID 4)\r\nT1 OK\r\n",
		"* 1 FETCH (BODY[] {16}\r\n\r\n* VANISHED 1\r\n)\r\n* VANISHED 2\r\n",
		"* OK [ALERT] {5}\r\n* VANISHED 3\r\n+ {1}\r\nT1 NO {2}\r\n",
		"* VANISHED 5\r\n* OK [CLOSED]\r\n* VANISHED 1\n* 1 FETCH (X {0}\r\n)\n",
		"* VANISHED 1:*\r\n",
		"* LIST () \"/\" {3}\r\nabc\r\n* 2 FETCH (BINARY[] ~{2}\r\n\x00\x01)\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := readThrough([][]byte{bytes.Clone(data)}, 4096)
		pieces := readThrough(cut(data), 3)
		if whole.out != pieces.out || !slices.Equal(whole.uids, pieces.uids) ||
			whole.earlier != pieces.earlier || (whole.err == nil) != (pieces.err == nil) {
			t.Fatalf("whole: %q %v %v %v\ncut up: %q %v %v %v",
				whole.out, whole.uids, whole.earlier, whole.err, pieces.out, pieces.uids, pieces.earlier, pieces.err)
		}
		if whole.err != nil && !errors.Is(whole.err, errMalformed) {
			t.Fatalf("unexpected error %v", whole.err)
		}
		if !bytes.Contains(bytes.ToUpper(data), []byte("VANISHED")) && whole.out != string(data) {
			t.Fatalf("go-imap reads %q, want the input unchanged", whole.out)
		}
	})
}

// FuzzWrite: what the server gets does not depend on how go-imap's bytes
// are cut up; without ArmSelect it is exactly what go-imap wrote.
func FuzzWrite(f *testing.F) {
	for _, s := range []string{
		"T1 SELECT INBOX (CONDSTORE)\r\nT2 NOOP\r\n",
		"T1 SELECT {5}\r\nab\r\nc (CONDSTORE)\r\n",
		"T1 APPEND INBOX {17+}\r\nT9 SELECT INBOX\r\n\r\nT2 EXAMINE \"x\"\r\n",
		"DONE\r\nT3 select a\n",
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, armed bool) {
		run := func(pieces [][]byte) string {
			c, sc := enabledConn()
			if armed {
				if err := c.ArmSelect(7, 42, "1:10"); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range pieces {
				if n, err := c.Write(p); n != len(p) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			return sc.out.String()
		}
		whole, pieces := run([][]byte{bytes.Clone(data)}), run(cut(data))
		if whole != pieces {
			t.Fatalf("whole: %q\ncut up: %q", whole, pieces)
		}
		if !armed && !bytes.HasPrefix(data, []byte(whole)) {
			t.Fatalf("server gets %q, not a prefix of what go-imap wrote", whole)
		}
	})
}
