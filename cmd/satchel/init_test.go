package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

// TestInitFlags writes a configuration from options alone, checks the
// login, and never overwrites the file.
func TestInitFlags(t *testing.T) {
	srv := imaptest.StartMemory(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "conf", "satchel.yaml")
	maildir := filepath.Join(dir, "Mail", "work")
	args := []string{"--config", path, "init", "--name", "work", "--host", srv.Host, "--port", strconv.Itoa(srv.Port),
		"--tls", "none", "--user", srv.User, "--password-command", "printf '%s\\n' " + srv.Password, "--maildir", maildir}

	code, out, errs := runCLI(t, args...)
	if code != exitOK {
		t.Fatalf("init: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if !strings.Contains(out, "wrote "+path) || !strings.Contains(out, "work ("+srv.Addr+"): OK") || !strings.Contains(out, "next: satchel sync work") {
		t.Errorf("init printed %q", out)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	acc := cfg.Accounts[0]
	if len(cfg.Accounts) != 1 || acc.Name != "work" || acc.IMAP.Host != srv.Host || acc.IMAP.Port != srv.Port ||
		acc.IMAP.TLS != "none" || acc.IMAP.User != srv.User || acc.IMAP.PasswordCommand != "printf '%s\\n' "+srv.Password ||
		acc.Maildir != maildir || len(cfg.Warnings) != 0 {
		t.Errorf("written account %+v, warnings %q", acc, cfg.Warnings)
	}
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "#"); n < 10 {
		t.Errorf("the file has %d comments:\n%s", n, data)
	}

	// A second init refuses, and leaves the file as it was.
	code, _, errs = runCLI(t, append(args[:2:2], "init", "--host", "other.example.org", "--user", "u", "--password-command", "p")...)
	if code != exitUsage || !strings.Contains(errs, path+" already exists") {
		t.Errorf("second init: exit %d, stderr %q", code, errs)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Error("the second init changed the file")
	}

	// Answers that make no valid configuration write nothing.
	bad := filepath.Join(dir, "bad.yaml")
	code, _, errs = runCLI(t, "--config", bad, "init", "--host", "imaps://imap.example.org", "--user", "u", "--password-command", "p")
	if code != exitUsage || !strings.Contains(errs, "nothing written") || !strings.Contains(errs, "imap.host") || exists(bad) {
		t.Errorf("invalid host: exit %d, stderr %q, file written %v", code, errs, exists(bad))
	}
}

// TestInitAsks answers the questions on stdin: an empty answer takes the
// default shown, and a required value is asked again until given.
func TestInitAsks(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	path := filepath.Join(home, "config.yaml")
	var out, errb bytes.Buffer
	g := &globals{config: path, stdout: &out, stderr: &errb, log: slog.New(slog.DiscardHandler)}
	in := strings.NewReader("\nimap.example.org\n\nme@example.org\npass show mail/personal\n\n")

	code := runInit(t.Context(), g, initOptions{tls: "implicit", noCheck: true}, in)
	if code != exitOK {
		t.Fatalf("init: exit %d, stderr %q", code, errb.String())
	}
	for _, prompt := range []string{
		"Account name [personal]: ", "IMAP server (host name, such as imap.example.org): ",
		"Login name (often the email address): Login name (often the email address): ",
		"Command that prints the password (such as pass show mail/personal): ", "Maildir [~/Mail/personal]: ",
	} {
		if !strings.Contains(out.String(), prompt) {
			t.Errorf("output %q lacks the prompt %q", out.String(), prompt)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	acc := cfg.Accounts[0]
	if acc.Name != "personal" || acc.IMAP.Host != "imap.example.org" || acc.IMAP.Port != 993 || acc.IMAP.TLS != "implicit" ||
		acc.IMAP.User != "me@example.org" || acc.IMAP.PasswordCommand != "pass show mail/personal" ||
		acc.Maildir != filepath.Join(home, "Mail", "personal") {
		t.Errorf("written account %+v", acc)
	}

	// Input that ends before a required answer writes nothing.
	out.Reset()
	errb.Reset()
	other := filepath.Join(home, "other.yaml")
	g.config = other
	code = runInit(t.Context(), g, initOptions{tls: "implicit", noCheck: true}, strings.NewReader("work\nimap.example.org\n"))
	if code != exitUsage || !strings.Contains(errb.String(), "no answer for Login name") || !strings.Contains(errb.String(), "give --user") || exists(other) {
		t.Errorf("early end of input: exit %d, stderr %q, file written %v", code, errb.String(), exists(other))
	}
}
