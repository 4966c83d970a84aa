package imapremote

import (
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

// connect dials an imaptest server without TLS (both kinds listen on
// loopback), logging in when the server asks for it.
func connect(t *testing.T, s *imaptest.Server, trace io.Writer) *Client {
	t.Helper()
	opts := Options{Host: s.Host, Port: s.Port, TLS: TLSNone, User: s.User, Auth: AuthPlain, Trace: trace}
	if s.Password != "" {
		opts.Password = fixedPassword(s.Password)
	} else {
		opts.Password = noPassword(t)
	}
	return mustDial(t, opts)
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
