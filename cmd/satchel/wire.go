package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	gosync "sync"
	"time"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
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
	if err := checkTagMaps(cfg); err != nil {
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
	_, accounts, err := loadSelection(g, names)
	return accounts, err
}

// loadSelection is loadAccounts with the configuration they came from.
func loadSelection(g *globals, names []string) (*config.Config, []config.Account, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, nil, err
	}
	accounts, err := cfg.Select(names)
	if err != nil {
		return nil, nil, err
	}
	return cfg, accounts, nil
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
		Token:       tokenFunc(acc),
		Trace:       trace,
		Compress:    acc.IMAP.Compress,
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
		return secretCommand(ctx, acc.Name, "password_command", acc.IMAP.PasswordCommand)
	}
}

// accountRoot is the account's Maildir root with its layout (the
// configuration allows only layouts that exist).
func accountRoot(acc config.Account) maildir.Root {
	layout, err := maildir.LayoutByName(acc.Layout)
	if err != nil {
		layout = maildir.Verbatim
	}
	return maildir.Root{Dir: acc.Maildir, Layout: layout}
}

// folderPaths lists the paths of the folders below root that its layout
// can decode.
func folderPaths(root maildir.Root) ([]string, error) {
	fs, err := root.Folders()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Rel
	}
	return out, nil
}

// since resolves sync.since against now: a date is taken as UTC
// midnight, a number of days counts back from now.
func since(s config.Since, now time.Time) time.Time {
	switch {
	case !s.Date.IsZero():
		return s.Date
	case s.Days > 0:
		return now.AddDate(0, 0, -s.Days)
	}
	return time.Time{}
}

// syncDeps wires an opened account into the engine: its connections, its
// index and its Maildir; a dry run reads the Maildir as it is.
func syncDeps(a *openedAccount, dryRun bool) satsync.Deps {
	local := a.root
	folder := func(rel string) satsync.Folder { return local.Folder(rel) }
	if dryRun {
		folder = func(rel string) satsync.Folder { return dryFolder{local.Folder(rel)} }
	}
	return satsync.Deps{
		Connect: func(ctx context.Context) (satsync.Remote, error) {
			c, err := a.dial(ctx)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Index:        a.ix,
		Folder:       folder,
		LocalPath:    local.Path,
		MkdirAll:     local.MkdirAll,
		MoveFile:     local.MoveFile,
		RenameFolder: local.RenameFolder,
		RemoveFolder: local.RemoveFolder,
		Watcher: func() (satsync.Watcher, error) {
			if dryRun {
				return nil, maildir.ErrWatchUnsupported
			}
			w, err := local.NewWatcher()
			if err != nil {
				return nil, err
			}
			return w, nil
		},
		LocalFolders: func() ([]satsync.LocalFolder, error) {
			fs, err := local.Folders()
			out := make([]satsync.LocalFolder, len(fs))
			for i, f := range fs {
				out[i] = satsync.LocalFolder{Rel: f.Rel, Levels: f.Levels}
			}
			return out, err
		},
	}
}

// readFolder is a Maildir folder that can also be read as stored, for
// satchel verify.
type readFolder struct{ maildir.Folder }

// Open opens key's file as stored (LF line endings).
func (f readFolder) Open(key string) (io.ReadCloser, error) {
	e, ok, err := f.Dir.Find(key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("open %q in %s: %w", key, f.Dir.Path, fs.ErrNotExist)
	}
	return os.Open(e.Path(f.Dir))
}
