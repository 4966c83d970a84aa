package imapremote

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

func TestDialImplicitTLS(t *testing.T) {
	s, pin, pool := imaptest.StartMemoryTLS(t)
	wrongPin := pin
	wrongPin[len(wrongPin)-1] ^= 0x01

	ok := []struct {
		name    string
		rootCAs bool
		pin     []byte
	}{
		{"trusted CA", true, nil},
		{"pinned key, system roots", false, pin[:]},
		{"pinned key and trusted CA", true, pin[:]},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			var trace traceBuffer
			opts := Options{
				Host: s.Host, Port: s.Port, TLS: TLSImplicit, Fingerprint: tc.pin,
				User: s.User, Auth: AuthLogin, Password: fixedPassword(s.Password), Trace: &trace,
			}
			if tc.rootCAs {
				opts.RootCAs = pool
			}
			c := mustDial(t, opts)
			if caps := c.Capabilities(); !slices.Contains(caps, "IMAP4rev1") {
				t.Errorf("Capabilities() = %q, want IMAP4rev1 among them", caps)
			}
			// The trace sits inside TLS: it shows the IMAP exchange, with
			// the password redacted.
			got := trace.String()
			if !strings.HasPrefix(got, "S: * OK") {
				t.Errorf("trace does not start with the plaintext greeting:\n%s", got)
			}
			if strings.Contains(got, s.Password) {
				t.Errorf("trace holds the password:\n%s", got)
			}
			if login := commandLine(got, "LOGIN"); !strings.HasSuffix(login, " ***") {
				t.Errorf("LOGIN line %q does not end in the redacted password", login)
			}
		})
	}

	fail := []struct {
		name    string
		rootCAs bool
		pin     []byte
		want    string // in the error text
	}{
		{"system roots", false, nil, "certificate"},
		{"wrong pin", false, wrongPin[:], "does not match tls_fingerprint"},
		// The pin replaces the CA check, it does not add a second way in.
		{"wrong pin, trusted CA", true, wrongPin[:], "does not match tls_fingerprint"},
		{"pin of another length", false, pin[:20], "does not match tls_fingerprint"},
	}
	for _, tc := range fail {
		t.Run(tc.name, func(t *testing.T) {
			var trace traceBuffer
			opts := Options{
				Host: s.Host, Port: s.Port, TLS: TLSImplicit, Fingerprint: tc.pin,
				User: s.User, Password: noPassword(t), Trace: &trace,
			}
			if tc.rootCAs {
				opts.RootCAs = pool
			}
			err := dialFails(t, opts, "Dial succeeded")
			if !errors.Is(err, ErrConnect) {
				t.Errorf("Dial error %q is not ErrConnect", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Dial error %q does not mention %q", err, tc.want)
			}
			if got := trace.String(); got != "" {
				t.Errorf("IMAP was spoken over a rejected connection:\n%s", got)
			}
		})
	}
}

func TestDialStartTLS(t *testing.T) {
	for _, tc := range []struct{ auth, command string }{
		{AuthLogin, "LOGIN"},
		{AuthPlain, "AUTHENTICATE"},
	} {
		t.Run(tc.auth, func(t *testing.T) {
			cert, _, pool := selfSigned(t)
			// Without InsecureAuth the server refuses to authenticate
			// before TLS, as real servers do.
			srv := startServer(t, serverConfig{startTLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
			var trace traceBuffer
			c := mustDial(t, Options{
				Host: srv.host, Port: srv.port, TLS: TLSStartTLS, RootCAs: pool,
				User: testUser, Auth: tc.auth, Password: fixedPassword(testPassword), Trace: &trace,
			})
			if got := srv.loginsOverTLS(); !slices.Equal(got, []bool{true}) {
				t.Errorf("logins seen by the server (true: over TLS) = %v, want [true]", got)
			}
			if c.Has("STARTTLS") {
				t.Errorf("capabilities from before the upgrade are kept: %q", c.Capabilities())
			}

			got := trace.String()
			starttls := strings.Index(got, "C: S1 STARTTLS\n")
			if starttls < 0 {
				t.Fatalf("trace has no STARTTLS command:\n%s", got)
			}
			auth := commandLine(got, tc.command)
			if auth == "" {
				t.Fatalf("trace has no %s command:\n%s", tc.command, got)
			}
			if strings.Index(got, "C: "+auth) < starttls {
				t.Errorf("%s before STARTTLS:\n%s", tc.command, got)
			}
			if strings.Contains(got, testPassword) {
				t.Errorf("trace holds the password:\n%s", got)
			}
			if !strings.Contains(auth, "***") {
				t.Errorf("%s line %q shows no redaction", tc.command, auth)
			}
		})
	}

	t.Run("untrusted certificate", func(t *testing.T) {
		cert, _, _ := selfSigned(t)
		srv := startServer(t, serverConfig{startTLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
		var trace traceBuffer
		err := dialFails(t, Options{
			Host: srv.host, Port: srv.port, TLS: TLSStartTLS,
			User: testUser, Password: noPassword(t), Trace: &trace,
		}, "Dial succeeded")
		if !errors.Is(err, ErrConnect) {
			t.Errorf("Dial error %q is not ErrConnect", err)
		}
		if l := commandLine(trace.String(), "LOGIN"); l != "" {
			t.Errorf("LOGIN sent: %q", l)
		}
	})
}

func TestDialStartTLSNotOffered(t *testing.T) {
	s := imaptest.StartMemory(t)
	var trace traceBuffer
	err := dialFails(t, Options{
		Host: s.Host, Port: s.Port, TLS: TLSStartTLS,
		User: s.User, Auth: AuthPlain, Password: noPassword(t), Trace: &trace,
	}, "Dial succeeded without TLS")
	if !errors.Is(err, ErrConnect) {
		t.Errorf("Dial error %q is not ErrConnect", err)
	}
	if !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("Dial error %q does not mention STARTTLS", err)
	}
	got := trace.String()
	if !strings.Contains(got, "C: S1 STARTTLS\n") {
		t.Errorf("trace has no STARTTLS command:\n%s", got)
	}
	for _, cmd := range []string{"LOGIN", "AUTHENTICATE"} {
		if l := commandLine(got, cmd); l != "" {
			t.Errorf("%s sent on a plaintext connection: %q", cmd, l)
		}
	}
}

func TestDialStartTLSRefusesPreauth(t *testing.T) {
	cert, _, pool := selfSigned(t)
	srv := startServer(t, serverConfig{startTLS: &tls.Config{Certificates: []tls.Certificate{cert}}, preAuth: true})
	err := dialFails(t, Options{
		Host: srv.host, Port: srv.port, TLS: TLSStartTLS, RootCAs: pool,
		User: testUser, Password: noPassword(t),
	}, "Dial accepted a PREAUTH session that cannot be upgraded to TLS")
	if !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), "PREAUTH") {
		t.Errorf("Dial error %q, want ErrConnect mentioning PREAUTH", err)
	}
}

// TestDialStartTLSLastCapability has the server list STARTTLS last, right
// before the line end.
func TestDialStartTLSLastCapability(t *testing.T) {
	cert, _, pool := selfSigned(t)
	host, port := scriptedServer(t, func(c net.Conn) {
		// Anything else before TLS is answered BAD, which fails Dial.
		answerCommands(c, "* OK ready", map[string]commandFunc{
			"CAPABILITY": func(c net.Conn, tag, _ string) bool {
				io.WriteString(c, "* CAPABILITY IMAP4rev1 LOGINDISABLED STARTTLS\r\n"+tag+" OK done\r\n")
				return true
			},
			"STARTTLS": func(c net.Conn, tag, _ string) bool {
				io.WriteString(c, tag+" OK begin TLS\r\n")
				return false
			},
		})
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		if err := tc.Handshake(); err != nil {
			return
		}
		answerIMAP(tc)
	})
	mustDial(t, Options{
		Host: host, Port: port, TLS: TLSStartTLS, RootCAs: pool,
		User: testUser, Auth: AuthLogin, Password: fixedPassword(testPassword),
	})
}

// answerIMAP is just enough of a server for Dial after the TLS handshake:
// CAPABILITY, LOGIN with any password, LOGOUT.
func answerIMAP(c net.Conn) {
	answerCommands(c, "", map[string]commandFunc{
		"CAPABILITY": answerCapability,
		"LOGIN": func(c net.Conn, tag, _ string) bool {
			io.WriteString(c, tag+" OK logged in\r\n")
			return true
		},
		"LOGOUT": func(c net.Conn, tag, _ string) bool {
			io.WriteString(c, "* BYE\r\n"+tag+" OK bye\r\n")
			return false
		},
	})
}

// A response pipelined behind the STARTTLS OK reaches the client in the
// clear, so it could come from a man in the middle.
func TestDialStartTLSRefusesInjectedData(t *testing.T) {
	host, port := scriptedServer(t, func(c net.Conn) {
		io.WriteString(c, "* OK ready\r\n")
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "S1 ") {
				break
			}
		}
		// One write, so that the client reads it all at once.
		io.WriteString(c, "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\nS0 OK done\r\nS1 OK begin TLS\r\n"+
			"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n")
		io.Copy(io.Discard, br)
	})
	err := dialFails(t, Options{
		Host: host, Port: port, TLS: TLSStartTLS, User: testUser, Password: noPassword(t),
	}, "Dial succeeded")
	if !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), "after STARTTLS") {
		t.Errorf("Dial error %q, want ErrConnect about data after STARTTLS", err)
	}
}

func TestDialAuth(t *testing.T) {
	s := imaptest.StartMemory(t)
	opts := func(auth string, trace *traceBuffer) Options {
		o := Options{Host: s.Host, Port: s.Port, TLS: TLSNone, User: s.User, Auth: auth}
		if trace != nil {
			o.Trace = trace
		}
		return o
	}

	for _, tc := range []struct {
		auth, used, unused string
	}{
		{AuthLogin, "LOGIN", "AUTHENTICATE"},
		{AuthPlain, "AUTHENTICATE", "LOGIN"},
	} {
		t.Run(tc.auth, func(t *testing.T) {
			var trace traceBuffer
			o := opts(tc.auth, &trace)
			o.Password = fixedPassword(s.Password)
			c := mustDial(t, o)
			if len(c.Capabilities()) == 0 {
				t.Error("no capabilities")
			}
			got := trace.String()
			line := commandLine(got, tc.used)
			if line == "" {
				t.Fatalf("trace has no %s command:\n%s", tc.used, got)
			}
			if tc.used == "AUTHENTICATE" && strings.Fields(line)[2] != "PLAIN" {
				t.Errorf("AUTHENTICATE line %q, want mechanism PLAIN", line)
			}
			if l := commandLine(got, tc.unused); l != "" {
				t.Errorf("unexpected %s command: %q", tc.unused, l)
			}
			if strings.Contains(got, s.Password) {
				t.Errorf("trace holds the password:\n%s", got)
			}
		})

		t.Run(tc.auth+"/wrong password", func(t *testing.T) {
			o := opts(tc.auth, nil)
			o.Password = fixedPassword(s.Password + "x")
			err := dialFails(t, o, "Dial succeeded")
			if !errors.Is(err, ErrAuth) {
				t.Errorf("Dial error %q is not ErrAuth", err)
			}
			if errors.Is(err, ErrConnect) {
				t.Errorf("Dial error %q is also ErrConnect", err)
			}
		})
	}

	t.Run("password source fails", func(t *testing.T) {
		errKeyring := errors.New("keyring locked")
		var trace traceBuffer
		o := opts(AuthPlain, &trace)
		sentBefore := -1
		o.Password = func(context.Context) (string, error) {
			sentBefore = len(clientLines(trace.String()))
			return "", errKeyring
		}
		err := dialFails(t, o, "Dial succeeded")
		if !errors.Is(err, errKeyring) {
			t.Errorf("Dial error %q does not wrap the password source's error", err)
		}
		if sentBefore < 0 {
			t.Fatal("Password was not called")
		}
		if lines := clientLines(trace.String()); len(lines) != sentBefore {
			t.Errorf("sent after the password source failed: %q", lines[sentBefore:])
		}
	})

	t.Run("no password source", func(t *testing.T) {
		err := dialFails(t, opts(AuthPlain, nil), "Dial succeeded")
		if !errors.Is(err, ErrAuth) {
			t.Errorf("Dial error %q is not ErrAuth", err)
		}
	})
}

// TestDialPlaintextRemote listens on an address of this machine that is not
// loopback, so the connection works but would leave the machine for a real
// server.
func TestDialPlaintextRemote(t *testing.T) {
	ip := nonLoopbackIPv4(t)
	srv := startServer(t, serverConfig{listen: net.JoinHostPort(ip, "0"), insecureAuth: true})
	for _, auth := range []string{AuthPlain, AuthLogin} {
		t.Run(auth, func(t *testing.T) {
			var trace traceBuffer
			err := dialFails(t, Options{
				Host: srv.host, Port: srv.port, TLS: TLSNone,
				User: testUser, Auth: auth, Password: noPassword(t), Trace: &trace,
			}, "Dial sent a password without TLS to a non-loopback address")
			if !errors.Is(err, ErrPlaintext) {
				t.Errorf("Dial error %q is not ErrPlaintext", err)
			}
			for _, cmd := range []string{"LOGIN", "AUTHENTICATE"} {
				if l := commandLine(trace.String(), cmd); l != "" {
					t.Errorf("%s sent: %q", cmd, l)
				}
			}
		})
	}
	if got := srv.loginsOverTLS(); len(got) != 0 {
		t.Errorf("server saw %d logins", len(got))
	}
}

func nonLoopbackIPv4(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("list interface addresses: %v", err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address to listen on; TestIsLoopback covers the decision")
	return ""
}

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"localhost", true},
		{"LocalHost", true},
		{"", false},
		{"0.0.0.0", false},
		{"::", false},
		{"192.0.2.1", false},
		{"2001:db8::1", false},
		{"imap.example.com", false},
		{"localhost.example.com", false},
		{"127.0.0.1.example.com", false},
		{"[::1]", false},
	} {
		if got := isLoopback(tc.host); got != tc.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestDialPreauthMemory(t *testing.T) {
	srv := startServer(t, serverConfig{preAuth: true})
	var trace traceBuffer
	c := mustDial(t, Options{
		Host: srv.host, Port: srv.port, TLS: TLSNone,
		User: testUser, Auth: AuthPlain, Password: noPassword(t), Trace: &trace,
	})
	if !strings.HasPrefix(trace.String(), "S: * PREAUTH") {
		t.Errorf("trace does not start with a PREAUTH greeting:\n%s", trace.String())
	}
	for _, cmd := range []string{"LOGIN", "AUTHENTICATE"} {
		if l := commandLine(trace.String(), cmd); l != "" {
			t.Errorf("%s sent in a PREAUTH session: %q", cmd, l)
		}
	}
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Errorf("Select after PREAUTH: %v", err)
	}
}

// dialSilences are servers that accept the connection and then stay
// silent at some point of Dial. serve returns once the client is waiting
// for the server's next word, which never comes.
var dialSilences = []struct {
	name  string
	tls   string
	serve func(c net.Conn)
}{
	// The client says nothing before the greeting, so the server cannot
	// tell when Dial's TCP connect has returned: a cancel lands either
	// there or in the wait for the greeting.
	{"no greeting", TLSNone, func(net.Conn) {}},
	{"no greeting before STARTTLS", TLSStartTLS, func(net.Conn) {}},
	{"no TLS handshake", TLSImplicit, func(c net.Conn) {
		c.Read(make([]byte, 1)) // the ClientHello has started
	}},
	{"no STARTTLS reply", TLSStartTLS, func(c net.Conn) {
		io.WriteString(c, "* OK ready\r\n")
		readLine(c)
	}},
	{"no CAPABILITY reply", TLSNone, func(c net.Conn) {
		io.WriteString(c, "* OK ready\r\n")
		readLine(c)
	}},
}

// readLine waits for one line from the client.
func readLine(c net.Conn) {
	bufio.NewReader(c).ReadString('\n')
}

// TestDialCancel cancels Dial while it waits for a server that has
// accepted the connection and then stays silent at some point. cmd maps
// context.Canceled to its "interrupted" exit code, so the error must wrap
// it whatever Dial was doing.
func TestDialCancel(t *testing.T) {
	for _, tc := range dialSilences {
		t.Run(tc.name, func(t *testing.T) {
			waiting := make(chan struct{})
			host, port := scriptedServer(t, func(c net.Conn) {
				tc.serve(c)
				close(waiting)
				io.Copy(io.Discard, c) // until the client hangs up
			})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			result := dialAsync(ctx, Options{
				Host: host, Port: port, TLS: tc.tls,
				User: testUser, Password: fixedPassword(testPassword),
			})
			// Cancelled once the server has gone silent.
			err := cancelAt(t, "Dial", waiting, cancel, result)
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Dial error %q does not wrap context.Canceled", err)
			}
		})
	}
}

func TestDialUnknownTLSMode(t *testing.T) {
	host, port := scriptedServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	err := dialFails(t, Options{Host: host, Port: port, TLS: "ssl", User: testUser, Password: noPassword(t)}, "Dial succeeded")
	if !strings.Contains(err.Error(), `"ssl"`) {
		t.Errorf("Dial error %q does not name the mode", err)
	}
}
