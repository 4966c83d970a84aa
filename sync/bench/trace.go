package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
)

// traceStats reads a `satchel --trace` file (format: package
// sync/imapremote/wiretrace) the way the latency proxy reads the wire:
// the client's records, with their line ends restored, go through the same
// command parser (so literal data is never taken for a command), and a
// client record after a server record opens a new burst. In a trace taken
// through the latency proxy a burst is a round trip the client waited for;
// on loopback the order of records says less, since replies can overtake a
// pipelining client's next write.
//
// The trace file is shared by every connection of a run and its records
// carry no connection id: with more than one connection (more than one
// PREAUTH greeting) the records of several connections interleave, so
// bursts mean nothing and literals cannot be followed: then every line
// that looks like a command counts as one (see cmdParser.noLiterals).
func traceStats(path string) (*connStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := &connStats{}
	greetings := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 128<<10), 1<<20)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("S: * PREAUTH ")) {
			greetings++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st.cmd.noLiterals = greetings > 1
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	for n := 1; ; n++ {
		rec, err := br.ReadBytes('\n')
		if len(rec) == 0 && err != nil {
			break
		}
		if len(rec) < 2 || (rec[0] != 'C' && rec[0] != 'S') {
			return nil, fmt.Errorf("%s:%d: not a trace record: %.40q", path, n, rec)
		}
		text := bytes.TrimSuffix(bytes.TrimPrefix(rec[2:], []byte(" ")), []byte("\n"))
		switch rec[1] {
		case ':':
			text = append(text, '\r', '\n')
		case '|':
			text = append(text, '\n')
		}
		st.saw(rec[0] == 'C', text)
	}
	return st, nil
}
