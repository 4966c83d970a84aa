package store

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func openIndex(t *testing.T, path string) *Index {
	t.Helper()
	ix, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

// rawDB opens the index file without Open, as another tool would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", dsn(abs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func versionRows(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT version FROM schema_version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func tableExists(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var n int
	err := db.QueryRowContext(t.Context(),
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func embeddedMigrations(t *testing.T) []migration {
	t.Helper()
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(sub)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].name != "0001_init.sql" {
		t.Fatalf("embedded migrations = %v, want 0001_init.sql first", ms)
	}
	return ms
}

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	latest := len(embeddedMigrations(t))
	path := filepath.Join(t.TempDir(), "index.db")

	ix := openIndex(t, path)
	if got := versionRows(t, ix.db); len(got) != 1 || got[0] != latest {
		t.Fatalf("schema_version rows after first open = %v, want [%d]", got, latest)
	}
	for _, table := range []string{"mailboxes", "messages"} {
		if !tableExists(t, ix.db, table) {
			t.Errorf("table %s missing", table)
		}
	}
	mb, err := ix.EnsureMailbox(t.Context(), "INBOX", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	// 0001 creates its tables without IF NOT EXISTS: a second run would
	// fail, and the row written above would not survive a re-init.
	ix = openIndex(t, path)
	if got := versionRows(t, ix.db); len(got) != 1 || got[0] != latest {
		t.Fatalf("schema_version rows after reopen = %v, want [%d]", got, latest)
	}
	got, ok, err := ix.Mailbox(t.Context(), "INBOX")
	if err != nil || !ok || got.ID != mb.ID {
		t.Fatalf("Mailbox(INBOX) after reopen = %+v, %v, %v; want id %d", got, ok, err, mb.ID)
	}
}

func TestOpenTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix := openIndex(t, path)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	latest := len(embeddedMigrations(t))

	db := rawDB(t, path)
	if _, err := db.ExecContext(t.Context(), `UPDATE schema_version SET version = ?`, latest+1); err != nil {
		t.Fatal(err)
	}

	ix2, err := Open(t.Context(), path)
	if !errors.Is(err, ErrTooNew) {
		if ix2 != nil {
			ix2.Close()
		}
		t.Fatalf("Open of a version %d index = %v, want ErrTooNew", latest+1, err)
	}
	if got := versionRows(t, db); len(got) != 1 || got[0] != latest+1 {
		t.Errorf("schema_version after refused open = %v, want [%d]", got, latest+1)
	}
}

func TestMigrateFailureLeavesOldSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix := openIndex(t, path)
	if _, err := ix.EnsureMailbox(t.Context(), "INBOX", "INBOX"); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ms := embeddedMigrations(t)

	fsys := fstest.MapFS{}
	for _, m := range ms {
		fsys[m.name] = &fstest.MapFile{Data: []byte(m.sql)}
	}
	next := len(ms) + 1
	// The new table is created, then the migration fails half-way.
	fsys[migrationName(next, "broken")] = &fstest.MapFile{Data: []byte(
		"CREATE TABLE added (x INTEGER);\nDELETE FROM mailboxes;\nINSERT INTO no_such_table VALUES (1);\n")}

	db := rawDB(t, path)
	if err := migrate(t.Context(), db, fsys); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("migrate with a failing migration = %v, want an error naming it", err)
	}
	if got := versionRows(t, db); len(got) != 1 || got[0] != len(ms) {
		t.Errorf("schema_version after failed migration = %v, want [%d]", got, len(ms))
	}
	if tableExists(t, db, "added") {
		t.Error("table of the failed migration exists")
	}
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM mailboxes`).Scan(&n); err != nil || n != 1 {
		t.Errorf("mailboxes after failed migration = %d, %v; want 1", n, err)
	}

	// With the migration fixed, the same index upgrades.
	fsys[migrationName(next, "broken")] = &fstest.MapFile{Data: []byte("CREATE TABLE added (x INTEGER);")}
	if err := migrate(t.Context(), db, fsys); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if got := versionRows(t, db); len(got) != 1 || got[0] != next {
		t.Errorf("schema_version after upgrade = %v, want [%d]", got, next)
	}
	if !tableExists(t, db, "added") {
		t.Error("table of the applied migration missing")
	}
}

func migrationName(v int, name string) string {
	return fmt.Sprintf("%04d_%s.sql", v, name)
}

func TestLoadMigrationsRejectsBadSets(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("SELECT 1;")}
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"gap", fstest.MapFS{"0001_a.sql": sql, "0003_c.sql": sql}, "version 2 missing"},
		{"duplicate", fstest.MapFS{"0001_a.sql": sql, "0001_b.sql": sql}, "same version 1"},
		{"unnumbered", fstest.MapFS{"0001_a.sql": sql, "init.sql": sql}, "init.sql"},
		{"zero", fstest.MapFS{"0000_a.sql": sql}, "0000_a.sql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadMigrations(tc.fsys)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("loadMigrations = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	ms, err := loadMigrations(fstest.MapFS{"0002_b.sql": sql, "0001_a.sql": sql, "notes.txt": sql})
	if err != nil || len(ms) != 2 || ms[0].name != "0001_a.sql" || ms[1].name != "0002_b.sql" {
		t.Fatalf("loadMigrations = %+v, %v; want 0001_a.sql, 0002_b.sql", ms, err)
	}
}
