package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	gosync "sync"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/sync/imapremote"
)

// loadConfig finds and loads the configuration file.
func loadConfig(g *globals) (*config.Config, error) {
	path := g.config
	if path == "" {
		p, err := config.DefaultPath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		g.log.Warn(w)
	}
	return cfg, nil
}

// loadAccounts loads the configuration and selects the named accounts
// (all of them when none is named).
func loadAccounts(g *globals, names []string) ([]config.Account, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, err
	}
	return cfg.Select(names)
}

// openTrace opens the --trace file, shared by every connection of the run.
func openTrace(g *globals) (io.Writer, func(), error) {
	if g.trace == "" {
		return nil, func() {}, nil
	}
	f, err := os.OpenFile(g.trace, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--trace: %w", err)}
	}
	return &lockedWriter{w: f}, func() { f.Close() }, nil
}

type lockedWriter struct {
	mu gosync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// remoteOptions turns an account's configuration into IMAP options.
func remoteOptions(acc config.Account, trace io.Writer, g *globals) imapremote.Options {
	return imapremote.Options{
		Host:        acc.IMAP.Host,
		Port:        acc.IMAP.Port,
		TLS:         acc.IMAP.TLS,
		Fingerprint: acc.IMAP.TLSFingerprint,
		User:        acc.IMAP.User,
		Auth:        acc.IMAP.Auth,
		Password:    passwordFunc(acc),
		Trace:       trace,
		Logger:      g.log.With("account", acc.Name),
	}
}

// passwordFunc returns the account's password source. password_command
// runs with sh; its output, less one trailing newline, is the password and
// is never logged.
func passwordFunc(acc config.Account) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		if acc.IMAP.PasswordCommand == "" {
			return acc.IMAP.Password, nil
		}
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", acc.IMAP.PasswordCommand)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(errb.String())
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				msg = msg[:i]
			}
			if msg != "" {
				msg = ": " + msg
			}
			return "", fmt.Errorf("password_command of account %s failed (%v%s); check accounts.imap.password_command", acc.Name, err, msg)
		}
		p := strings.TrimSuffix(out.String(), "\n")
		p = strings.TrimSuffix(p, "\r")
		if p == "" {
			return "", fmt.Errorf("password_command of account %s printed nothing; check accounts.imap.password_command", acc.Name)
		}
		return p, nil
	}
}
