package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

// testToken is distinctive, so that output holding it, or its base64 in
// any alignment, is found by a substring search.
const testToken = "ya29.cli-test-token-T0tFTg"

// leaksSecret reports whether s holds secret or a piece of its base64
// long enough to give it away, at any offset in an encoded message.
func leaksSecret(s, secret string) bool {
	if strings.Contains(s, secret) {
		return true
	}
	for off := range 3 {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", off) + secret))
		if strings.Contains(s, enc[4:len(enc)-4]) {
			return true
		}
	}
	return false
}

// writeOAuthConfig writes a one-account configuration that logs in with
// auth and the token command.
func writeOAuthConfig(t *testing.T, srv *imaptest.OAuthServer, auth, tokenCommand string) account {
	t.Helper()
	dir := t.TempDir()
	a := account{dir: dir, config: filepath.Join(dir, "config.yaml"), maildir: filepath.Join(dir, "Mail"), index: filepath.Join(dir, "state", "personal.db")}
	cfg := fmt.Sprintf(`accounts:
  - name: personal
    imap:
      host: %s
      port: %d
      tls: none
      user: %s
      auth: %s
      oauth2_token_command: %q
    maildir: %s
    index: %s
`, srv.Host, srv.Port, srv.User, auth, tokenCommand, a.maildir, a.index)
	if err := os.WriteFile(a.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestOAuthSync syncs with each OAuth method and a token command that
// prints the token and a newline, as oama and pizauth do; the token is in
// neither the trace nor the output. A refused token fails the account
// with the server's reason and, again, without the token.
func TestOAuthSync(t *testing.T) {
	for _, auth := range []string{"xoauth2", "oauthbearer"} {
		t.Run(auth, func(t *testing.T) {
			srv := imaptest.StartMemoryOAuth(t, testToken)
			srv.Append("INBOX", []byte("Subject: hi\r\n\r\nhello\r\n"), nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
			a := writeOAuthConfig(t, srv, auth, "echo "+testToken)
			trace := filepath.Join(a.dir, "trace.log")

			code, out, errs := runCLI(t, "--config", a.config, "--trace", trace, "sync")
			if code != exitOK {
				t.Fatalf("sync: exit %d, stderr %q", code, errs)
			}
			if ents, err := os.ReadDir(filepath.Join(a.maildir, "INBOX", "new")); err != nil || len(ents) != 1 {
				t.Fatalf("INBOX/new: %d files (%v), want 1", len(ents), err)
			}
			ex := srv.Exchanges()
			if len(ex) == 0 || !ex[0].OK || !strings.HasSuffix(string(ex[0].Responses[0]), "auth=Bearer "+testToken+"\x01\x01") {
				t.Fatalf("exchanges %+v: want an accepted one whose token lost the command's newline", ex)
			}
			data, err := os.ReadFile(trace)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "AUTHENTICATE "+strings.ToUpper(auth)+" ***") {
				t.Errorf("trace has no redacted AUTHENTICATE %s:\n%s", strings.ToUpper(auth), data)
			}
			for what, s := range map[string]string{"trace": string(data), "stdout": out, "stderr": errs} {
				if leaksSecret(s, testToken) {
					t.Errorf("%s holds the token:\n%s", what, s)
				}
			}

			srv.SetToken("a-token-issued-later")
			code, out, errs = runCLI(t, "--config", a.config, "--trace", trace, "sync")
			if code != exitFailure {
				t.Fatalf("sync with a refused token: exit %d, want 1 (stderr %q)", code, errs)
			}
			line := oneLine(t, errs)
			if !strings.Contains(line, "personal: authentication failed for "+srv.User) || !strings.Contains(line, "Invalid credentials") {
				t.Errorf("error %q does not say the server refused the login", line)
			}
			data, _ = os.ReadFile(trace)
			for what, s := range map[string]string{"trace": string(data), "stdout": out, "stderr": errs} {
				if leaksSecret(s, testToken) {
					t.Errorf("%s holds the refused token:\n%s", what, s)
				}
			}
		})
	}
}

// TestSecretCommandFails: a failing password or token command is reported
// with the account, the key and the first line of its stderr; what it
// printed on stdout (a password, a token, half of one) never is.
func TestSecretCommandFails(t *testing.T) {
	const leaked = "s3cret-on-stdout"
	failing := fmt.Sprintf(`printf '%%s\n' %s; echo 'helper: vault locked' >&2; exit 3`, leaked)
	check := func(t *testing.T, a account, key string) {
		t.Helper()
		code, out, errs := runCLI(t, "--config", a.config, "sync")
		if code != exitFailure {
			t.Fatalf("exit %d, want 1 (stderr %q)", code, errs)
		}
		line := oneLine(t, errs)
		want := "satchel: personal: " + key + " of account personal failed (exit status 3: helper: vault locked); check accounts.imap." + key
		if !strings.HasPrefix(line, want) {
			t.Errorf("error %q\nwant it to start %q", line, want)
		}
		if strings.Contains(out+errs, leaked) {
			t.Errorf("the command's stdout was shown:\nstdout %q\nstderr %q", out, errs)
		}
		assertNothingWritten(t, a)
	}

	t.Run("password_command", func(t *testing.T) {
		srv := imaptest.StartMemory(t)
		a := writeConfig(t, srv.Host, srv.Port, srv.User, "x", "")
		cfg, _ := os.ReadFile(a.config)
		cfg = []byte(strings.Replace(string(cfg), `password_command: "printf '%s\\n' 'x'"`, "password_command: "+yamlString(failing), 1))
		os.WriteFile(a.config, cfg, 0o600)
		check(t, a, "password_command")
	})
	t.Run("oauth2_token_command", func(t *testing.T) {
		srv := imaptest.StartMemoryOAuth(t, testToken)
		check(t, writeOAuthConfig(t, srv, "xoauth2", failing), "oauth2_token_command")
		if n := len(srv.Exchanges()); n != 0 {
			t.Errorf("%d AUTHENTICATE sent without a token", n)
		}
	})
	t.Run("token of two lines", func(t *testing.T) {
		srv := imaptest.StartMemoryOAuth(t, testToken)
		a := writeOAuthConfig(t, srv, "oauthbearer", "printf 'Token: %s\\nexpires in 3599s\\n' "+testToken)
		code, out, errs := runCLI(t, "--config", a.config, "sync")
		if code != exitFailure || !strings.Contains(oneLine(t, errs), "oauth2_token_command of account personal printed more than an access token") {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		if leaksSecret(out+errs, testToken) || len(srv.Exchanges()) != 0 {
			t.Errorf("the token was shown or sent:\nstdout %q\nstderr %q", out, errs)
		}
	})
}
