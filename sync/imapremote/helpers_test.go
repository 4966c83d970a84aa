package imapremote

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"maps"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

// testUser and testPassword are the credentials of the servers built by
// startServer. The password is distinctive so that a trace holding it is
// found by a plain substring search.
const (
	testUser     = "satchel"
	testPassword = "Hunter2-only-in-tests"
)

// traceBuffer collects a protocol trace. The tracer writes from the
// goroutine of whichever side moved bytes, the test reads from its own.
type traceBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (t *traceBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.Write(p)
}

func (t *traceBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}

// clientLines returns the client records ("C: ...") of a trace, without
// their "C: " prefix.
func clientLines(trace string) []string {
	var out []string
	for line := range strings.Lines(trace) {
		if rest, ok := strings.CutPrefix(line, "C: "); ok {
			out = append(out, strings.TrimSuffix(rest, "\n"))
		}
	}
	return out
}

// commandLine returns the first client line whose command (the word after
// the tag) is cmd, or "" when there is none.
func commandLine(trace, cmd string) string {
	for _, l := range clientLines(trace) {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.EqualFold(f[1], cmd) {
			return l
		}
	}
	return ""
}

// noPassword is an Options.Password for servers that must not ask for one.
func noPassword(t *testing.T) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		t.Errorf("Password was called")
		return "", errors.New("no password in this test")
	}
}

func fixedPassword(p string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return p, nil }
}

// mustDial calls Dial and closes the client at the end of the test.
func mustDial(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := Dial(t.Context(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialFails calls Dial, which must fail, and returns its error. A Client
// it returns anyway is closed and ends the test with success as the
// message.
func dialFails(t *testing.T, opts Options, success string) error {
	t.Helper()
	c, err := Dial(t.Context(), opts)
	if err == nil {
		c.Close()
		t.Fatal(success)
	}
	return err
}

// dialAsync runs Dial on its own goroutine and delivers its error; a
// Client it returns is closed at once.
func dialAsync(ctx context.Context, opts Options) <-chan error {
	result := make(chan error, 1)
	go func() {
		c, err := Dial(ctx, opts)
		if c != nil {
			c.Close()
		}
		result <- err
	}()
	return result
}

// bound keeps a broken call from hanging a test; it is never the outcome
// under test.
const bound = 30 * time.Second

// await returns what result delivers, or ends the test with stuck as the
// message when nothing comes within bound.
func await(t *testing.T, result <-chan error, stuck string) error {
	t.Helper()
	select {
	case err := <-result:
		return err
	case <-time.After(bound):
		t.Fatal(stuck)
		return nil
	}
}

// cancelAt waits until reached is closed, then cancels and returns what
// result delivers. call names the call under test: it must neither return
// before reached nor fail to return after the cancel.
func cancelAt(t *testing.T, call string, reached <-chan struct{}, cancel context.CancelFunc, result <-chan error) error {
	t.Helper()
	select {
	case <-reached:
	case err := <-result:
		t.Fatalf("%s returned before the point where it is cancelled: %v", call, err)
	case <-time.After(bound):
		t.Fatalf("%s never reached the point where it is cancelled", call)
	}
	cancel()
	return await(t, result, call+" did not return after its context was cancelled")
}

// connectOptions are the Options for an imaptest server without TLS (both
// kinds listen on loopback), with its password when it asks for one.
func connectOptions(t *testing.T, s *imaptest.Server, trace io.Writer) Options {
	opts := Options{Host: s.Host, Port: s.Port, TLS: TLSNone, User: s.User, Auth: AuthPlain, Trace: trace}
	if s.Password != "" {
		opts.Password = fixedPassword(s.Password)
	} else {
		opts.Password = noPassword(t)
	}
	return opts
}

// connect dials an imaptest server with connectOptions.
func connect(t *testing.T, s *imaptest.Server, trace io.Writer) *Client {
	t.Helper()
	return mustDial(t, connectOptions(t, s, trace))
}

// serverConfig describes a go-imap in-memory server built by a test, for
// what imaptest does not offer: STARTTLS, a PREAUTH greeting, another
// listening address.
type serverConfig struct {
	listen       string      // "127.0.0.1:0" when empty
	startTLS     *tls.Config // offer STARTTLS with this configuration
	insecureAuth bool        // allow authentication without TLS
	preAuth      bool        // greet with PREAUTH as testUser
}

// testServer is a running server built by startServer.
type testServer struct {
	host string
	port int

	mu     sync.Mutex
	logins []bool // one per successful login: whether it came over TLS
}

func (s *testServer) loginsOverTLS() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bool(nil), s.logins...)
}

func startServer(t *testing.T, cfg serverConfig) *testServer {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(testUser, testPassword)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatalf("create INBOX: %v", err)
	}
	mem.AddUser(user)

	ts := &testServer{}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(conn *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess := mem.NewSession()
			if cfg.preAuth {
				if err := sess.Login(testUser, testPassword); err != nil {
					return nil, nil, err
				}
				return sess, &imapserver.GreetingData{PreAuth: true}, nil
			}
			return &recordingSession{Session: sess, conn: conn, srv: ts}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		TLSConfig:    cfg.startTLS,
		InsecureAuth: cfg.insecureAuth,
		Logger:       log.New(io.Discard, "", 0),
	})
	listen := cfg.listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("listen on %s: %v", listen, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	addr := ln.Addr().(*net.TCPAddr)
	ts.host, ts.port = addr.IP.String(), addr.Port
	return ts
}

// recordingSession notes, for each successful LOGIN or AUTHENTICATE PLAIN
// (both end in Session.Login), whether the connection was TLS by then.
type recordingSession struct {
	imapserver.Session
	conn *imapserver.Conn
	srv  *testServer
}

func (s *recordingSession) Login(user, pass string) error {
	if err := s.Session.Login(user, pass); err != nil {
		return err
	}
	_, isTLS := s.conn.NetConn().(*tls.Conn)
	s.srv.mu.Lock()
	s.srv.logins = append(s.srv.logins, isTLS)
	s.srv.mu.Unlock()
	return nil
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, pool
}

// scriptedServer accepts one connection on loopback and runs serve on it;
// the connection is closed when serve returns or the test ends.
func scriptedServer(t *testing.T, serve func(net.Conn)) (host string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		serve(c)
		c.Close()
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	addr := ln.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port
}

// commandFunc answers one command for answerCommands: tag is the
// command's tag, line the whole line as the client sent it. It returns
// false to end the conversation.
type commandFunc func(c net.Conn, tag, line string) bool

// answerCommands writes greeting, unless it is empty, then answers each
// command line with the entry of answers under its command word (upper
// case), and a command without one with BAD. It returns when the
// connection ends, a line holds no command, or an answer returns false.
func answerCommands(c net.Conn, greeting string, answers map[string]commandFunc) {
	if greeting != "" {
		io.WriteString(c, greeting+"\r\n")
	}
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return
		}
		answer, ok := answers[strings.ToUpper(f[1])]
		if !ok {
			io.WriteString(c, f[0]+" BAD unexpected\r\n")
			continue
		}
		if !answer(c, f[0], line) {
			return
		}
	}
}

// answerCapability answers CAPABILITY with IMAP4rev1 alone.
func answerCapability(c net.Conn, tag, _ string) bool {
	io.WriteString(c, "* CAPABILITY IMAP4rev1\r\n"+tag+" OK done\r\n")
	return true
}

// preauthServer serves one connection on loopback with answerCommands: a
// PREAUTH greeting, CAPABILITY answered by answerCapability unless answers
// holds another, and answers. It returns the Options that reach it.
func preauthServer(t *testing.T, answers map[string]commandFunc) Options {
	t.Helper()
	all := map[string]commandFunc{"CAPABILITY": answerCapability}
	maps.Copy(all, answers)
	host, port := scriptedServer(t, func(c net.Conn) {
		answerCommands(c, "* PREAUTH ready", all)
	})
	return preauthOptions(t, host, port)
}

// preauthOptions are the Options for a scripted server on loopback that
// greets with PREAUTH: no TLS, and no password to ask for.
func preauthOptions(t *testing.T, host string, port int) Options {
	return Options{Host: host, Port: port, TLS: TLSNone, User: testUser, Password: noPassword(t)}
}
