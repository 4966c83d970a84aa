package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// migrationFS holds the schema as numbered migrations, NNNN_name.sql,
// numbered from 1 without gaps. A released migration is never edited: a
// change to the schema is a new file.
//
// Migrations run inside a transaction with foreign keys on, where PRAGMA
// foreign_keys is a no-op. A migration that rebuilds the mailboxes table
// must therefore not drop it while messages reference it: DROP TABLE
// deletes the rows first, and the delete cascades.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the *.sql files at the root of fsys, ordered by
// version, and checks they are numbered 1..n.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	byVersion := make(map[int]migration, len(names))
	for _, name := range names {
		num, _, ok := strings.Cut(strings.TrimSuffix(path.Base(name), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: name is not NNNN_name.sql", name)
		}
		if prev, dup := byVersion[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s: same version %d", prev.name, name, v)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		byVersion[v] = migration{version: v, name: name, sql: string(b)}
	}
	ms := make([]migration, 0, len(byVersion))
	for v := 1; v <= len(byVersion); v++ {
		m, ok := byVersion[v]
		if !ok {
			return nil, fmt.Errorf("migrations: version %d missing", v)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion reads the version row; 0 when the index is new.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var tables int
	err := q.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).Scan(&tables)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if tables == 0 {
		return 0, nil
	}
	var rows, version int
	err = q.QueryRowContext(ctx, `SELECT count(*), coalesce(max(version), 0) FROM schema_version`).Scan(&rows, &version)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if rows > 1 {
		return 0, fmt.Errorf("read schema version: %d version rows", rows)
	}
	return version, nil
}

// migrate brings the schema of db to the last migration in fsys. The
// pending migrations and the new version row are committed in one
// transaction, so an upgrade that fails or is interrupted leaves the index
// at its old version, whole.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	latest := len(ms)

	// Checked before taking the write lock, so that opening an up-to-date
	// index never waits for another connection's transaction.
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if v > latest {
		return fmt.Errorf("%w (schema version %d, this satchel knows up to %d)", ErrTooNew, v, latest)
	}
	if v == latest {
		return nil
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Another process may have migrated between the check and the lock.
	if v, err = schemaVersion(ctx, tx); err != nil {
		return err
	}
	if v > latest {
		return fmt.Errorf("%w (schema version %d, this satchel knows up to %d)", ErrTooNew, v, latest)
	}
	for _, m := range ms[v:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, latest); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
