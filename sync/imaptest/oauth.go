package imaptest

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
)

// OAuthServer is the in-memory server (see StartMemory) offering the SASL
// mechanisms XOAUTH2 and OAUTHBEARER besides PLAIN. Both accept
// Server.User with the current access token, and answer any other
// credentials as Gmail does: an error challenge holding a JSON object,
// then, once the client has answered it, a tagged NO [AUTHENTICATIONFAILED].
// LOGIN with Server.Password works as on the plain in-memory server (the
// harness's own connection uses it).
type OAuthServer struct {
	*Server

	mu        sync.Mutex
	token     string
	exchanges []SASLExchange
}

// SASLExchange is one AUTHENTICATE with an OAuth mechanism, as the server
// received it.
type SASLExchange struct {
	Mech string // "XOAUTH2" or "OAUTHBEARER"
	// Responses holds the client's responses, decoded from base64: the
	// initial response first, then the answer to the error challenge.
	Responses [][]byte
	// OK says the credentials were accepted.
	OK bool
}

// StartMemoryOAuth starts an OAuthServer accepting token. It stops in
// t.Cleanup.
func StartMemoryOAuth(t testing.TB, token string) *OAuthServer {
	t.Helper()
	o := &OAuthServer{token: token}
	o.Server = startMemory(t, nil, nil, func(s imapserver.Session) imapserver.Session {
		return &oauthSession{SessionIMAP4rev2: s.(imapserver.SessionIMAP4rev2), srv: o}
	})
	return o
}

// SetToken makes token the one accepted from now on (an expired token is
// one the server no longer accepts).
func (o *OAuthServer) SetToken(token string) {
	o.mu.Lock()
	o.token = token
	o.mu.Unlock()
}

// Exchanges returns the OAuth exchanges so far, oldest first.
func (o *OAuthServer) Exchanges() []SASLExchange {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]SASLExchange, len(o.exchanges))
	for i, e := range o.exchanges {
		e.Responses = append([][]byte(nil), e.Responses...)
		out[i] = e
	}
	return out
}

// oauthSession adds the SASL mechanisms to a session of the in-memory
// server.
type oauthSession struct {
	imapserver.SessionIMAP4rev2
	srv *OAuthServer
}

var _ imapserver.SessionSASL = (*oauthSession)(nil)

func (s *oauthSession) AuthenticateMechanisms() []string {
	return []string{sasl.Plain, "XOAUTH2", sasl.OAuthBearer}
}

func (s *oauthSession) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return imapserver.ErrAuthFailed
			}
			return s.Login(user, pass)
		}), nil
	case "XOAUTH2", sasl.OAuthBearer:
		s.srv.mu.Lock()
		s.srv.exchanges = append(s.srv.exchanges, SASLExchange{Mech: mech})
		n := len(s.srv.exchanges) - 1
		s.srv.mu.Unlock()
		return &oauthSASLServer{sess: s, mech: mech, n: n}, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
}

// oauthSASLServer is one OAuth exchange on the server side.
type oauthSASLServer struct {
	sess   *oauthSession
	mech   string
	n      int // index in OAuthServer.exchanges
	failed bool
}

var errOAuthFailed = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeAuthenticationFailed,
	Text: "Invalid credentials (Failure)",
}

func (a *oauthSASLServer) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil {
		// No initial response: ask for it with an empty challenge.
		return []byte{}, false, nil
	}
	o := a.sess.srv
	o.mu.Lock()
	o.exchanges[a.n].Responses = append(o.exchanges[a.n].Responses, bytes.Clone(resp))
	want := o.token
	o.mu.Unlock()
	if a.failed {
		// The client has answered the error challenge: end with NO,
		// whatever it answered (the test inspects the answer).
		return nil, true, errOAuthFailed
	}
	var user, token string
	var ok bool
	if a.mech == sasl.OAuthBearer {
		user, token, ok = parseOAuthBearer(resp)
	} else {
		user, token, ok = parseXOAuth2(resp)
	}
	if ok && user == o.User && token == want && want != "" {
		if err := a.sess.Login(memoryUser, memoryPassword); err != nil {
			return nil, true, err
		}
		o.mu.Lock()
		o.exchanges[a.n].OK = true
		o.mu.Unlock()
		return nil, true, nil
	}
	a.failed = true
	if a.mech == sasl.OAuthBearer {
		return []byte(`{"status":"invalid_token","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	return []byte(`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`), false, nil
}

// parseXOAuth2 reads "user=" user ^A "auth=Bearer " token ^A ^A.
func parseXOAuth2(r []byte) (user, token string, ok bool) {
	parts := strings.Split(string(r), "\x01")
	if len(parts) != 4 || parts[2] != "" || parts[3] != "" {
		return "", "", false
	}
	user, ok1 := strings.CutPrefix(parts[0], "user=")
	token, ok2 := strings.CutPrefix(parts[1], "auth=Bearer ")
	return user, token, ok1 && ok2
}

// parseOAuthBearer reads RFC 7628 §3.1's client response: the gs2-header
// "n,a=" user ",", then key=value pairs each preceded by ^A, the last
// followed by ^A ^A.
func parseOAuthBearer(r []byte) (user, token string, ok bool) {
	header, rest, found := strings.Cut(string(r), "\x01")
	if !found || !strings.HasSuffix(rest, "\x01\x01") {
		return "", "", false
	}
	gs2 := strings.Split(header, ",")
	if len(gs2) != 3 || gs2[0] != "n" || gs2[2] != "" {
		return "", "", false
	}
	user, ok = strings.CutPrefix(gs2[1], "a=")
	if !ok {
		return "", "", false
	}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "\x01\x01"), "\x01") {
		k, v, found := strings.Cut(kv, "=")
		if !found {
			return "", "", false
		}
		if k == "auth" {
			scheme, t, _ := strings.Cut(v, " ")
			if !strings.EqualFold(scheme, "Bearer") {
				return "", "", false
			}
			token = t
		}
	}
	return user, token, token != ""
}
