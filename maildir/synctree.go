package maildir

import (
	"errors"
	"io/fs"
	"path/filepath"
)

// SyncTree fsyncs every directory below the root and the root itself. A run that was killed may have created a folder, delivered or
// renamed a file without the directory fsync that makes it durable; the
// page cache kept it, so the next run sees it and would build on it (record
// its row, push its flags) while a power cut could still take it away.
// Calling SyncTree first, after an interrupted run, closes that window.
func (r Root) SyncTree() error {
	fsys := r.disk()
	var walk func(dir string) error
	walk = func(dir string) error {
		f, err := open(fsys, dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		ents, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.IsDir() {
				if err := walk(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
		return syncDir(fsys, dir)
	}
	return walk(filepath.Clean(r.Dir))
}
