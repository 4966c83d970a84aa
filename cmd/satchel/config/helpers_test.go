package config

import (
	"errors"
	"path/filepath"
	"testing"
)

// base is a valid account with its imap mapping last, so that a case can
// append imap keys (from line 8) or account keys (a new section from line 8)
// without renumbering the lines above.
const base = `accounts:
  - name: personal
    maildir: /srv/mail/personal
    imap:
      host: imap.example.org
      user: me@example.org
      password_command: pass show mail
`

// isolateEnv points $HOME and the XDG variables at a fresh directory, so
// that defaults and ~ do not depend on the machine running the tests.
func isolateEnv(t *testing.T) (home string) {
	t.Helper()
	home = t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("SATCHEL_CONFIG", "")
	return home
}

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	cfg, err := Parse("config.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return cfg
}

func parseError(t *testing.T, doc string) *Error {
	t.Helper()
	cfg, err := Parse("config.yaml", []byte(doc))
	if err == nil {
		t.Fatalf("Parse succeeded (%+v), want an error\n%s", cfg.Accounts, doc)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse error %T %v, want *Error", err, err)
	}
	if e.File != "config.yaml" {
		t.Errorf("Error.File = %q, want config.yaml", e.File)
	}
	return e
}

func defaultIndexFor(home, name string) string {
	return filepath.Join(home, ".local", "share", "satchel", name+".db")
}
