package main

// Opening an account: every command that reads or writes an account's
// index or Maildir opens it here, in one order – lock, login (sync),
// index, identity check, run marker – so that the guards hold whichever
// command runs.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/store"
	"github.com/satchel-mail/satchel/sync/imapremote"
)

// errNotSynced: the account has no index yet, and the command needs one.
var errNotSynced = errors.New("not synced yet")

// lockWhen says when opening takes the account's lock.
type lockWhen int

const (
	// lockNever: the command only reads what a sync writes atomically
	// (status, mailboxes), and must not wait for one.
	lockNever lockWhen = iota
	// lockAlways takes the lock, creating its file.
	lockAlways
	// lockIfPresent takes the lock only where its file exists: a dry run
	// creates nothing, and where there is no lock file no run holds it.
	lockIfPresent
)

// openMode says how a command opens an account.
type openMode struct {
	// command is what the user runs again once the lock is free ("sync"
	// adds "or use sync --wait" to the message); "" for a command without
	// --wait.
	command string
	lock    lockWhen
	wait    bool
	// login logs in before anything is created on disk, so that a wrong
	// host or password leaves no trace; the lock is taken before the
	// login only where the index's directory exists already.
	login bool
	// indexed: the account must have an index already; errNotSynced
	// otherwise. Without it, a missing index is created, or read as an
	// empty one when readOnly.
	indexed bool
	// readOnly opens a private copy of the index and writes nothing to
	// the Maildir: the identity check only checks, no run is marked.
	readOnly bool
	// guard checks that the Maildir is the index's (maildir.CheckIdentity)
	// and, unless readOnly, marks the run (markRunning).
	guard bool
	// setAside moves the index aside first, to build it anew (reindex).
	setAside bool
}

// openedAccount is an account opened for a command: its lock held, its index
// open, its Maildir checked against it, the run marked. close undoes it
// all, in reverse.
type openedAccount struct {
	cfg    config.Account
	root   maildir.Root
	ix     *store.Index
	remote imapremote.Options
	// first is the connection the login left open, handed out by the
	// first dial.
	first  *imapremote.Client
	undo   []func()
	closed bool
}

// openAccount opens acc as mode says. An error means nothing of the
// account was opened, and nothing is left held.
func openAccount(ctx context.Context, g *globals, acc config.Account, trace io.Writer, mode openMode) (_ *openedAccount, err error) {
	a := &openedAccount{cfg: acc, root: accountRoot(acc), remote: remoteOptions(acc, trace, g)}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if mode.indexed {
		if _, err := os.Stat(acc.Index); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w (no index at %s)", errNotSynced, acc.Index)
		}
	}
	lockPath := acc.Index + ".lock"
	locked := false
	lock := func() error {
		l, err := lockAccount(ctx, g, acc, mode.wait, mode.command)
		if err != nil {
			return err
		}
		locked = true
		a.undo = append(a.undo, func() { l.Unlock() })
		return nil
	}
	// lockable: the lock can be taken without creating anything a dry
	// run must not, or, before a login, without creating the index's
	// directory.
	lockable := func() bool {
		p := filepath.Dir(lockPath)
		if mode.lock == lockIfPresent {
			p = lockPath
		}
		_, err := os.Stat(p)
		return err == nil
	}
	switch {
	case mode.lock == lockNever:
	case mode.lock == lockAlways && !mode.login, lockable():
		if err := lock(); err != nil {
			return nil, err
		}
	}
	if mode.login {
		c, err := imapremote.Dial(ctx, a.remote)
		if err != nil {
			return nil, loginError(acc, err)
		}
		a.first = c
		a.undo = append(a.undo, func() {
			if a.first != nil {
				a.first.Close()
			}
		})
		if !locked && (mode.lock == lockAlways || mode.lock == lockIfPresent && lockable()) {
			if err := lock(); err != nil {
				return nil, err
			}
		}
	}
	if mode.setAside {
		if err := setIndexAside(acc.Index, time.Now()); err != nil {
			return nil, err
		}
	}
	open := store.Open
	if mode.readOnly {
		open = store.OpenReadOnly
	}
	ix, err := open(ctx, acc.Index)
	if err != nil {
		return nil, err
	}
	a.ix = ix
	a.undo = append(a.undo, func() { a.ix.Close() })
	if !mode.guard {
		return a, nil
	}
	// Creates the Maildir root on a first sync.
	if err := a.root.CheckIdentity(ctx, a.ix, acc.Name, !mode.readOnly); err != nil {
		return nil, err
	}
	if !mode.readOnly {
		done, err := markRunning(ctx, g, a.ix, a.root)
		if err != nil {
			return nil, err
		}
		a.undo = append(a.undo, done)
	}
	return a, nil
}

// dial opens a connection to the account's server: the one the login
// left open first, then new ones.
func (a *openedAccount) dial(ctx context.Context) (*imapremote.Client, error) {
	if c := a.first; c != nil {
		a.first = nil
		return c, nil
	}
	c, err := imapremote.Dial(ctx, a.remote)
	if err != nil {
		return nil, loginError(a.cfg, err)
	}
	return c, nil
}

// close releases what openAccount took, last first; it may be called
// more than once.
func (a *openedAccount) close() {
	if a.closed {
		return
	}
	a.closed = true
	for i := len(a.undo) - 1; i >= 0; i-- {
		a.undo[i]()
	}
}

// lockAccount takes acc's lock. Held by another run, it fails with
// store.ErrLocked, or with wait waits for that run to end. command names
// the command whose --wait would wait ("" for none).
func lockAccount(ctx context.Context, g *globals, acc config.Account, wait bool, command string) (*store.FileLock, error) {
	path := acc.Index + ".lock"
	l, err := store.Lock(ctx, path, false)
	if errors.Is(err, store.ErrLocked) && wait {
		g.log.Info("waiting for another satchel run to finish", "account", acc.Name, "lock", path)
		l, err = store.Lock(ctx, path, true)
	}
	switch {
	case err == nil:
		return l, nil
	case ctx.Err() != nil:
		return nil, err
	case errors.Is(err, store.ErrLocked) && command != "":
		return nil, fmt.Errorf("%w (%s); try again when it has finished, or use %s --wait", store.ErrLocked, path, command)
	case errors.Is(err, store.ErrLocked):
		return nil, fmt.Errorf("%w (%s); try again when it has finished", store.ErrLocked, path)
	}
	return nil, fmt.Errorf("%w; check accounts.index: its directory must be one satchel can create and write", err)
}
