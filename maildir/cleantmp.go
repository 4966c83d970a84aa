package maildir

import (
	"errors"
	"io/fs"
	"path/filepath"
	"time"
)

// tmpMaxAge is how old a file in tmp/ must be before it is taken for an
// abandoned delivery: the Maildir spec's 36 hours, long enough that no
// mail program is still writing it.
const tmpMaxAge = 36 * time.Hour

// CleanTmp removes from tmp/ the files of the given keys (deliveries of
// this program that a crash interrupted) and any file older than 36
// hours, and nothing else: another program may be delivering right now.
func (f Folder) CleanTmp(own []string, now time.Time) error {
	fsys := f.Dir.disk()
	tmp := filepath.Join(f.Dir.Path, subTmp)
	for _, k := range own {
		if !validKey(k) {
			continue
		}
		if err := fsys.Remove(filepath.Join(tmp, k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	d, err := open(fsys, tmp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < tmpMaxAge {
			continue
		}
		if err := fsys.Remove(filepath.Join(tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
