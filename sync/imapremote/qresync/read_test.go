package qresync

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestReadFiltersVanished(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		out     string // what go-imap must read
		uids    []Range
		earlier bool
	}{
		{
			name:    "earlier during select",
			in:      "* 7 EXISTS\r\n* VANISHED (EARLIER) 1:3,5,7:9\r\n* 3 FETCH (UID 4 MODSEQ (5) FLAGS ())\r\nT1 OK done\r\n",
			out:     "* 7 EXISTS\r\n* 3 FETCH (UID 4 MODSEQ (5) FLAGS ())\r\nT1 OK done\r\n",
			uids:    []Range{{1, 3}, {5, 5}, {7, 9}},
			earlier: true,
		},
		{
			name: "live, reversed range, any case",
			in:   "* VANISHED 9:7\r\n* vanished 4\r\nT2 OK expunged\r\n",
			out:  "T2 OK expunged\r\n",
			uids: []Range{{4, 4}, {7, 9}},
		},
		{
			name: "literal holding a VANISHED line",
			in:   "* 1 FETCH (UID 1 BODY[] {16}\r\n\r\n* VANISHED 1\r\n)\r\nT3 OK\r\n",
			out:  "* 1 FETCH (UID 1 BODY[] {16}\r\n\r\n* VANISHED 1\r\n)\r\nT3 OK\r\n",
		},
		{
			name: "VANISHED right after a literal's line",
			in:   "* 1 FETCH (BODY[] {12}\r\n* VANISHED 1 BODY[HEADER] {3}\r\nabc)\r\n* VANISHED 2\r\n",
			out:  "* 1 FETCH (BODY[] {12}\r\n* VANISHED 1 BODY[HEADER] {3}\r\nabc)\r\n",
			uids: []Range{{2, 2}},
		},
		{
			name: "empty and binary literals",
			in:   "* 2 FETCH (BODY[1] {0}\r\n BINARY[2] ~{4}\r\n\x00\r\n\xff)\r\n* VANISHED 3\r\n",
			out:  "* 2 FETCH (BODY[1] {0}\r\n BINARY[2] ~{4}\r\n\x00\r\n\xff)\r\n",
			uids: []Range{{3, 3}},
		},
		{
			name: "no literal in status, tagged and continuation text",
			in:   "* OK [ALERT] see {5}\r\n* VANISHED 3\r\nT4 NO quota {2}\r\n* VANISHED 4\r\n+ {1}\r\n* VANISHED 5\r\n",
			out:  "* OK [ALERT] see {5}\r\nT4 NO quota {2}\r\n+ {1}\r\n",
			uids: []Range{{3, 5}},
		},
		{
			name: "literal in other untagged data",
			in:   "* LIST () \"/\" {13}\r\n* VANISHED 1\r\n\r\n* VANISHED 2\r\n",
			out:  "* LIST () \"/\" {13}\r\n* VANISHED 1\r\n\r\n",
			uids: []Range{{2, 2}},
		},
		{
			name:    "responses before CLOSED belong to the closed mailbox",
			in:      "* VANISHED 5\r\n* OK [CLOSED] previous mailbox closed\r\n* VANISHED (EARLIER) 1\r\n",
			out:     "* OK [CLOSED] previous mailbox closed\r\n",
			uids:    []Range{{1, 1}},
			earlier: true,
		},
		{
			name: "go-imap's tolerance: bare LF, SP before CRLF",
			in:   "* VANISHED 6\n* 1 EXISTS\n* VANISHED 8 \r\n* 1 FETCH (BODY[] {1} \nx)\n* VANISHED 10\n",
			out:  "* 1 EXISTS\n* 1 FETCH (BODY[] {1} \nx)\n",
			uids: []Range{{6, 6}, {8, 8}, {10, 10}},
		},
		{
			name: "merged across responses",
			in:   "* VANISHED 4:6,1\r\n* VANISHED 2,3,7\r\n",
			uids: []Range{{1, 7}},
		},
		{
			name: "long first token, unfinished last line",
			in:   "* " + strings.Repeat("X", 100) + " {3}\r\nabc\r\n* VANISHED 1\r\n* 1 FETCH (BODY[] {9}\r\nshort",
			out:  "* " + strings.Repeat("X", 100) + " {3}\r\nabc\r\n* 1 FETCH (BODY[] {9}\r\nshort",
			uids: []Range{{1, 1}},
		},
		{
			name: "names that only start like VANISHED or ENABLED",
			in:   "* VANISHEDX 1\r\n* ENABLED QRESYNC\r\n* 1 VANISHED\r\n",
			out:  "* VANISHEDX 1\r\n* ENABLED QRESYNC\r\n* 1 VANISHED\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, pieces := range splits(tt.in) {
				for _, readSize := range []int{1, 7, 4096} {
					got := readThrough(copies(pieces), readSize)
					if got.err != nil {
						t.Fatalf("pieces %q, reads of %d: %v", pieces, readSize, got.err)
					}
					if got.out != tt.out {
						t.Fatalf("pieces %q, reads of %d: go-imap reads\n%q\nwant\n%q", pieces, readSize, got.out, tt.out)
					}
					if !slices.Equal(got.uids, tt.uids) || got.earlier != tt.earlier {
						t.Fatalf("pieces %q, reads of %d: Vanished() = %v, %v; want %v, %v", pieces, readSize, got.uids, got.earlier, tt.uids, tt.earlier)
					}
				}
			}
		})
	}
}

func TestReadMalformedVanished(t *testing.T) {
	for _, line := range []string{
		"* VANISHED 1:*\r\n",        // RFC 7162 §7: "*" is not allowed
		"* VANISHED 0\r\n",          // not an nz-number
		"* VANISHED 3:0\r\n",        // nor here
		"* VANISHED 4294967296\r\n", // past the largest UID
		"* VANISHED 99999999999999999999999\r\n",
		"* VANISHED (LATER) 1\r\n",
		"* VANISHED (EARLIER)\r\n",
		"* VANISHED\r\n",
		"* VANISHED \r\n",
		"* VANISHED 1,\r\n",
		"* VANISHED 1:2:3\r\n",
		"* VANISHED 1\rX\n",
		"* VANISHED 1 2\r\n",
	} {
		t.Run(line, func(t *testing.T) {
			before := "* 1 EXISTS\r\n"
			got := readThrough([][]byte{[]byte(before + line + "T1 OK\r\n")}, 4096)
			if got.err == nil || !errors.Is(got.err, errMalformed) {
				t.Fatalf("error = %v, want a malformed VANISHED", got.err)
			}
			if got.out != before {
				t.Errorf("go-imap reads %q, want %q", got.out, before)
			}
		})
	}
}

func TestReadHugeVanishedBoundedMemory(t *testing.T) {
	const n = 100_000
	var line strings.Builder
	line.WriteString("* VANISHED (EARLIER) ")
	for u := 1; u <= n; u++ {
		if u > 1 {
			line.WriteByte(',')
		}
		line.WriteString(strconv.Itoa(u))
	}
	line.WriteString("\r\nT1 OK done\r\n")
	in := []byte(line.String())

	c := Wrap(&scriptConn{in: [][]byte{in}})
	buf := make([]byte, 4096)
	var out bytes.Buffer
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for {
		k, err := c.Read(buf)
		out.Write(buf[:k])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)

	if out.String() != "T1 OK done\r\n" {
		t.Errorf("go-imap reads %q", out.String())
	}
	uids, earlier := c.Vanished()
	if !slices.Equal(uids, []Range{{1, n}}) || !earlier {
		t.Errorf("Vanished() = %v, %v; want [{1 %d}], true", uids, earlier, n)
	}
	// The line is parsed as it streams by: nothing near its size is
	// ever allocated.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(in))/8 {
		t.Errorf("reading a %d-byte VANISHED line allocated %d bytes", len(in), alloc)
	}
}

func TestReadHugeVanishedSparse(t *testing.T) {
	// 100k UIDs that merge into no range: every one is kept.
	const n = 100_000
	var line strings.Builder
	line.WriteString("* VANISHED ")
	for i := range n {
		if i > 0 {
			line.WriteByte(',')
		}
		line.WriteString(strconv.Itoa(2*i + 1))
	}
	line.WriteString("\r\n")
	got := readThrough([][]byte{[]byte(line.String())}, 4096)
	if got.err != nil || got.out != "" {
		t.Fatalf("read: %q, %v", got.out, got.err)
	}
	if len(got.uids) != n || got.uids[0] != (Range{1, 1}) || got.uids[n-1] != (Range{2*n - 1, 2*n - 1}) {
		t.Errorf("Vanished() has %d ranges, %v ... %v", len(got.uids), got.uids[0], got.uids[len(got.uids)-1])
	}
}

func TestReadLargeLiteralStreams(t *testing.T) {
	// A 4 MiB BODY[] whose lines all look like VANISHED responses passes
	// untouched, and is never held whole.
	body := bytes.Repeat([]byte("* VANISHED 1:100\r\n"), 4<<20/18)
	head := fmt.Sprintf("* 1 FETCH (UID 1 BODY[] {%d}\r\n", len(body))
	tail := ")\r\n* VANISHED 7\r\nT1 OK\r\n"
	in := slices.Concat([]byte(head), body, []byte(tail))
	want := slices.Concat([]byte(head), body, []byte(")\r\nT1 OK\r\n"))

	// The server's bytes arrive in 64 KiB pieces.
	var pieces [][]byte
	for rest := in; len(rest) > 0; {
		k := min(len(rest), 64<<10)
		pieces = append(pieces, rest[:k])
		rest = rest[k:]
	}
	c := Wrap(&scriptConn{in: pieces})
	buf := make([]byte, 4096)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	off := 0
	for {
		k, err := c.Read(buf)
		if !bytes.Equal(buf[:k], want[off:off+k]) {
			t.Fatalf("bytes %d to %d differ", off, off+k)
		}
		off += k
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if off != len(want) {
		t.Fatalf("go-imap read %d bytes, want %d", off, len(want))
	}
	if uids, _ := c.Vanished(); !slices.Equal(uids, []Range{{7, 7}}) {
		t.Errorf("Vanished() = %v, want [{7 7}]", uids)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("passing a %d-byte literal allocated %d bytes", len(body), alloc)
	}
}

func TestReadLongLinePassesThrough(t *testing.T) {
	// A line far longer than any buffer, not a VANISHED one, that holds
	// the word and a literal announcement at its end.
	var line strings.Builder
	line.WriteString("* SEARCH")
	for u := 1; u <= 50_000; u++ {
		line.WriteString(" " + strconv.Itoa(u))
	}
	line.WriteString(" VANISHED {3}\r\n* VANISHED 2\r\n* VANISHED 3\r\n")
	in := line.String()
	want := strings.TrimSuffix(in, "* VANISHED 3\r\n")
	got := readThrough([][]byte{[]byte(in)}, 4096)
	if got.err != nil || got.out != want {
		t.Fatalf("go-imap reads %d bytes (%v), want the %d bytes of the line and its literal", len(got.out), got.err, len(want))
	}
	if !slices.Equal(got.uids, []Range{{3, 3}}) {
		t.Errorf("Vanished() = %v, want [{3 3}]", got.uids)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want []Range
	}{
		{nil, nil},
		{[]Range{{5, 9}, {1, 2}, {3, 4}}, []Range{{1, 9}}},
		{[]Range{{1, 3}, {2, 2}, {10, 11}}, []Range{{1, 3}, {10, 11}}},
		{[]Range{{1, 4294967295}, {7, 8}}, []Range{{1, 4294967295}}},
		{[]Range{{4294967295, 4294967295}, {1, 1}}, []Range{{1, 1}, {4294967295, 4294967295}}},
	}
	for _, tt := range tests {
		if got := normalize(slices.Clone(tt.in)); !slices.Equal(got, tt.want) {
			t.Errorf("normalize(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
