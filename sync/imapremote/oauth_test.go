package imapremote

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// oauthToken is distinctive, so that a trace or error holding it, or its
// base64 in any alignment, is found by a substring search.
const oauthToken = "ya29.only-in-tests-Tk9fTEVBSw"

func fixedToken(tok string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return tok, nil }
}

// leaks reports whether s holds the token or a piece of its base64 long
// enough to give it away, whatever its offset in the encoded response.
func leaks(s, token string) bool {
	if strings.Contains(s, token) {
		return true
	}
	for off := range 3 {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", off) + token))
		// Skip the characters the padding bytes touch and the last,
		// which the following bytes change.
		piece := enc[4 : len(enc)-4]
		if strings.Contains(s, piece) {
			return true
		}
	}
	return false
}

// TestOAuth checks the exchange of each OAuth mechanism byte for byte, as
// the server received it: accepted, and refused (the server's error
// challenge answered as the mechanism prescribes, so that the server ends
// the command with its NO instead of waiting). The token appears in
// neither the trace nor the error.
func TestOAuth(t *testing.T) {
	s := imaptest.StartMemoryOAuth(t, oauthToken)
	initial := map[string]string{
		AuthXOAuth2:     "user=" + s.User + "\x01auth=Bearer " + oauthToken + "\x01\x01",
		AuthOAuthBearer: fmt.Sprintf("n,a=%s,\x01host=%s\x01port=%d\x01auth=Bearer %s\x01\x01", s.User, s.Host, s.Port, oauthToken),
	}
	mech := map[string]string{AuthXOAuth2: "XOAUTH2", AuthOAuthBearer: "OAUTHBEARER"}
	answer := map[string]string{AuthXOAuth2: "", AuthOAuthBearer: "\x01"}
	for _, auth := range []string{AuthXOAuth2, AuthOAuthBearer} {
		t.Run(auth, func(t *testing.T) {
			s.SetToken(oauthToken)
			before := len(s.Exchanges())
			var trace traceBuffer
			c := mustDial(t, Options{
				Host: s.Host, Port: s.Port, TLS: TLSNone, User: s.User, Auth: auth,
				Password: noPassword(t), Token: fixedToken(oauthToken), Trace: &trace,
			})
			if _, err := c.List(t.Context()); err != nil {
				t.Fatalf("List after OAuth login: %v", err)
			}
			ex := s.Exchanges()[before:]
			if len(ex) != 1 || ex[0].Mech != mech[auth] || !ex[0].OK || len(ex[0].Responses) != 1 {
				t.Fatalf("exchanges %+v, want one accepted %s with one response", ex, mech[auth])
			}
			if got := string(ex[0].Responses[0]); got != initial[auth] {
				t.Errorf("initial response %q, want %q", got, initial[auth])
			}
			got := trace.String()
			line := commandLine(got, "AUTHENTICATE")
			// SASL-IR (RFC 4959): the token goes with the command, and the
			// trace shows only that it was there.
			if f := strings.Fields(line); len(f) != 4 || f[2] != mech[auth] || f[3] != "***" {
				t.Errorf("AUTHENTICATE line %q, want %s with a redacted initial response", line, mech[auth])
			}
			if leaks(got, oauthToken) {
				t.Errorf("trace holds the token:\n%s", got)
			}
		})

		t.Run(auth+"/refused", func(t *testing.T) {
			s.SetToken("a-newer-token")
			before := len(s.Exchanges())
			var trace traceBuffer
			err := dialFails(t, Options{
				Host: s.Host, Port: s.Port, TLS: TLSNone, User: s.User, Auth: auth,
				Token: fixedToken(oauthToken), Trace: &trace,
			}, "Dial succeeded with a refused token")
			if !errors.Is(err, ErrAuth) || errors.Is(err, ErrConnect) || errors.Is(err, mail.ErrTransient) {
				t.Errorf("Dial error %q: want ErrAuth only (permanent)", err)
			}
			if !strings.Contains(err.Error(), "Invalid credentials (Failure)") {
				t.Errorf("Dial error %q does not carry the server's NO text", err)
			}
			if !strings.Contains(err.Error(), "token refused: status ") {
				t.Errorf("Dial error %q does not carry the status of the error challenge", err)
			}
			if leaks(err.Error(), oauthToken) || leaks(trace.String(), oauthToken) {
				t.Errorf("the token leaked:\nerror %q\ntrace:\n%s", err, trace.String())
			}
			ex := s.Exchanges()[before:]
			if len(ex) != 1 || ex[0].OK || len(ex[0].Responses) != 2 {
				t.Fatalf("exchanges %+v, want one refused with two responses", ex)
			}
			if got := string(ex[0].Responses[1]); got != answer[auth] {
				t.Errorf("answer to the error challenge %q, want %q", got, answer[auth])
			}
		})
	}
}

// TestOAuthNotOffered: a server without the mechanism is told apart from a
// refused token, and the token source is not asked for a token it cannot
// use.
func TestOAuthNotOffered(t *testing.T) {
	s := imaptest.StartMemory(t)
	err := dialFails(t, Options{
		Host: s.Host, Port: s.Port, TLS: TLSNone, User: s.User, Auth: AuthOAuthBearer,
		Token: func(context.Context) (string, error) {
			t.Error("Token was called")
			return oauthToken, nil
		},
	}, "Dial succeeded")
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "does not offer AUTH=OAUTHBEARER") || !strings.Contains(err.Error(), "PLAIN") {
		t.Errorf("Dial error %q: want ErrAuth naming the missing mechanism and the offered ones", err)
	}
}

// TestOAuthTokenSourceFails: the token source's error is returned as it
// is, before anything is sent, and no token means ErrAuth.
func TestOAuthTokenSourceFails(t *testing.T) {
	s := imaptest.StartMemoryOAuth(t, oauthToken)
	errHelper := errors.New("token helper: refresh token expired")
	var trace traceBuffer
	err := dialFails(t, Options{
		Host: s.Host, Port: s.Port, TLS: TLSNone, User: s.User, Auth: AuthXOAuth2, Trace: &trace,
		Token: func(context.Context) (string, error) { return "", errHelper },
	}, "Dial succeeded")
	if !errors.Is(err, errHelper) {
		t.Errorf("Dial error %q does not wrap the token source's error", err)
	}
	if l := commandLine(trace.String(), "AUTHENTICATE"); l != "" {
		t.Errorf("AUTHENTICATE sent without a token: %q", l)
	}

	err = dialFails(t, Options{Host: s.Host, Port: s.Port, TLS: TLSNone, User: s.User, Auth: AuthXOAuth2},
		"Dial succeeded without a token source")
	if !errors.Is(err, ErrAuth) {
		t.Errorf("Dial error %q is not ErrAuth", err)
	}
}
