package imaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

const (
	memoryUser     = "satchel"
	memoryPassword = "satchel-test-password"
)

// memoryCaps is what the in-memory server advertises beyond what imapserver
// always adds (SASL-IR, LITERAL-, UNSELECT, ENABLE, IDLE, UTF8=ACCEPT):
// the IMAP4rev1 extensions imapmemserver implements. CONDSTORE is not among
// them, which is what this server mode is for.
var memoryCaps = imap.CapSet{
	imap.CapIMAP4rev1:   {},
	imap.CapLiteralPlus: {},
	imap.CapUIDPlus:     {},
	imap.CapMove:        {},
	imap.CapNamespace:   {},
	imap.CapChildren:    {},
}

// StartMemory starts go-imap's in-memory server on 127.0.0.1:0 with one
// user (Server.User, Server.Password; plaintext LOGIN is allowed on
// loopback) and INBOX created. It advertises no CONDSTORE. It stops in
// t.Cleanup.
//
// Unlike Dovecot it does not create parent mailboxes implicitly;
// Server.CreateMailbox creates them explicitly for both.
func StartMemory(t testing.TB) *Server {
	t.Helper()
	return startMemory(t, nil, nil, nil)
}

// StartMemoryTLS is StartMemory with implicit TLS (as on port 993), using a
// self-signed certificate for 127.0.0.1, ::1 and localhost generated for
// this test. It returns the SHA-256 of the certificate's
// SubjectPublicKeyInfo, for pinning tests, and a pool that trusts the
// certificate. Server.Dial still returns the raw TCP connection: the caller
// does the TLS handshake.
func StartMemoryTLS(t testing.TB) (*Server, [32]byte, *x509.CertPool) {
	t.Helper()
	cert, leaf, err := selfSignedCert()
	if err != nil {
		t.Fatalf("imaptest: generate certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	s := startMemory(t,
		&tls.Config{Certificates: []tls.Certificate{cert}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, nil)
	return s, sha256.Sum256(leaf.RawSubjectPublicKeyInfo), pool
}

// startMemory starts the in-memory server; session, when not nil, wraps
// each connection's session (to add SASL mechanisms).
func startMemory(t testing.TB, serverTLS, clientTLS *tls.Config, session func(imapserver.Session) imapserver.Session) *Server {
	t.Helper()
	return serveMemory(t, newMemoryUser(t), serverTLS, clientTLS, session)
}

// newMemoryUser returns the in-memory server's one user, with INBOX.
func newMemoryUser(t testing.TB) *imapmemserver.User {
	t.Helper()
	user := imapmemserver.NewUser(memoryUser, memoryPassword)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatalf("imaptest: create INBOX: %v", err)
	}
	return user
}

// serveMemory is startMemory for a given user, so that a session wrapper
// can reach the user's mailboxes directly (see StartMemoryWith).
func serveMemory(t testing.TB, user *imapmemserver.User, serverTLS, clientTLS *tls.Config, session func(imapserver.Session) imapserver.Session) *Server {
	t.Helper()
	mem := imapmemserver.New()
	mem.AddUser(user)

	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			if session != nil {
				return session(mem.NewSession()), nil, nil
			}
			return mem.NewSession(), nil, nil
		},
		Caps:         memoryCaps,
		InsecureAuth: true,
		// Connection errors after a test has ended are expected; the
		// default logger would print them into the test output.
		Logger: log.New(io.Discard, "", 0),
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("imaptest: listen: %v", err)
	}
	tracked := &trackingListener{Listener: ln, conns: make(map[*trackedConn]struct{})}
	var serveLn net.Listener = tracked
	if serverTLS != nil {
		serveLn = tls.NewListener(tracked, serverTLS)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(serveLn)
	}()

	s := newServer(t, "memory", ln.Addr().(*net.TCPAddr))
	s.User = memoryUser
	s.Password = memoryPassword
	s.clientTLS = clientTLS
	t.Cleanup(func() {
		s.closeClient()
		// imapserver.Server.Close does not wait for connection
		// goroutines, so the listener and connections are closed here and
		// each goroutine is waited for through its connection's final
		// Close.
		ln.Close()
		<-served
		if err := tracked.closeAll(stopTimeout); err != nil {
			t.Errorf("imaptest: stop memory server: %v", err)
		}
	})
	return s
}

// trackingListener records accepted connections so that cleanup can close
// them and wait until imapserver's goroutine for each has finished with it.
type trackingListener struct {
	net.Listener

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, closed: make(chan struct{})}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

// closeAll closes the underlying connections, then waits for the server
// goroutines to close them too: imapserver closes a connection as the last
// step of its goroutine, so that Close marks the goroutine as finishing.
// Closing the raw connection directly, not through trackedConn, keeps
// closeAll's own Close from counting.
func (l *trackingListener) closeAll(timeout time.Duration) error {
	l.mu.Lock()
	conns := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Conn.Close()
	}
	deadline := time.After(timeout)
	for _, c := range conns {
		select {
		case <-c.closed:
		case <-deadline:
			return errors.New("a connection goroutine did not finish")
		}
	}
	return nil
}

type trackedConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

// selfSignedCert makes an ECDSA P-256 certificate valid for loopback.
// P-256 rather than RSA keeps key generation in the microseconds.
func selfSignedCert() (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"satchel imaptest"}, CommonName: "127.0.0.1"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("parse generated certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}
