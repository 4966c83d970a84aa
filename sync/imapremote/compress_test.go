package imapremote

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// compressServers are the real servers that offer COMPRESS=DEFLATE.
var compressServers = []struct {
	name  string
	start func(t *testing.T) *imaptest.Server
}{
	{"dovecot", func(t *testing.T) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{Compress: true})
	}},
	{"cyrus", func(t *testing.T) *imaptest.Server {
		return imaptest.StartCyrus(t, imaptest.CyrusOptions{AltNamespace: true})
	}},
}

// afterLine returns what follows the first line of b that starts with
// prefix, or nil when there is none.
func afterLine(b []byte, prefix string) []byte {
	i := bytes.Index(b, []byte(prefix))
	if i < 0 {
		return nil
	}
	j := bytes.IndexByte(b[i:], '\n')
	if j < 0 {
		return nil
	}
	return b[i+j+1:]
}

// syncFlush is the empty stored block a sync flush ends with (RFC 1951
// §3.2.4): the mark of Z_SYNC_FLUSH and of flate.Writer.Flush.
var syncFlush = []byte{0, 0, 0xff, 0xff}

// TestCompressScenario runs a whole session over a compressed connection
// on each real server: select, fetch bodies (one of 2 MB), append with
// literals, store, IDLE with a change arriving and DONE, and a command
// after it. The bytes on the wire must be compressed both ways while the
// trace shows plain IMAP.
func TestCompressScenario(t *testing.T) {
	for _, sv := range compressServers {
		t.Run(sv.name, func(t *testing.T) {
			t.Parallel()
			s := sv.start(t)
			big := testBigMessage(2 << 20)
			small := testMessage(1)
			s.Append("INBOX", big, nil, time.Time{})
			s.Append("INBOX", small, nil, time.Time{})

			tap := newWireTap(t, s.Addr)
			trace := &traceBuffer{}
			opts := connectOptions(t, s, trace)
			opts.Host, opts.Port = tap.Host, tap.Port
			c := mustDial(t, opts)
			if !c.Compressed() {
				t.Fatalf("not compressed; capabilities %v", c.Capabilities())
			}
			ctx := t.Context()

			if _, err := c.Select(ctx, "INBOX"); err != nil {
				t.Fatalf("Select: %v", err)
			}
			msgs, err := c.Scan(ctx)
			if err != nil || len(msgs) != 2 {
				t.Fatalf("Scan: %d messages, %v", len(msgs), err)
			}
			for i, want := range [][]byte{big, small} {
				got, err := fetchBody(ctx, c, msgs[i])
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("body of UID %d: %d bytes, want %d; %v", msgs[i].UID, len(got), len(want), err)
				}
			}

			// Uploads: literals, the largest spanning many writes.
			bodies := [][]byte{testMessage(10), testBigMessage(300 << 10), testMessage(11)}
			out := make([]mail.Outgoing, len(bodies))
			for i, b := range bodies {
				out[i] = mail.Outgoing{Flags: writeFlags(`\Seen`), Size: int64(len(b)),
					Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
			}
			res, err := c.AppendBatch(ctx, "INBOX", out)
			if err != nil {
				t.Fatalf("AppendBatch: %v", err)
			}
			for i, r := range res {
				if !r.Done {
					t.Fatalf("message %d not appended: %+v", i, r)
				}
			}

			stored, err := c.Store(ctx, []FlagChange{{UID: msgs[1].UID, Add: writeFlags(`\Flagged`)}})
			if err != nil || !stored[msgs[1].UID].Flags.Has(`\Flagged`) {
				t.Fatalf("Store: %+v, %v", stored, err)
			}

			// IDLE: another session's APPEND must arrive through the
			// compressed stream, and DONE must reach the server. What
			// the APPENDs above reported is taken first.
			if _, err := c.WaitChange(ctx, "INBOX", time.Millisecond); err != nil {
				t.Fatalf("WaitChange: %v", err)
			}
			got := make(chan Change, 1)
			idleErr := make(chan error, 1)
			before := strings.Count(trace.String(), "S: + ")
			go func() {
				ch, err := c.WaitChange(ctx, "INBOX", time.Minute)
				got <- ch
				idleErr <- err
			}()
			for deadline := time.Now().Add(bound); strings.Count(trace.String(), "S: + ") == before; {
				if time.Now().After(deadline) {
					t.Fatalf("IDLE was not accepted; trace ends:\n%s", tail(trace.String()))
				}
				time.Sleep(10 * time.Millisecond)
			}
			s.Append("INBOX", testMessage(12), nil, time.Time{})
			if err := await(t, idleErr, "WaitChange did not return after the APPEND"); err != nil {
				t.Fatalf("WaitChange: %v", err)
			}
			if ch := <-got; ch&ChangeExists == 0 {
				t.Fatalf("WaitChange reported %b, want the new message", ch)
			}
			all, err := c.UIDs(ctx)
			if err != nil || len(all) != 6 {
				t.Fatalf("after IDLE: %d UIDs, %v; want 6", len(all), err)
			}
			c.Close()

			tr := trace.String()
			for _, want := range []string{"C: Z1 COMPRESS DEFLATE\n", "C: DONE\n", "S: 00000017 0123456789"} {
				if !strings.Contains(tr, want) {
					t.Errorf("trace lacks %q", want)
				}
			}
			up, down := tap.bytes()
			zUp, zDown := afterLine(up, "Z1 COMPRESS DEFLATE"), afterLine(down, "Z1 OK")
			if zUp == nil || zDown == nil {
				t.Fatalf("no COMPRESS exchange on the wire")
			}
			for _, plain := range []string{"FETCH", "APPEND", "STORE", "IDLE", "DONE", "0123456789"} {
				if bytes.Contains(zUp, []byte(plain)) || bytes.Contains(zDown, []byte(plain)) {
					t.Errorf("%q crossed the wire uncompressed", plain)
				}
			}
			// The 2 MB body is repetitive: compressed, it is a fraction.
			if len(zDown) > len(big)/3 {
				t.Errorf("%d bytes came from the server for a %d-byte body", len(zDown), len(big))
			}
			if len(zUp) > (300<<10)/3 {
				t.Errorf("%d bytes went to the server for a 300 KB upload", len(zUp))
			}
			// Go's flate reader returns data only at a sync flush's empty
			// stored block (or the window's end): a peer flushing with
			// Z_PARTIAL_FLUSH would leave the last response in it. These
			// servers flush with Z_SYNC_FLUSH. (Not checked at the very
			// end: the answer to a LOGOUT not waited for may be cut.)
			if n := bytes.Count(zDown, syncFlush); n < 5 {
				t.Errorf("the server's stream holds %d sync flushes, want one per answer", n)
			}
		})
	}
}

func tail(s string) string { return s[max(0, len(s)-2000):] }

// TestCompressEveryConnection: each connection negotiates anew, as every
// reconnect of watch mode does, and imap.compress: off sends no COMPRESS.
func TestCompressEveryConnection(t *testing.T) {
	s := imaptest.StartDovecot(t, imaptest.DovecotOptions{Compress: true})
	s.Append("INBOX", testMessage(1), nil, time.Time{})
	tap := newWireTap(t, s.Addr)
	opts := connectOptions(t, s, nil)
	opts.Host, opts.Port = tap.Host, tap.Port
	for range 2 {
		c := mustDial(t, opts)
		if !c.Compressed() {
			t.Fatal("a second connection is not compressed")
		}
		if _, err := c.Select(t.Context(), "INBOX"); err != nil {
			t.Fatalf("Select: %v", err)
		}
		c.Close()
	}
	up, _ := tap.bytes()
	if n := bytes.Count(up, []byte("Z1 COMPRESS DEFLATE\r\n")); n != 2 {
		t.Fatalf("COMPRESS sent %d times on 2 connections", n)
	}

	off := newWireTap(t, s.Addr)
	trace := &traceBuffer{}
	opts = connectOptions(t, s, trace)
	opts.Host, opts.Port, opts.Compress = off.Host, off.Port, CompressOff
	c := mustDial(t, opts)
	if c.Compressed() {
		t.Fatal("compressed with imap.compress: off")
	}
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Fatalf("Select: %v", err)
	}
	c.Close()
	up, down := off.bytes()
	if bytes.Contains(up, []byte("COMPRESS")) || strings.Contains(trace.String(), "COMPRESS DEFLATE") {
		t.Fatal("COMPRESS sent with imap.compress: off")
	}
	if !bytes.Contains(down, []byte("SELECT")) && !bytes.Contains(down, []byte("Select completed")) {
		t.Fatal("the uncompressed session's replies are not on the wire as text")
	}
}

// TestCompressOverTLS: compression sits above TLS (RFC 4978 §3: compress,
// then encrypt), with implicit TLS and a PREAUTH session, and with
// STARTTLS and each password login. A front on loopback terminates TLS
// and relays plain IMAP to the real server.
func TestCompressOverTLS(t *testing.T) {
	t.Run("implicit preauth", func(t *testing.T) {
		t.Parallel()
		s := imaptest.StartDovecot(t, imaptest.DovecotOptions{Compress: true})
		s.Append("INBOX", testMessage(1), nil, time.Time{})
		host, port, pool := tlsFront(t, s.Addr, false)
		trace := &traceBuffer{}
		opts := connectOptions(t, s, trace)
		opts.Host, opts.Port, opts.TLS, opts.RootCAs = host, port, TLSImplicit, pool
		checkCompressedSession(t, opts, trace)
	})
	for _, auth := range []string{AuthPlain, AuthLogin} {
		t.Run("starttls "+auth, func(t *testing.T) {
			t.Parallel()
			s := imaptest.StartCyrus(t, imaptest.CyrusOptions{AltNamespace: true})
			s.Append("INBOX", testMessage(1), nil, time.Time{})
			host, port, pool := tlsFront(t, s.Addr, true)
			trace := &traceBuffer{}
			opts := connectOptions(t, s, trace)
			opts.Host, opts.Port, opts.TLS, opts.RootCAs, opts.Auth = host, port, TLSStartTLS, pool, auth
			checkCompressedSession(t, opts, trace)
			if strings.Contains(trace.String(), s.Password) {
				t.Error("the password is in the trace")
			}
		})
	}
}

func checkCompressedSession(t *testing.T, opts Options, trace *traceBuffer) {
	t.Helper()
	c := mustDial(t, opts)
	if !c.Compressed() {
		t.Fatalf("not compressed; trace:\n%s", trace)
	}
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Fatalf("Select: %v", err)
	}
	msgs, err := c.Scan(t.Context())
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Scan: %d, %v", len(msgs), err)
	}
	if b, err := fetchBody(t.Context(), c, msgs[0]); err != nil || !bytes.Equal(b, testMessage(1)) {
		t.Fatalf("body: %q, %v", b, err)
	}
	if !strings.Contains(trace.String(), "S: Subject: message 1") {
		t.Errorf("the trace does not show the body in plain text")
	}
}

// tlsFront listens with TLS on loopback and relays each connection to
// target in plain text. With startTLS it first plays the plaintext part
// of STARTTLS itself (RFC 9051 §6.2.1) and hides target's greeting, which
// Dial replaces by one of its own after the upgrade.
func tlsFront(t *testing.T, target string, startTLS bool) (string, int, *x509.CertPool) {
	t.Helper()
	cert, _, pool := selfSigned(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	host, port := scriptedServer(t, func(c net.Conn) {
		if startTLS {
			io.WriteString(c, "* OK [CAPABILITY IMAP4rev1 STARTTLS] front ready\r\n")
			r := newLineReader(c)
			for _, tag := range []string{"S0", "S1"} {
				if _, err := r.line(); err != nil {
					return
				}
				if tag == "S0" {
					io.WriteString(c, "* CAPABILITY IMAP4rev1 STARTTLS\r\nS0 OK done\r\n")
				} else {
					io.WriteString(c, "S1 OK begin TLS\r\n")
				}
			}
		}
		tc := tls.Server(c, cfg)
		defer tc.Close()
		if err := tc.Handshake(); err != nil {
			return
		}
		back, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer back.Close()
		if startTLS {
			if _, err := newLineReader(back).line(); err != nil {
				return
			}
		}
		done := make(chan struct{}, 2)
		go func() { io.Copy(back, tc); back.Close(); done <- struct{}{} }()
		go func() { io.Copy(tc, back); tc.Close(); done <- struct{}{} }()
		<-done
		<-done
	})
	return host, port, pool
}

// lineReader reads lines a byte at a time, so that nothing after the line
// is consumed: the bytes that follow belong to TLS or to the relay.
type lineReader struct{ c net.Conn }

func newLineReader(c net.Conn) *lineReader { return &lineReader{c} }

func (r *lineReader) line() (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := io.ReadFull(r.c, one); err != nil {
			return "", err
		}
		b = append(b, one[0])
		if one[0] == '\n' {
			return string(b), nil
		}
	}
}

// TestCompressPipelined: pipelined commands complete over a compressed
// connection; none waits in the compressor for the next write.
func TestCompressPipelined(t *testing.T) {
	s := imaptest.StartDovecot(t, imaptest.DovecotOptions{Compress: true})
	const boxes = 40
	for i := range boxes {
		s.CreateMailbox(fmt.Sprintf("Box%02d", i))
	}
	c := connect(t, s, nil)
	if !c.Compressed() {
		t.Fatal("not compressed")
	}
	const n = 200
	out := make([]mail.Outgoing, n)
	for i := range out {
		b := testMessage(100 + i)
		out[i] = mail.Outgoing{Size: int64(len(b)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
	}
	result := make(chan error, 1)
	go func() {
		res, err := c.AppendBatch(t.Context(), "Box07", out)
		for i, r := range res {
			if err == nil && !r.Done {
				err = fmt.Errorf("message %d not appended: %+v", i, r)
			}
		}
		result <- err
	}()
	if err := await(t, result, "pipelined APPENDs stalled"); err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
	var listed []mail.RemoteMailbox
	go func() {
		var err error
		listed, err = c.ListStatus(t.Context())
		result <- err
	}()
	if err := await(t, result, "LIST-STATUS stalled"); err != nil {
		t.Fatalf("ListStatus: %v", err)
	}
	if len(listed) != boxes+1 {
		t.Fatalf("ListStatus: %d mailboxes, want %d", len(listed), boxes+1)
	}
	if got := len(s.Messages("Box07")); got != n {
		t.Fatalf("Box07 holds %d messages, want %d", got, n)
	}
}

// TestCompressCutMidStream: the connection ends in the middle of a
// compressed body; the fetch fails as a transient error and does not
// hang.
func TestCompressCutMidStream(t *testing.T) {
	s := imaptest.StartDovecot(t, imaptest.DovecotOptions{Compress: true})
	s.Append("INBOX", testBigMessage(2<<20), nil, time.Time{})
	p := imaptest.NewProxy(t, s.Addr)
	opts := connectOptions(t, s, nil)
	opts.Host, opts.Port = p.Host, p.Port
	c := mustDial(t, opts)
	if !c.Compressed() {
		t.Fatal("not compressed")
	}
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Fatalf("Select: %v", err)
	}
	msgs, err := c.Scan(t.Context())
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Scan: %d, %v", len(msgs), err)
	}
	p.CutAfter(true, 20<<10)
	result := make(chan error, 1)
	go func() {
		_, err := fetchBody(t.Context(), c, msgs[0])
		result <- err
	}()
	err = await(t, result, "the fetch hung after the cut")
	if err == nil {
		t.Fatal("the fetch succeeded through a cut connection")
	}
	if !errors.Is(err, mail.ErrTransient) {
		t.Fatalf("error %v is not transient", err)
	}
}

// compressScript answers COMPRESS with reply (raw, after the tag), and
// LIST with INBOX.
func compressScript(reply string) imaptest.Script {
	return func(tag, command, args string, w *imaptest.ScriptWriter) {
		switch command {
		case "COMPRESS":
			w.Raw(tag + " " + reply)
		case "LIST":
			w.Line(`* LIST () "/" INBOX`)
			w.OK("LIST completed")
		}
	}
}

// TestCompressBrokenServer: a server that agrees to compress and then
// sends something that is not DEFLATE gives a clear error, not a hang.
func TestCompressBrokenServer(t *testing.T) {
	for _, tc := range []struct{ name, reply string }{
		{"garbage after OK", "OK DEFLATE active\r\n\xff\xfe\xfd garbage\r\n"},
		{"plain text after OK", "OK DEFLATE active\r\n* OK [ALERT] still talking plain\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := imaptest.StartScripted(t, imaptest.ScriptOptions{
				Capabilities: []string{"IMAP4rev1", "COMPRESS=DEFLATE"},
				Script:       compressScript(tc.reply),
			})
			opts := preauthOptions(t, s.Host, s.Port)
			result := make(chan error, 1)
			go func() {
				c, err := Dial(t.Context(), opts)
				if err == nil {
					_, err = c.List(t.Context())
					c.Close()
				}
				result <- err
			}()
			err := await(t, result, "the session hung on a broken compressed stream")
			if err == nil {
				t.Fatal("no error from a server whose compressed data is corrupt")
			}
			if !strings.Contains(err.Error(), ErrCompression.Error()) {
				t.Fatalf("error %q does not say the compressed data is corrupt", err)
			}
		})
	}
}

// TestCompressRefused: NO [COMPRESSIONACTIVE] (RFC 4978 §3) and any other
// refusal leave the connection uncompressed and usable; a refusal other
// than COMPRESSIONACTIVE is logged once per server.
func TestCompressRefused(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		logged      int
	}{
		{"compression active", "NO [COMPRESSIONACTIVE] DEFLATE active via TLS\r\n", 0},
		{"no", "NO not today\r\n", 1},
		{"bad", "BAD unknown command\r\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := imaptest.StartScripted(t, imaptest.ScriptOptions{
				Capabilities: []string{"IMAP4rev1", "COMPRESS=DEFLATE"},
				Script:       compressScript(tc.reply),
			})
			var logs traceBuffer
			opts := preauthOptions(t, s.Host, s.Port)
			opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			for range 2 {
				c := mustDial(t, opts)
				if c.Compressed() {
					t.Fatal("compressed after a refusal")
				}
				if l, err := c.List(t.Context()); err != nil || len(l) != 1 {
					t.Fatalf("List after the refusal: %v, %v", l, err)
				}
				c.Close()
			}
			if got := strings.Count(logs.String(), "refused COMPRESS"); got != tc.logged {
				t.Fatalf("refusal logged %d times over 2 connections, want %d:\n%s", got, tc.logged, logs.String())
			}
		})
	}
}

// TestCompressReplyFraming: the reply to COMPRESS is found only as a
// tagged line of its own, wherever the reads split the stream, and the
// switch to DEFLATE comes exactly after its CRLF; what the server said
// before passes to go-imap unchanged and the reply does not.
func TestCompressReplyFraming(t *testing.T) {
	lit := "Z1 OK not the reply\r\n"
	before := "* OK hello\r\n* 1 FETCH (BODY[] {" + fmt.Sprint(len(lit)) + "}\r\n" + lit + ")\r\n"
	reply := "Z1 OK DEFLATE active\r\n"
	after := "* 2 EXISTS\r\nT1 OK done\r\n"
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestSpeed)
	fw.Write([]byte(after))
	fw.Flush()
	wire := append([]byte(before+reply), z.Bytes()...)

	for _, chunk := range []int{1, 2, 3, 7, 64, len(wire)} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			d := newDeflateConn(client)
			g := &compressGate{Conn: d, d: d}
			started := make(chan error, 1)
			go func() {
				r, err := g.start(context.Background())
				if err == nil && r.status != "OK" {
					err = fmt.Errorf("status %q", r.status)
				}
				started <- err
			}()
			go func() {
				cmd := make([]byte, len("Z1 COMPRESS DEFLATE\r\n"))
				io.ReadFull(server, cmd)
				for b := wire; len(b) > 0; b = b[min(chunk, len(b)):] {
					server.Write(b[:min(chunk, len(b))])
				}
			}()
			want := before + after
			got := make([]byte, len(want))
			if _, err := io.ReadFull(g, got); err != nil {
				t.Fatalf("read: %v (got %q)", err, got)
			}
			if string(got) != want {
				t.Fatalf("go-imap would read\n%q\nwant\n%q", got, want)
			}
			if err := <-started; err != nil {
				t.Fatalf("start: %v", err)
			}
			if !d.compressed() {
				t.Fatal("not compressed after the OK")
			}
		})
	}
}
