package wiretrace

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestTrace(t *testing.T) {
	fetchBody := "Subject: hi\r\n\r\nbody"
	tests := []struct {
		name  string
		steps []step
		want  string
	}{{
		name: "LOGIN with an atom password",
		steps: []step{
			s("* OK [CAPABILITY IMAP4rev2] ready\r\n"),
			c("a1 LOGIN me secret\r\n"),
			s("a1 OK done\r\n"),
		},
		want: "S: * OK [CAPABILITY IMAP4rev2] ready\n" +
			"C: a1 LOGIN me ***\n" +
			"S: a1 OK done\n",
	}, {
		name:  "LOGIN with a quoted password holding an escaped quote",
		steps: []step{c(`a1 LOGIN me "p\"ss"` + "\r\n")},
		want:  "C: a1 LOGIN me ***\n",
	}, {
		name:  "login in lower case, quoted user with a space",
		steps: []step{c(`a1 login "m \"e" "x y"` + "\r\n")},
		want:  `C: a1 login "m \"e" ***` + "\n",
	}, {
		name: "LOGIN with a synchronizing literal password",
		steps: []step{
			c("a1 LOGIN me {6}\r\n"),
			s("+ Ready for literal data\r\n"),
			c("secret\r\n"),
			s("a1 OK done\r\n"),
		},
		want: "C: a1 LOGIN me {6}\n" +
			"S: + Ready for literal data\n" +
			"C: ***\n" +
			"S: a1 OK done\n",
	}, {
		name:  "LOGIN with a LITERAL+ non-ASCII password",
		steps: []step{c("a1 LOGIN me " + literal("sécret") + "\r\n")},
		want:  "C: a1 LOGIN me {7+}\nC: ***\n",
	}, {
		name:  "LOGIN with a literal password holding CRLF, quotes and an announcement",
		steps: []step{c("a1 LOGIN me " + literal("a b\r\n{5}\r\n\"") + "\r\n")},
		want:  "C: a1 LOGIN me {11+}\nC: ***\n",
	}, {
		name:  "LOGIN with literal user and literal password",
		steps: []step{c("a1 LOGIN " + literal("me") + " " + literal("secret") + "\r\n")},
		want:  "C: a1 LOGIN {2+}\nC: me {6+}\nC: ***\n",
	}, {
		name:  "malformed LOGIN: literal after an unterminated quoted user",
		steps: []step{c(`a1 LOGIN "me ` + literal("secret") + "\r\n")},
		want:  `C: a1 LOGIN "me {6+}` + "\nC: ***\n",
	}, {
		name:  "LOGIN with an empty literal password",
		steps: []step{c("a1 LOGIN me {0+}\r\n\r\n")},
		want:  "C: a1 LOGIN me {0+}\nC: ***\n",
	}, {
		name:  "LOGIN with a literal8 password",
		steps: []step{c("a1 LOGIN me ~{3+}\r\nabc\r\n")},
		want:  "C: a1 LOGIN me ~{3+}\nC: ***\n",
	}, {
		name:  "LOGIN password that only starts like an announcement",
		steps: []step{c("a1 LOGIN me {12x\r\n")},
		want:  "C: a1 LOGIN me ***\n",
	}, {
		name: "AUTHENTICATE PLAIN with an initial response",
		steps: []step{
			c("a2 AUTHENTICATE PLAIN AG1lAHNlY3JldA==\r\n"),
			s("a2 OK authenticated\r\n"),
			c("a3 SELECT INBOX\r\n"),
		},
		want: "C: a2 AUTHENTICATE PLAIN ***\n" +
			"S: a2 OK authenticated\n" +
			"C: a3 SELECT INBOX\n",
	}, {
		name: "AUTHENTICATE PLAIN with a continuation, then IDLE's continuation is kept",
		steps: []step{
			c("a2 AUTHENTICATE PLAIN\r\n"),
			s("+ \r\n"),
			c("AG1lAHNlY3JldA==\r\n"),
			s("a2 OK authenticated\r\n"),
			c("a3 IDLE\r\n"),
			s("+ idling\r\n"),
			c("DONE\r\n"),
			s("a3 OK IDLE terminated\r\n"),
		},
		want: "C: a2 AUTHENTICATE PLAIN\n" +
			"S: + ***\n" +
			"C: ***\n" +
			"S: a2 OK authenticated\n" +
			"C: a3 IDLE\n" +
			"S: + idling\n" +
			"C: DONE\n" +
			"S: a3 OK IDLE terminated\n",
	}, {
		name: "AUTHENTICATE cancelled with *",
		steps: []step{
			c("a2 AUTHENTICATE CRAM-MD5\r\n"),
			s("+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"),
			c("*\r\n"),
			s("a2 BAD AUTHENTICATE cancelled\r\n"),
			c("a3 NOOP\r\n"),
		},
		want: "C: a2 AUTHENTICATE CRAM-MD5\n" +
			"S: + ***\n" +
			"C: ***\n" +
			"S: a2 BAD AUTHENTICATE cancelled\n" +
			"C: a3 NOOP\n",
	}, {
		name: "XOAUTH2 failure: error challenge and empty response",
		steps: []step{
			c("a2 AUTHENTICATE XOAUTH2 dXNlcj1tZQFhdXRoPUJlYXJlciB5YTI5LnRva2VuAQE=\r\n"),
			s("+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n"),
			c("\r\n"),
			s("a2 NO [AUTHENTICATIONFAILED] invalid credentials\r\n"),
		},
		want: "C: a2 AUTHENTICATE XOAUTH2 ***\n" +
			"S: + ***\n" +
			"C: ***\n" +
			"S: a2 NO [AUTHENTICATIONFAILED] invalid credentials\n",
	}, {
		name: "only the tagged reply for AUTHENTICATE's own tag ends the exchange",
		steps: []step{
			c("a1 NOOP\r\na2 authenticate plain\r\n"),
			s("a1 OK\r\n* OK still here {3}\r\n+ \r\n"),
			c("AG1lAHNlY3JldA==\r\n"),
			s("a2x OK\r\n* a2 OK\r\n+ c2Vjb25k\r\n"),
			c("AG1lAHNlY3JldA==\r\n"),
			s("a2 OK\r\n"),
			c("a3 NOOP\r\n"),
		},
		want: "C: a1 NOOP\n" +
			"C: a2 authenticate plain\n" +
			"S: a1 OK\n" +
			"S: * OK still here {3}\n" +
			"S: + ***\n" +
			"C: ***\n" +
			"S: a2x OK\n" +
			"S: * a2 OK\n" +
			"S: + ***\n" +
			"C: ***\n" +
			"S: a2 OK\n" +
			"C: a3 NOOP\n",
	}, {
		name: "pipelined commands in one Write",
		steps: []step{c("a1 NOOP\r\na2 LOGIN me pw\r\na3 APPEND INBOX " +
			literal("x LOGIN me secret\r\n") + "\r\na4 SELECT INBOX\r\n")},
		want: "C: a1 NOOP\n" +
			"C: a2 LOGIN me ***\n" +
			"C: a3 APPEND INBOX {19+}\n" +
			"C: x LOGIN me secret\n" +
			"C: \n" +
			"C: a4 SELECT INBOX\n",
	}, {
		name: "server FETCH with a literal body",
		steps: []step{
			s(fmt.Sprintf("* 1 FETCH (UID 7 BODY[] {%d}\r\n%s)\r\n", len(fetchBody), fetchBody)),
			s("* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {5}\r\nhello FLAGS (\\Seen))\r\n"),
		},
		want: "S: * 1 FETCH (UID 7 BODY[] {19}\n" +
			"S: Subject: hi\n" +
			"S: \n" +
			"S: body)\n" +
			"S: * 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {5}\n" +
			"S: hello FLAGS (\\Seen))\n",
	}, {
		name:  "status text ending in a brace announces nothing",
		steps: []step{s("* OK [ALERT] quota {5}\r\n* 3 EXISTS\r\n")},
		want:  "S: * OK [ALERT] quota {5}\nS: * 3 EXISTS\n",
	}, {
		name:  "bare LF and lone CR",
		steps: []step{c("a1 NOOP\na2 APPEND INBOX " + literal("ab\ncd\re") + "\r\n")},
		want:  "C| a1 NOOP\nC: a2 APPEND INBOX {7+}\nC| ab\nC: cd\re\n",
	}, {
		name:  "unfinished lines are written at Close, the password still hidden",
		steps: []step{s("* OK ready\r\n* 1 EXI"), c("a1 LOGIN me sec")},
		want:  "S: * OK ready\nC+ a1 LOGIN me ***\nS+ * 1 EXI\n",
	}, {
		name:  "unfinished literal announcement of a password at Close",
		steps: []step{c("a1 LOGIN me {1")},
		want:  "C+ a1 LOGIN me ***\n",
	}}
	splits := map[string]splitter{
		"whole":        whole,
		"byte by byte": byteByByte,
		"uneven":       sizes(3, 1, 7, 2, 11, 5),
	}
	for _, tt := range tests {
		for splitName, split := range splits {
			t.Run(tt.name+"/"+splitName, func(t *testing.T) {
				got, _ := trace(tt.steps, split)
				if got != tt.want {
					t.Errorf("trace:\n%s\nwant:\n%s", got, tt.want)
				}
				if _, _, err := reconstruct(got); err != nil {
					t.Errorf("malformed trace: %v", err)
				}
			})
		}
	}
}

// A line beyond maxRecord is written in pieces that put it back together.
func TestLongLineInPieces(t *testing.T) {
	var line strings.Builder
	line.WriteString("* SEARCH")
	for i := 1; line.Len() < 3*maxRecord+100; i++ {
		fmt.Fprintf(&line, " %d", i)
	}
	line.WriteString("\r\n")
	got, _ := trace([]step{s(line.String()), s("* 5 EXISTS\r\n")}, sizes(1000, 4096, 1))
	records := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(records) != 5 {
		t.Fatalf("%d records, want 4 pieces and the next line", len(records))
	}
	for i, rec := range records[:3] {
		if !strings.HasPrefix(rec, "S+ ") || len(rec) != 3+maxRecord {
			t.Errorf("record %d: %q... (%d bytes), want a full S+ piece", i, rec[:10], len(rec))
		}
	}
	if !strings.HasPrefix(records[3], "S: ") || records[4] != "S: * 5 EXISTS" {
		t.Errorf("last records %q..., %q", records[3][:10], records[4])
	}
	_, server, err := reconstruct(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := line.String() + "* 5 EXISTS\r\n"; string(server) != want {
		t.Errorf("reconstructed server stream differs (%d bytes, want %d)", len(server), len(want))
	}
}

func TestLongPasswordHidden(t *testing.T) {
	pw := strings.Repeat("x", 3*maxRecord)
	got, _ := trace([]step{c("a1 LOGIN me " + pw + "\r\n"), c("a2 LOGIN me \"" + pw + "\"\r\n")}, sizes(5000, 1, 777))
	if want := "C: a1 LOGIN me ***\nC: a2 LOGIN me ***\n"; got != want {
		t.Errorf("trace %q..., want %q", got[:min(len(got), 80)], want)
	}
}

// Literal data reaches the trace line by line as it is read, and a long
// literal line in pieces, without the stream holding more than a record.
func TestLiteralStreamed(t *testing.T) {
	fc := &fakeConn{}
	var out bytes.Buffer
	conn := Wrap(fc, &out)
	tc := conn.(*traceConn)
	read := func(data string) {
		t.Helper()
		fc.pending = []byte(data)
		buf := make([]byte, len(data))
		for len(fc.pending) > 0 {
			if _, err := conn.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(tc.t.server.text); n > maxRecord {
			t.Fatalf("stream holds %d bytes", n)
		}
	}
	size := 4*maxRecord + 20
	read(fmt.Sprintf("* 1 FETCH (BINARY[] ~{%d}\r\nline one\r\npart", size))
	if want := "S: * 1 FETCH (BINARY[] ~{" + fmt.Sprint(size) + "}\nS: line one\n"; out.String() != want {
		t.Fatalf("after the first read:\n%q\nwant\n%q", out.String(), want)
	}
	out.Reset()
	chunk := strings.Repeat("\x00\xff", maxRecord/4)
	for range 5 {
		read(chunk)
	}
	if n := strings.Count(out.String(), "\n"); n != 2 || !strings.HasPrefix(out.String(), "S+ part\x00\xff") {
		t.Fatalf("after %d literal bytes: %d records %q..., want 2 S+ pieces", 5*len(chunk), n, out.String()[:10])
	}
}

func TestDeadlinesAndAddressesPassThrough(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	var out bytes.Buffer
	conn := Wrap(a, &out)
	defer conn.Close()

	if conn.LocalAddr() != a.LocalAddr() || conn.RemoteAddr() != a.RemoteAddr() {
		t.Errorf("addresses %v %v, want %v %v", conn.LocalAddr(), conn.RemoteAddr(), a.LocalAddr(), a.RemoteAddr())
	}
	past := time.Now().Add(-time.Hour)
	if err := conn.SetReadDeadline(past); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read after its deadline: %v, want %v", err, os.ErrDeadlineExceeded)
	}
	if err := conn.SetWriteDeadline(past); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("a1 NOOP\r\n")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write after its deadline: %v, want %v", err, os.ErrDeadlineExceeded)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		line, _ := bufio.NewReader(b).ReadString('\n')
		b.Write([]byte("* echo " + line))
	}()
	if _, err := conn.Write([]byte("a2 NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || got != "* echo a2 NOOP\r\n" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := conn.SetDeadline(past); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read after SetDeadline: %v, want %v", err, os.ErrDeadlineExceeded)
	}
	if want := "C: a2 NOOP\nS: * echo a2 NOOP\n"; out.String() != want {
		t.Errorf("trace %q, want %q (nothing for the failed calls)", out.String(), want)
	}
}

func TestCloseReachesConn(t *testing.T) {
	a, b := net.Pipe()
	conn := Wrap(a, io.Discard)
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("peer read after Close: %v, want EOF", err)
	}
}

// A real exchange over a pipe, with a reader and a writer goroutine as an
// IMAP client runs them: the trace keeps the causal order, and the
// challenge read while the AUTHENTICATE Write is still in flight is hidden.
func TestConcurrentExchange(t *testing.T) {
	client, server := net.Pipe()
	var out bytes.Buffer
	conn := Wrap(client, &out)

	serverDone := make(chan error, 1)
	go func() {
		serverDone <- func() error {
			br := bufio.NewReader(server)
			for _, reply := range []string{"+ \r\n", "* CAPABILITY IMAP4rev2\r\na1 OK done\r\n", "* BYE\r\na2 OK bye\r\n"} {
				if _, err := br.ReadString('\n'); err != nil {
					return err
				}
				if _, err := server.Write([]byte(reply)); err != nil {
					return err
				}
			}
			return server.Close()
		}()
	}()

	lines := make(chan string)
	go func() {
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				close(lines)
				return
			}
			lines <- line
		}
	}()
	expect := func(want string) {
		t.Helper()
		if got := <-lines; got != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	write := func(data string) {
		t.Helper()
		if _, err := conn.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	write("a1 AUTHENTICATE PLAIN\r\n")
	expect("+ \r\n")
	write("AG1lAHNlY3JldA==\r\n")
	expect("* CAPABILITY IMAP4rev2\r\n")
	expect("a1 OK done\r\n")
	write("a2 LOGOUT\r\n")
	expect("* BYE\r\n")
	expect("a2 OK bye\r\n")
	if err := <-serverDone; err != nil {
		t.Fatal(err)
	}
	if _, ok := <-lines; ok {
		t.Fatal("read more than the server sent")
	}
	conn.Close()

	want := "C: a1 AUTHENTICATE PLAIN\n" +
		"S: + ***\n" +
		"C: ***\n" +
		"S: * CAPABILITY IMAP4rev2\n" +
		"S: a1 OK done\n" +
		"C: a2 LOGOUT\n" +
		"S: * BYE\n" +
		"S: a2 OK bye\n"
	if out.String() != want {
		t.Errorf("trace:\n%s\nwant:\n%s", out.String(), want)
	}
}

// Server bytes read while a client Write is in flight are traced after
// that Write, so the rules see the AUTHENTICATE before its challenge.
func TestServerBytesWaitForWriteInFlight(t *testing.T) {
	fc := &fakeConn{}
	var out bytes.Buffer
	conn := Wrap(fc, &out).(*traceConn)
	inner := &hookConn{fakeConn: fc}
	conn.Conn = inner
	inner.duringWrite = func() {
		fc.pending = []byte("+ c2VjcmV0\r\n")
		if _, err := conn.Read(make([]byte, 64)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Write([]byte("a1 AUTHENTICATE PLAIN\r\n")); err != nil {
		t.Fatal(err)
	}
	if want := "C: a1 AUTHENTICATE PLAIN\nS: + ***\n"; out.String() != want {
		t.Errorf("trace %q, want %q", out.String(), want)
	}
}

// Past maxDeferred, server bytes are traced ahead of the Write in flight
// rather than piling up, and every "+" line among them is hidden, in case
// that Write started an AUTHENTICATE.
func TestDeferredServerBytesCapped(t *testing.T) {
	fc := &fakeConn{}
	var out bytes.Buffer
	conn := Wrap(fc, &out).(*traceConn)
	body := strings.Repeat("x", maxDeferred/2)
	conn.Conn = &hookConn{fakeConn: fc, duringWrite: func() {
		for _, data := range []string{
			"+ c2VjcmV0\r\n",
			fmt.Sprintf("* 1 FETCH (BODY[] {%d}\r\n%s", 2*len(body), body),
			body + ")\r\n",
			"+ c2VjcmV0\r\n",
		} {
			fc.pending = []byte(data)
			buf := make([]byte, len(data))
			for len(fc.pending) > 0 {
				if _, err := conn.Read(buf); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(conn.t.deferred); n > maxDeferred {
				t.Fatalf("%d bytes deferred", n)
			}
		}
	}}
	if _, err := conn.Write([]byte("a1 AUTHENTICATE PLAIN\r\n")); err != nil {
		t.Fatal(err)
	}
	records := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if strings.Contains(out.String(), "c2VjcmV0") {
		t.Error("a challenge reached the trace")
	}
	if len(records) < 4 || records[0] != "S: + ***" ||
		records[len(records)-2] != "C: a1 AUTHENTICATE PLAIN" || records[len(records)-1] != "S: + ***" {
		t.Errorf("%d records, starting %q, ending %q", len(records), records[0], records[len(records)-2:])
	}
}

// hookConn runs duringWrite inside Write, where a concurrent Read would
// return.
type hookConn struct {
	*fakeConn
	duringWrite func()
}

func (h *hookConn) Write(p []byte) (int, error) {
	n, err := h.fakeConn.Write(p)
	if h.duringWrite != nil {
		h.duringWrite()
	}
	return n, err
}

type failingWriter struct{ writes int }

func (f *failingWriter) Write(p []byte) (int, error) {
	f.writes++
	return 0, errors.New("disk full")
}

// A failing trace writer neither fails the connection nor is retried.
func TestTraceErrorLeavesConnAlone(t *testing.T) {
	fc := &fakeConn{}
	w := &failingWriter{}
	conn := Wrap(fc, w)
	for range 3 {
		if n, err := conn.Write([]byte("a1 NOOP\r\n")); n != 9 || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if w.writes != 1 {
		t.Errorf("trace writer called %d times, want once", w.writes)
	}
	if got := fc.sent.String(); got != strings.Repeat("a1 NOOP\r\n", 3) {
		t.Errorf("conn got %q", got)
	}
}

func TestWrapNilWriter(t *testing.T) {
	fc := &fakeConn{}
	if conn := Wrap(fc, nil); conn != net.Conn(fc) {
		t.Errorf("Wrap(conn, nil) = %T, want conn itself", conn)
	}
}

func TestMarker(t *testing.T) {
	tests := []struct {
		line string
		n    int64
		ok   bool
	}{
		{"a APPEND x {5}", 5, true},
		{"a APPEND x {5+}", 5, true},
		{"a APPEND x ~{12}", 12, true},
		{"{0}", 0, true},
		{"{0000000000000000000000000007}", 7, true},
		{"{9223372036854775807}", 1<<63 - 1, true},
		{"{9223372036854775808}", 0, false},
		{"{}", 0, false},
		{"{+}", 0, false},
		{"{5} ", 0, false},
		{"{5-}", 0, false},
		{"{{5}", 5, true},
		{"5}", 0, false},
		{"{5}}", 0, false},
		{"{5\r}", 0, false},
	}
	for _, tt := range tests {
		var m marker
		for i := range len(tt.line) {
			m.add(tt.line[i])
		}
		n, ok := m.literal()
		if ok != tt.ok || ok && n != tt.n {
			t.Errorf("%q: %d, %v; want %d, %v", tt.line, n, ok, tt.n, tt.ok)
		}
	}
}
