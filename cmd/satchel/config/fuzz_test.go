package config

import (
	"errors"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no file makes Parse panic, that every failure is an
// *Error naming the file, and that what loads holds the promises of the
// types. The seed corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Setenv("HOME", "/home/fuzz")
	f.Setenv("XDG_DATA_HOME", "")
	f.Add([]byte(base))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != "fuzz.yaml" || e.Msg == "" || e.Line < 0 {
				t.Fatalf("error %T %#v, want an *Error for fuzz.yaml", err, err)
			}
			return
		}
		if len(cfg.Accounts) == 0 {
			t.Fatal("loaded with no accounts")
		}
		names := map[string]bool{}
		for _, a := range cfg.Accounts {
			switch {
			case checkName(a.Name) != "" || names[a.Name]:
				t.Fatalf("bad or duplicate name %q", a.Name)
			case a.IMAP.Host == "" || a.IMAP.User == "":
				t.Fatalf("missing host or user: %+v", a.IMAP)
			case a.IMAP.Port < 1 || a.IMAP.Port > 65535 || a.IMAP.Connections < 1 || a.IMAP.Connections > 32:
				t.Fatalf("port or connections out of range: %+v", a.IMAP)
			case a.IMAP.TLS == "none" && !IsLoopback(a.IMAP.Host):
				t.Fatalf("tls none to %q", a.IMAP.Host)
			case a.IMAP.TLSFingerprint != nil && len(a.IMAP.TLSFingerprint) != 32:
				t.Fatalf("fingerprint of %d bytes", len(a.IMAP.TLSFingerprint))
			case !filepath.IsAbs(a.Maildir) || !filepath.IsAbs(a.Index):
				t.Fatalf("relative paths %q, %q", a.Maildir, a.Index)
			case a.WatchInterval <= 0 || len(a.Mailboxes.Include) == 0:
				t.Fatalf("bad watch interval or include: %+v", a)
			}
			names[a.Name] = true
		}
	})
}
