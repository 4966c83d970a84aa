package imapremote

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
)

// OAuth 2.0 methods of Options.Auth: the access token comes from
// Options.Token.
const (
	// AuthXOAuth2 is SASL XOAUTH2, the mechanism Gmail and Outlook.com
	// define (no RFC).
	AuthXOAuth2 = "xoauth2"
	// AuthOAuthBearer is SASL OAUTHBEARER (RFC 7628).
	AuthOAuthBearer = "oauthbearer"
)

const mechXOAuth2 = "XOAUTH2"

// newOAuthClient checks that the server offers the mechanism of
// opts.Auth, then asks opts.Token for an access token and returns the SASL
// client that presents it. The token is asked for only once the mechanism
// is known to be usable, because a token helper may have to refresh it.
func newOAuthClient(ctx context.Context, opts Options, caps imap.CapSet) (*oauthClient, error) {
	mech := mechXOAuth2
	if opts.Auth == AuthOAuthBearer {
		mech = sasl.OAuthBearer
	}
	if !caps.Has(imap.Cap("AUTH=" + mech)) {
		return nil, fmt.Errorf("%w for %s: the server does not offer AUTH=%s (imap.auth: %s); it offers %s",
			ErrAuth, opts.User, mech, opts.Auth, offeredMechs(caps))
	}
	if opts.Token == nil {
		return nil, fmt.Errorf("%w for %s: imap.auth %s needs an access token and none is configured", ErrAuth, opts.User, opts.Auth)
	}
	token, err := opts.Token(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Auth == AuthOAuthBearer {
		// RFC 7628 §3.1: gs2-header "n,a=user," then host, port and
		// auth=Bearer, each ended by ^A, and a final ^A.
		_, ir, err := sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
			Username: opts.User, Token: token, Host: opts.Host, Port: opts.Port,
		}).Start()
		if err != nil {
			return nil, fmt.Errorf("%w for %s: %w", ErrAuth, opts.User, err)
		}
		// RFC 7628 §3.2.3: after an error challenge the client sends a
		// single ^A, and the server ends the exchange with a failure.
		return &oauthClient{mech: mech, initial: ir, afterError: []byte{0x01}}, nil
	}
	// XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A. After an error
	// challenge the client sends an empty response, and the server ends
	// the command with a tagged NO.
	ir := []byte("user=" + opts.User + "\x01auth=Bearer " + token + "\x01\x01")
	return &oauthClient{mech: mech, initial: ir, afterError: []byte{}}, nil
}

// oauthClient is a sasl.Client for the OAuth mechanisms. Its exchange has
// one step: the initial response carries the token, and a challenge can
// only be the server's error (a JSON object). Next answers that challenge
// as the mechanism prescribes, so that the server can finish the command
// with its tagged NO, and keeps the error's status for the message.
// go-imap's client would leave the command hanging if Next failed.
type oauthClient struct {
	mech       string
	initial    []byte
	afterError []byte
	// status is the "status" of the server's error challenge ("" if none
	// came or it had none); answered says the challenge was answered.
	status   string
	answered bool
}

func (c *oauthClient) Start() (string, []byte, error) { return c.mech, c.initial, nil }

func (c *oauthClient) Next(challenge []byte) ([]byte, error) {
	if c.answered {
		return nil, fmt.Errorf("%s: the server sent a second challenge", c.mech)
	}
	c.answered = true
	var e struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(challenge, &e) == nil {
		c.status = printable(e.Status, 64)
	}
	return c.afterError, nil
}

// reason is the text of the server's NO, with the status of its error
// challenge when there was one.
func (c *oauthClient) reason(text string) string {
	text = strings.TrimSpace(text)
	if c.status != "" {
		text += " (token refused: status " + c.status + ")"
	}
	return text
}

// offeredMechs lists the SASL mechanisms in caps, for an error message.
func offeredMechs(caps imap.CapSet) string {
	var mechs []string
	for c := range caps {
		if m, ok := strings.CutPrefix(string(c), "AUTH="); ok {
			mechs = append(mechs, m)
		}
	}
	if len(mechs) == 0 {
		return "no SASL mechanism"
	}
	sort.Strings(mechs)
	return strings.Join(mechs, ", ")
}

// printable returns s if it is short printable ASCII, else "": a server's
// words go into an error message only when they cannot garble it.
func printable(s string, max int) string {
	if len(s) > max {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return ""
		}
	}
	return s
}
