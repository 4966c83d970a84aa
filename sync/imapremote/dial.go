// Package imapremote is satchel's one place that speaks IMAP. It connects
// (TLS, STARTTLS, authentication, COMPRESS=DEFLATE), and turns go-imap's
// types into satchel's own (package mail): nothing outside this package
// sees a go-imap type or a sequence number.
//
// It must not import the sync engine, the index or the Maildir layer: the
// engine defines the interface this package satisfies.
package imapremote

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/satchel-mail/satchel/sync/imapremote/qresync"
	"github.com/satchel-mail/satchel/sync/imapremote/wiretrace"
	"github.com/satchel-mail/satchel/sync/mail"
)

// TLS modes of Options.TLS.
const (
	TLSImplicit = "implicit"
	TLSStartTLS = "starttls"
	TLSNone     = "none"
)

// Auth methods of Options.Auth.
const (
	AuthPlain = "plain" // SASL PLAIN, or the LOGIN command when PLAIN is not offered
	AuthLogin = "login" // the LOGIN command
)

// Options says how to reach and authenticate to a server.
type Options struct {
	Host string
	Port int
	TLS  string
	// Fingerprint, when set, pins the SHA-256 of the server certificate's
	// SubjectPublicKeyInfo; the pin replaces the CA check.
	Fingerprint []byte
	// RootCAs overrides the system roots (tests).
	RootCAs *x509.CertPool
	User    string
	Auth    string
	// Password is called only when the server asks for authentication
	// (not for a PREAUTH session).
	Password func(ctx context.Context) (string, error)
	// Token returns an OAuth 2.0 access token for AuthXOAuth2 and
	// AuthOAuthBearer. It is called once per login, only when the server
	// asks for authentication and offers the mechanism.
	Token func(ctx context.Context) (string, error)
	// Trace receives the protocol exchange, redacted; nil for none.
	Trace io.Writer
	// DialTimeout bounds the TCP connect (default 30 s).
	DialTimeout time.Duration
	// Timeout bounds the server's silence while satchel waits for it:
	// during Dial (TLS handshake, greeting, login) and during every call
	// of the Client, a connection on which nothing arrives for Timeout is
	// closed and the call fails with ErrTimeout. An idle connection with
	// no call pending never times out. 0 means DefaultTimeout.
	Timeout time.Duration
	// LargeMessage: FetchBodies fetches a message whose known size is
	// above it in parts (see FetchBodies). 0 means DefaultLargeMessage.
	LargeMessage int64
	Logger       *slog.Logger
	// NoQResync keeps to CONDSTORE even when the server offers QRESYNC.
	NoQResync bool
	// Compress is CompressAuto ("" too) to compress the connection with
	// COMPRESS=DEFLATE (RFC 4978) whenever the server offers it, or
	// CompressOff never to.
	Compress string
	// Now is the clock Settle reads (default time.Now).
	Now func() time.Time
}

// capObjectID is RFC 8474's capability (§3); go-imap has no name for it.
const capObjectID = imap.Cap("OBJECTID")

// Errors callers branch on.
var (
	// ErrAuth: the server refused the credentials. Permanent: retrying
	// with the same password cannot help.
	ErrAuth = errors.New("authentication failed")
	// ErrConnect: the server could not be reached or the TLS handshake
	// failed. When a retry may succeed (the connection was refused, reset
	// or closed, the server stopped answering, greeted with BYE or said
	// [UNAVAILABLE]), the error is also mail.ErrTransient.
	ErrConnect = errors.New("cannot connect")
	// ErrPlaintext: the connection would send a password unencrypted.
	ErrPlaintext = errors.New("refusing to send a password without TLS")
)

// Dial connects and authenticates. The returned Client must be closed.
// Cancelling ctx during Dial aborts it; after Dial returns, each call
// takes its own ctx. An authentication failure (ErrAuth) is permanent;
// errors.Is(err, mail.ErrTransient) says when trying again may help.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	addr := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
	timeout := opts.DialTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	tcp, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		err = ctxErr(ctx, err)
		if ctx.Err() == nil && transientNetErr(err) {
			err = transient(err)
		}
		return nil, fmt.Errorf("%w to %s: %w", ErrConnect, addr, err)
	}
	// The connection is closed if ctx ends before Dial returns; go-imap
	// takes no context.
	stop := context.AfterFunc(ctx, func() { tcp.Close() })
	defer stop()
	// From here on every wait for the server is bounded by Timeout: the
	// TLS handshake and the greeting (go-imap gives its own greeting 30 s,
	// but not STARTTLS's, which is read before it) as much as any reply.
	raw := newWatchdog(tcp, opts.Timeout)
	defer raw.arm()()

	switch opts.Compress {
	case "", CompressAuto, CompressOff:
	default:
		raw.Close()
		return nil, fmt.Errorf("unknown compress mode %q", opts.Compress)
	}
	transport, greeting, err := secure(ctx, raw, opts)
	if err != nil {
		raw.Close()
		return nil, err
	}
	// Compression sits right on the transport and the trace right above
	// it, so that --trace shows the protocol uncompressed (see
	// compressGate). The QRESYNC extension sits between the trace and
	// go-imap, so that --trace records what really crossed the socket.
	z := newDeflateConn(transport)
	var conn net.Conn = z
	if opts.Trace != nil {
		conn = wiretrace.Wrap(z, opts.Trace)
	}
	gate := &compressGate{Conn: conn, d: z}
	conn = gate
	if greeting != nil {
		conn = &greetingConn{Conn: conn, pending: greeting}
	}
	q := qresync.Wrap(conn)
	col := &fetchCollector{}
	sig := newChangeSignal()
	q.OnVanished(func() { sig.note(ChangeExpunge) })
	lp := newLiteralPlus(q)
	ic := imapclient.New(lp, &imapclient.Options{
		UnilateralDataHandler: sig.handler(col.handle),
	})
	if err := ic.WaitGreeting(); err != nil {
		var ierr *imap.Error
		switch {
		case errors.As(err, &ierr) && ierr.Type == imap.StatusResponseTypeBye:
			// RFC 9051 §7.1.5: the server will not take the connection
			// now (too many connections, shutting down).
			err = transient(err)
		case q.Bye() != "":
			// The same, with the connection's end read at once: go-imap
			// then reports either, by chance.
			err = transient(fmt.Errorf("the server ended the connection: %s", q.Bye()))
		default:
			err = raw.explain(ctx, err)
		}
		ic.Close()
		return nil, fmt.Errorf("%w to %s: no IMAP greeting: %w", ErrConnect, addr, err)
	}
	c := &Client{c: ic, log: opts.Logger, q: q, lp: lp, fetches: col, changes: sig, wd: raw, large: opts.LargeMessage, now: opts.Now}
	if c.now == nil {
		c.now = time.Now
	}
	if c.large <= 0 {
		c.large = DefaultLargeMessage
	}
	if ic.State() == imap.ConnStateNotAuthenticated {
		if err := c.login(ctx, opts); err != nil {
			ic.Close()
			return nil, err
		}
	}
	if err := c.loadCaps(ctx); err != nil {
		ic.Close()
		return nil, err
	}
	if err := c.compress(ctx, gate, opts); err != nil {
		ic.Close()
		return nil, err
	}
	if c.caps.Has(capObjectID) {
		// RFC 8474 §4.3: ListStatus and Status ask for each mailbox's
		// MAILBOXID in the round trip they make anyway.
		q.RequestMailboxIDs()
	}
	if c.caps.Has(imap.CapQResync) && !opts.NoQResync {
		// The reply is awaited when the mode is first asked for (Mode),
		// after the listing, which travels with the ENABLE.
		wait, err := q.StartEnable(ctx)
		if err != nil {
			err = c.ioErr(ctx, err)
			ic.Close()
			return nil, fmt.Errorf("%w to %s: enable QRESYNC: %w", ErrConnect, opts.Host, err)
		}
		c.enabling = wait
	}
	return c, nil
}

// secure returns the transport go-imap's stack is built on: the TLS
// connection, or raw with TLSNone. After STARTTLS it also returns the
// greeting to replay to go-imap, which expects one (see startTLS).
func secure(ctx context.Context, raw *watchdog, opts Options) (net.Conn, []byte, error) {
	switch opts.TLS {
	case TLSImplicit:
		tc := tls.Client(raw, tlsConfig(opts))
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, fmt.Errorf("%w to %s: TLS: %w", ErrConnect, opts.Host, raw.explain(ctx, err))
		}
		return tc, nil, nil
	case TLSStartTLS:
		return startTLS(ctx, raw, opts)
	case TLSNone:
		return raw, nil, nil
	default:
		return nil, nil, fmt.Errorf("unknown tls mode %q", opts.TLS)
	}
}

func tlsConfig(opts Options) *tls.Config {
	cfg := &tls.Config{ServerName: opts.Host, RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
	if len(opts.Fingerprint) > 0 {
		// A pinned key is a stronger statement than any CA's: accept the
		// server exactly when its key matches, whoever signed it.
		cfg.InsecureSkipVerify = true
		pin := opts.Fingerprint
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			got := SPKIFingerprint(cs.PeerCertificates[0])
			if subtle.ConstantTimeCompare(got[:], pin) != 1 {
				return fmt.Errorf("certificate key fingerprint %x does not match tls_fingerprint", got)
			}
			return nil
		}
	}
	return cfg
}

// SPKIFingerprint is the SHA-256 of a certificate's SubjectPublicKeyInfo,
// the value imap.tls_fingerprint pins.
func SPKIFingerprint(cert *x509.Certificate) [32]byte {
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo)
}

// startTLS upgrades a plaintext connection (RFC 9051 §6.2.1) before go-imap
// sees it, so that the trace can sit on the plaintext protocol both before
// and after the upgrade. A server that does not offer STARTTLS is an error,
// never a fallback to plaintext. The exchange before the handshake has a
// trace of its own; the caller builds the rest of the stack, trace
// included, on the returned TLS connection.
func startTLS(ctx context.Context, raw *watchdog, opts Options) (net.Conn, []byte, error) {
	var pre net.Conn = raw
	if opts.Trace != nil {
		pre = wiretrace.Wrap(raw, opts.Trace)
	}
	br := bufio.NewReader(pre)
	greeting, err := br.ReadString('\n')
	if err != nil {
		return nil, nil, fmt.Errorf("%w to %s: no IMAP greeting: %w", ErrConnect, opts.Host, raw.explain(ctx, err))
	}
	if !strings.HasPrefix(greeting, "* OK") {
		// RFC 9051 §7.1.4: a PREAUTH session cannot be upgraded.
		return nil, nil, fmt.Errorf("%w to %s: server greeted with %q before STARTTLS", ErrConnect, opts.Host, strings.TrimSpace(greeting))
	}
	if _, err := io.WriteString(pre, "S0 CAPABILITY\r\nS1 STARTTLS\r\n"); err != nil {
		return nil, nil, fmt.Errorf("%w to %s: %w", ErrConnect, opts.Host, raw.explain(ctx, err))
	}
	offered := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, nil, fmt.Errorf("%w to %s: during STARTTLS: %w", ErrConnect, opts.Host, raw.explain(ctx, err))
		}
		up := strings.ToUpper(strings.TrimRight(line, "\r\n"))
		if strings.HasPrefix(up, "* CAPABILITY ") && strings.Contains(up+" ", " STARTTLS ") {
			offered = true
		}
		if strings.HasPrefix(up, "S1 ") {
			if !offered || !strings.HasPrefix(up, "S1 OK") {
				return nil, nil, fmt.Errorf("%w to %s: the server does not offer STARTTLS (tls: starttls); use tls: implicit if it listens for TLS on another port", ErrConnect, opts.Host)
			}
			break
		}
	}
	if br.Buffered() > 0 {
		// Anything sent before the handshake could have been injected by
		// a man in the middle (the STARTTLS command-injection class of
		// bugs): refuse.
		return nil, nil, fmt.Errorf("%w to %s: server sent data after STARTTLS before the TLS handshake", ErrConnect, opts.Host)
	}
	tc := tls.Client(raw, tlsConfig(opts))
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, fmt.Errorf("%w to %s: TLS: %w", ErrConnect, opts.Host, raw.explain(ctx, err))
	}
	// go-imap expects a greeting; the server sends none after STARTTLS, so
	// replay a plain one. It carries no capabilities: those from before
	// the upgrade must be forgotten (RFC 9051 §6.2.1), and go-imap will
	// ask again.
	return tc, []byte("* OK TLS established\r\n"), nil
}

// greetingConn returns pending before the bytes of Conn.
type greetingConn struct {
	net.Conn
	pending []byte
}

func (g *greetingConn) Read(p []byte) (int, error) {
	if len(g.pending) > 0 {
		n := copy(p, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	return g.Conn.Read(p)
}

func (c *Client) login(ctx context.Context, opts Options) error {
	caps := c.c.Caps()
	if opts.TLS == TLSNone && !isLoopback(opts.Host) {
		return fmt.Errorf("%w to %s", ErrPlaintext, opts.Host)
	}
	var auth func() error
	reason := strings.TrimSpace
	switch opts.Auth {
	case AuthXOAuth2, AuthOAuthBearer:
		oc, err := newOAuthClient(ctx, opts, caps)
		if err != nil {
			return err
		}
		auth, reason = func() error { return c.c.Authenticate(oc) }, oc.reason
	default:
		if opts.Password == nil {
			return fmt.Errorf("%w for %s: the server asks for a password and none is configured", ErrAuth, opts.User)
		}
		pass, err := opts.Password(ctx)
		if err != nil {
			return err
		}
		switch {
		case opts.Auth == AuthPlain && caps.Has(imap.Cap("AUTH=PLAIN")):
			auth = func() error { return c.c.Authenticate(sasl.NewPlainClient("", opts.User, pass)) }
		case caps.Has(imap.CapLoginDisabled):
			return fmt.Errorf("%w for %s: the server disables LOGIN on this connection; use tls: implicit or starttls", ErrAuth, opts.User)
		default:
			auth = func() error { return c.c.Login(opts.User, pass).Wait() }
		}
	}
	stop := context.AfterFunc(ctx, func() { c.c.Close() })
	defer stop()
	if err := auth(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ierr *imap.Error
		if errors.As(err, &ierr) {
			switch {
			case overQuota(err):
				// Not the credentials: the account may not do more today.
				return &markedError{fmt.Errorf("%w to %s: %s", ErrConnect, opts.Host, strings.TrimSpace(ierr.Text)), mail.ErrOverQuota}
			case strings.Contains(strings.ToLower(ierr.Text), tooManyText):
				// The credentials were accepted: another connection
				// closing makes room for this one.
				return transient(fmt.Errorf("%w to %s: %w: %s", ErrConnect, opts.Host, mail.ErrTooManyConnections, strings.TrimSpace(ierr.Text)))
			}
			if ierr.Code == imap.ResponseCodeUnavailable {
				// RFC 5530 §3: a subsystem the server needs is down;
				// the credentials were not judged.
				return transient(fmt.Errorf("%w to %s: the server cannot log in now: %s", ErrConnect, opts.Host, strings.TrimSpace(ierr.Text)))
			}
			return fmt.Errorf("%w for %s: %s", ErrAuth, opts.User, reason(ierr.Text))
		}
		return fmt.Errorf("%w to %s: during login: %w", ErrConnect, opts.Host, c.ioErr(ctx, err))
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ctxErr prefers the context's error: a connection closed because the
// context ended should say so, not "use of closed network connection".
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
