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

	"github.com/mattn/go-sqlite3"
)

// OpenReadOnly opens a private in-memory copy of the index at path, for a
// run that must change nothing (sync --dry-run). The file is only read:
// no directory, index, -wal or -shm file is created, nothing on disk is
// migrated, and what is written through the copy (an older schema brought
// up to date, the rows a dry run records) never reaches the file. A
// missing index reads as a new, empty one.
//
// Run it under the account's lock: the copy is taken without SQLite's
// locking when no -wal file exists, which is safe only if no satchel is
// writing the index meanwhile.
func OpenReadOnly(ctx context.Context, path string) (*Index, error) {
	if path == "" {
		return nil, errors.New("open index: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	// One connection: every connection to ":memory:" is a database of its
	// own, and the pool must not open a second, empty one.
	db, err := sql.Open("sqlite3", "file::memory:?_foreign_keys=on")
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	ix := &Index{db: db, path: path}
	if err := ix.initCopy(ctx, abs); err != nil {
		db.Close()
		return nil, fmt.Errorf("open index %s read-only: %w", path, err)
	}
	return ix, nil
}

func (ix *Index) initCopy(ctx context.Context, abs string) error {
	switch _, err := os.Stat(abs); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := copyIndex(ctx, ix.db, abs); err != nil {
			return err
		}
	}
	migrations, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return err
	}
	if err := migrate(ctx, ix.db, migrations); err != nil {
		return err
	}
	return ix.stmts.prepare(ctx, ix.db)
}

// copyIndex copies the database file at abs into dst with SQLite's online
// backup. A cleanly closed index has no -wal file and is opened immutable,
// which creates no -shm or -wal file beside it; a -wal file left by a
// crash holds committed transactions, so the file is then opened
// read-only through it (its -shm already exists, or is created by SQLite).
func copyIndex(ctx context.Context, dst *sql.DB, abs string) error {
	params := "mode=ro&immutable=1"
	if _, err := os.Stat(abs + "-wal"); err == nil {
		params = "mode=ro"
	}
	u := url.URL{Scheme: "file", Path: abs}
	src, err := sql.Open("sqlite3", u.String()+"?"+params)
	if err != nil {
		return err
	}
	defer src.Close()
	sc, err := src.Conn(ctx)
	if err != nil {
		return err
	}
	defer sc.Close()
	dc, err := dst.Conn(ctx)
	if err != nil {
		return err
	}
	defer dc.Close()
	err = dc.Raw(func(d any) error {
		return sc.Raw(func(s any) error {
			b, err := d.(*sqlite3.SQLiteConn).Backup("main", s.(*sqlite3.SQLiteConn), "main")
			if err != nil {
				return err
			}
			if _, err := b.Step(-1); err != nil {
				b.Finish()
				return err
			}
			return b.Finish()
		})
	})
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}
