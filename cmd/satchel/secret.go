package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
)

// tokenFunc returns the account's OAuth 2.0 access token source:
// oauth2_token_command, run at each login, so that a token helper (oama,
// pizauth) can hand out a fresh token when the last one expired.
func tokenFunc(acc config.Account) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		const key = "oauth2_token_command"
		if acc.IMAP.OAuth2TokenCommand == "" {
			return "", fmt.Errorf("account %s has no %s; check accounts.imap.%s", acc.Name, key, key)
		}
		tok, err := secretCommand(ctx, acc.Name, key, acc.IMAP.OAuth2TokenCommand)
		if err != nil {
			return "", err
		}
		// A token is one line of printable ASCII (RFC 6750 §2.1: b64token).
		// Anything else (a second line, a prompt, a ^A) would garble the
		// SASL message that carries it.
		for i := 0; i < len(tok); i++ {
			if tok[i] <= ' ' || tok[i] >= 0x7f {
				return "", fmt.Errorf("%s of account %s printed more than an access token (spaces, control characters or several lines); it must print the token alone; check accounts.imap.%s", key, acc.Name, key)
			}
		}
		return tok, nil
	}
}

// secretCommand runs command, the account's key (password_command,
// oauth2_token_command), with /bin/sh and returns what it printed, less
// one trailing newline. Its stdout is a secret: it goes into no error and
// no log. When it fails, the error quotes the first line of its stderr.
func secretCommand(ctx context.Context, account, key, command string) (string, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// One at a time across accounts and connections: it may ask on the
	// terminal.
	done, err := takeTurn(ctx)
	if err != nil {
		return "", err
	}
	err = cmd.Run()
	done()
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		msg := strings.TrimSpace(errb.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if msg != "" {
			msg = ": " + msg
		}
		return "", fmt.Errorf("%s of account %s failed (%v%s); check accounts.imap.%s", key, account, err, msg, key)
	}
	s := strings.TrimSuffix(out.String(), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", fmt.Errorf("%s of account %s printed nothing; check accounts.imap.%s", key, account, key)
	}
	return s, nil
}
