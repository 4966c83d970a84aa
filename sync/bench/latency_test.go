package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCmdParser(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"pipelined", []string{"T1 LIST \"\" \"*\"\r\nT2 LOGOUT\r\n"}, []string{"LIST", "LOGOUT"}},
		{"split mid-line", []string{"T1 UID FE", "TCH 1:* (FLAGS)\r\n"}, []string{"UID FETCH"}},
		{"literal looks like a command", []string{"T1 APPEND INBOX {13+}\r\nT9 SELECT x\r\n\r\nT2 NOOP\r\n"}, []string{"APPEND", "NOOP"}},
		{"synchronizing literal", []string{"T1 APPEND INBOX {4}\r\n", "T9 X\r\n", "T2 NOOP\r\n"}, []string{"APPEND", "NOOP"}},
		{"prose is not a command", []string{"the list of things\r\nDONE\r\nT3 IDLE\r\n"}, []string{"IDLE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p cmdParser
			var got []string
			for _, c := range tc.chunks {
				p.feed([]byte(c), func(name string) { got = append(got, name) })
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("commands %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTraceStats reads a trace in satchel's --trace format: one connection
// whose literal holds a line that looks like a command.
func TestTraceStats(t *testing.T) {
	trace := strings.Join([]string{
		"S: * PREAUTH [CAPABILITY IMAP4rev1] ready",
		"C: Q1 ENABLE QRESYNC",
		"S: Q1 OK Enabled",
		"C: T1 LIST \"\" \"*\" RETURN (STATUS (MESSAGES))",
		"C: T2 APPEND INBOX {9+}",
		"C: T3 NOOP",
		"C: ",
		"S: T1 OK done",
		"S: T2 OK done",
		"C: T4 LOGOUT",
		"S: T4 OK bye",
	}, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "trace")
	if err := os.WriteFile(path, []byte(trace), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := traceStats(path)
	if err != nil {
		t.Fatal(err)
	}
	got := roundTrips([]*connStats{st})
	want := map[string]int{"ENABLE": 1, "LIST": 1, "APPEND": 1, "LOGOUT": 1}
	// The last LOGOUT alone is not waited for: two round trips.
	if got.RoundTrips != 2 || !reflect.DeepEqual(got.ByCommand, want) {
		t.Errorf("round trips %d, commands %v; want 2, %v", got.RoundTrips, got.ByCommand, want)
	}
}

// TestLatencyProxyBursts drives the proxy with a client that pipelines two
// commands and then waits for each of two more: three round trips, of
// which the last, a LOGOUT alone, is not counted.
func TestLatencyProxyBursts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "* PREAUTH hi\r\n")
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			tag, _, _ := strings.Cut(line, " ")
			fmt.Fprintf(c, "%s OK done\r\n", tag)
		}
	}()
	p, err := startLatencyProxy(ln.Addr().String(), 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port()))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	br.ReadString('\n')
	wait := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
	}
	io.WriteString(c, "A1 SELECT INBOX\r\nA2 UID FETCH 1:* (FLAGS)\r\n")
	wait(2)
	io.WriteString(c, "A3 NOOP\r\n")
	wait(1)
	io.WriteString(c, "A4 LOGOUT\r\n")
	wait(1)
	c.Close()
	got := roundTrips(p.take(t.Context()))
	want := map[string]int{"SELECT": 1, "UID FETCH": 1, "NOOP": 1, "LOGOUT": 1}
	if got.RoundTrips != 2 || got.Connections != 1 || !reflect.DeepEqual(got.ByCommand, want) {
		t.Errorf("got %+v; want 2 round trips on 1 connection, commands %v", got, want)
	}
}
