package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Meta returns the value recorded under key in the index's meta table;
// false if there is none.
func (ix *Index) Meta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := ix.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read meta %q: %w", key, err)
	}
	return v, true, nil
}

// SetMeta records value under key, replacing any earlier value, in one
// transaction.
func (ix *Index) SetMeta(ctx context.Context, key, value string) error {
	err := ix.Update(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("write meta %q: %w", key, err)
	}
	return nil
}
