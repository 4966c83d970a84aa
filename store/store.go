// Package store owns satchel's SQLite index: its schema and migrations, the
// state of each synced mailbox and the last synced state of each message,
// and the per-account lock that keeps two satchel runs apart.
//
// It implements the index the sync engine defines and must not import the
// engine, go-imap or the maildir package; the values it stores are the
// shared types of package mail.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

var (
	// ErrTooNew is returned by Open when the index has a schema version
	// this binary does not know: downgrading would lose or misread data.
	ErrTooNew = errors.New("index was written by a newer satchel")
	// ErrNoMessage is returned by Tx.SetFlags when the message has no row.
	ErrNoMessage = errors.New("no such message in the index")
	// ErrNoMailbox is returned by Tx.SaveMailbox when the mailbox has no row.
	ErrNoMailbox = errors.New("no such mailbox in the index")
	// ErrKeyInUse is returned by Tx.PutMessage when another UID of the
	// mailbox already maps to the Maildir key.
	ErrKeyInUse = errors.New("maildir key already used by another message")
)

// Index is an open satchel index. Its methods are safe for concurrent use.
type Index struct {
	db    *sql.DB
	path  string
	stmts statements
}

// dsnParams are applied by the driver to every connection it opens, so
// each pooled connection has foreign keys on and the same durability and
// lock-waiting behaviour. The pool is kept (rather than one connection) so
// that a reader – a status command, or the engine reading through Index
// while an Update is open – reads the last committed state under WAL
// instead of queueing behind the writer.
//
// _txlock=immediate makes every transaction BEGIN IMMEDIATE: a deferred
// transaction that reads and then writes cannot wait for the write lock
// (SQLite returns SQLITE_BUSY at once to avoid deadlock, busy_timeout
// notwithstanding), an immediate one takes it up front and waits.
//
// mode=rw: the file is created by Open with mode 0600, never by SQLite.
const dsnParams = "mode=rw&_foreign_keys=on&_journal_mode=WAL&_synchronous=FULL&_busy_timeout=10000&_txlock=immediate"

// Open opens the index at path, creating it and its parent directory if
// missing, and brings its schema up to date. The index holds mailbox names
// and Message-IDs, so the directory it creates is 0700 and the file 0600.
func Open(ctx context.Context, path string) (*Index, error) {
	if path == "" {
		return nil, errors.New("open index: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}

	db, err := sql.Open("sqlite3", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	ix := &Index{db: db, path: path}
	if err := ix.init(ctx, abs); err != nil {
		db.Close()
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	return ix, nil
}

func (ix *Index) init(ctx context.Context, abs string) error {
	if err := ix.db.PingContext(ctx); err != nil {
		return err
	}
	migrations, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return err
	}
	if err := migrate(ctx, ix.db, migrations); err != nil {
		return err
	}
	// SQLite gives the -wal and -shm files the main file's mode when it
	// creates them; these may predate this run and a looser mode.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Chmod(abs+suffix, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return ix.stmts.prepare(ctx, ix.db)
}

// dsn is the driver's name for the index at the absolute path abs. It is a
// file: URI so that '?' or '#' in the path are escaped, not taken for
// parameters.
func dsn(abs string) string {
	u := url.URL{Scheme: "file", Path: abs}
	return u.String() + "?" + dsnParams
}

// Close closes the index. A transaction still running in Update fails.
func (ix *Index) Close() error {
	err := ix.stmts.close()
	if cerr := ix.db.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close index %s: %w", ix.path, err)
	}
	return nil
}

// Path is the path the index was opened with.
func (ix *Index) Path() string { return ix.path }
