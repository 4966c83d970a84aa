package imapremote

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// shortTimeout is Options.Timeout in these tests: long enough for a
// loopback reply, short enough to wait out several times.
const shortTimeout = 300 * time.Millisecond

// TestDialTimeout: a server that goes silent at any point of Dial makes
// it fail with ErrTimeout, a transient connect error, instead of waiting
// for ever.
func TestDialTimeout(t *testing.T) {
	for _, tc := range dialSilences {
		t.Run(tc.name, func(t *testing.T) {
			host, port := scriptedServer(t, func(c net.Conn) {
				tc.serve(c)
				io.Copy(io.Discard, c) // until the client hangs up
			})
			result := dialAsync(t.Context(), Options{
				Host: host, Port: port, TLS: tc.tls, Timeout: shortTimeout,
				User: testUser, Password: fixedPassword(testPassword),
			})
			err := await(t, result, "Dial did not time out")
			for _, want := range []error{ErrTimeout, ErrConnect, mail.ErrTransient} {
				if !errors.Is(err, want) {
					t.Errorf("Dial error %v does not wrap %q", err, want)
				}
			}
		})
	}
}

// silentServer greets with PREAUTH and answers CAPABILITY, NOOP and
// SELECT, except SELECT of "Stuck", which it never answers; on UID FETCH
// it sends fetch, then the tagged OK unless fetch is cut short. It returns
// the Options that reach it, with shortTimeout.
func silentServer(t *testing.T, fetch string, complete bool) Options {
	t.Helper()
	opts := preauthServer(t, map[string]commandFunc{
		"NOOP": func(c net.Conn, tag, _ string) bool {
			io.WriteString(c, tag+" OK done\r\n")
			return true
		},
		"SELECT": func(c net.Conn, tag, line string) bool {
			if !strings.Contains(line, "Stuck") {
				io.WriteString(c, "* 1 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n* OK [UIDNEXT 8] ok\r\n"+tag+" OK [READ-WRITE] done\r\n")
			}
			return true
		},
		"UID": func(c net.Conn, tag, _ string) bool {
			io.WriteString(c, fetch)
			if complete {
				io.WriteString(c, tag+" OK done\r\n")
			}
			return true
		},
		"LOGOUT": func(c net.Conn, tag, _ string) bool {
			io.WriteString(c, "* BYE bye\r\n"+tag+" OK done\r\n")
			return false
		},
	})
	opts.Timeout = shortTimeout
	return opts
}

// TestTimeoutPendingCommand: a command the server never answers fails
// with ErrTimeout; an idle connection, with no command pending, does not
// time out however long it stays silent.
func TestTimeoutPendingCommand(t *testing.T) {
	c := mustDial(t, silentServer(t, "", true))

	time.Sleep(4 * shortTimeout)
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Fatalf("Select after an idle period: %v", err)
	}
	time.Sleep(4 * shortTimeout)
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Fatalf("Select after another idle period: %v", err)
	}

	result := make(chan error, 1)
	go func() {
		_, err := c.Select(t.Context(), "Stuck")
		result <- err
	}()
	if err := await(t, result, "Select did not time out"); !errors.Is(err, ErrTimeout) || !errors.Is(err, mail.ErrTransient) {
		t.Errorf("Select error %v, want ErrTimeout, transient", err)
	}
}

// TestTimeoutMidLiteral: a server that stops in the middle of a message
// fails the fetch with ErrTimeout.
func TestTimeoutMidLiteral(t *testing.T) {
	c := mustDial(t, silentServer(t, "* 1 FETCH (UID 7 BODY[] {100}\r\n0123456789", false))
	result := make(chan error, 1)
	go func() {
		result <- c.FetchBodies(t.Context(), []mail.RemoteMessage{{UID: 7, Size: 100}}, func(_ mail.UID, _ int64, body io.Reader) error {
			_, err := io.ReadAll(body)
			return err
		})
	}()
	if err := await(t, result, "FetchBodies did not time out"); !errors.Is(err, ErrTimeout) {
		t.Errorf("FetchBodies error %v, want ErrTimeout", err)
	}
}

// TestTimeoutSlowConsumer: time in which the caller does not read (it is
// writing the message out) is not the server's silence. The message is
// larger than every buffer on the way, so that most of it is still to be
// read from the socket when the caller comes back.
func TestTimeoutSlowConsumer(t *testing.T) {
	body := strings.Repeat("x", 32<<20)
	opts := silentServer(t, fmt.Sprintf("* 1 FETCH (UID 7 BODY[] {%d}\r\n%s)\r\n", len(body), body), true)
	opts.LargeMessage = int64(len(body))
	c := mustDial(t, opts)
	var got []byte
	err := c.FetchBodies(t.Context(), []mail.RemoteMessage{{UID: 7, Size: int64(len(body))}}, func(_ mail.UID, _ int64, r io.Reader) error {
		time.Sleep(4 * shortTimeout)
		var err error
		got, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		t.Fatalf("FetchBodies: %v", err)
	}
	if string(got) != body {
		t.Errorf("body of %d bytes, want %d", len(got), len(body))
	}
}

// TestDialTransient: which connect failures are worth a retry.
func TestDialTransient(t *testing.T) {
	answerLogin := func(reply string) func(net.Conn) {
		return func(c net.Conn) {
			answerCommands(c, "* OK [CAPABILITY IMAP4rev1] ready", map[string]commandFunc{
				"LOGIN": func(c net.Conn, tag, _ string) bool {
					io.WriteString(c, tag+" "+reply+"\r\n")
					return true
				},
			})
		}
	}
	for _, tc := range []struct {
		name      string
		serve     func(net.Conn)
		transient bool
		auth      bool
	}{
		{"closed before the greeting", func(net.Conn) {}, true, false},
		{"BYE greeting", func(c net.Conn) { io.WriteString(c, "* BYE too many connections\r\n") }, true, false},
		{"login UNAVAILABLE", answerLogin("NO [UNAVAILABLE] user database down"), true, false},
		{"login refused", answerLogin("NO [AUTHENTICATIONFAILED] wrong password"), false, true},
		{"login refused without a code", answerLogin("NO wrong password"), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, port := scriptedServer(t, tc.serve)
			err := dialFails(t, Options{Host: host, Port: port, TLS: TLSNone, User: testUser, Auth: AuthLogin,
				Password: fixedPassword(testPassword), Timeout: bound}, "Dial succeeded")
			if got := errors.Is(err, mail.ErrTransient); got != tc.transient {
				t.Errorf("Dial error %v: transient %v, want %v", err, got, tc.transient)
			}
			if got := errors.Is(err, ErrAuth); got != tc.auth {
				t.Errorf("Dial error %v: ErrAuth %v, want %v", err, got, tc.auth)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().(*net.TCPAddr)
		ln.Close()
		err = dialFails(t, Options{Host: addr.IP.String(), Port: addr.Port, TLS: TLSNone, User: testUser, Password: noPassword(t)},
			"Dial succeeded on a closed port")
		if !errors.Is(err, mail.ErrTransient) || !errors.Is(err, ErrConnect) {
			t.Errorf("Dial error %v, want a transient ErrConnect", err)
		}
	})
}
