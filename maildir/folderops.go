package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// ErrFolderNotEmpty: a folder to be removed still holds files.
var ErrFolderNotEmpty = errors.New("folder is not empty")

// RenameFolder moves a folder below the root to another path, with what
// is below it, and fsyncs both parent directories (the new entry first).
// A folder already at the new path and gone from the old one was moved
// before (a step repeated after a crash, or a parent's rename that took
// it along): that is not an error. Anything at the new path otherwise is.
func (r Root) RenameFolder(fromRel, toRel string) error {
	fsys := r.disk()
	from := filepath.Join(r.Dir, filepath.FromSlash(fromRel))
	to := filepath.Join(r.Dir, filepath.FromSlash(toRel))
	_, ferr := fsys.Stat(from)
	if _, err := fsys.Stat(to); err == nil {
		if errors.Is(ferr, fs.ErrNotExist) && isFolderDir(fsys, to) {
			// Moved by a run killed before its fsyncs, perhaps: made
			// durable now.
			if err := syncDir(fsys, filepath.Dir(to)); err != nil {
				return err
			}
			if err := syncDir(fsys, filepath.Dir(from)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}
		return fmt.Errorf("move folder %s to %s: %w", fromRel, toRel, fs.ErrExist)
	}
	if ferr != nil {
		return fmt.Errorf("move folder %s: %w", fromRel, ferr)
	}
	if err := makeDirs(fsys, filepath.Dir(to)); err != nil {
		return fmt.Errorf("move folder %s to %s: %w", fromRel, toRel, err)
	}
	if err := fsys.Rename(from, to); err != nil {
		return fmt.Errorf("move folder %s to %s: %w", fromRel, toRel, err)
	}
	if err := syncDir(fsys, filepath.Dir(to)); err != nil {
		return err
	}
	return syncDir(fsys, filepath.Dir(from))
}

// RemoveFolder removes an empty folder: its tmp/, new/ and cur/, then the
// directory itself unless something else is in it (folders below it in
// the verbatim layout, another program's files), which stays as a plain
// directory. A message in new/ or cur/, or a delivery under way in tmp/,
// fails it with ErrFolderNotEmpty and removes nothing. A missing folder
// is not an error. The root itself is never removed.
func (r Root) RemoveFolder(rel string) error {
	fsys := r.disk()
	dir := filepath.Join(r.Dir, filepath.FromSlash(rel))
	for _, sub := range []string{subTmp, subNew, subCur} {
		ents, err := readDir(fsys, filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("remove folder %s: %w", rel, err)
		}
		if len(ents) > 0 {
			return fmt.Errorf("remove folder %s: %w: %s holds %d entries", rel, ErrFolderNotEmpty, sub, len(ents))
		}
	}
	// cur/ first: without it the directory is no folder any more, and a
	// crash part way leaves nothing a later run reads as one.
	for _, sub := range []string{subCur, subNew, subTmp} {
		if err := fsys.Remove(filepath.Join(dir, sub)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove folder %s: %w", rel, err)
		}
	}
	if err := syncDir(fsys, dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if filepath.Clean(dir) == filepath.Clean(r.Dir) {
		return nil
	}
	if ents, err := readDir(fsys, dir); err == nil && len(ents) == 0 {
		if err := fsys.Remove(dir); err != nil {
			return fmt.Errorf("remove folder %s: %w", rel, err)
		}
		return syncDir(fsys, filepath.Dir(dir))
	}
	return nil
}
