package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// Stamp identifies the state of the folder's message list: the
// modification times of new/ and cur/, which every delivery, rename and
// removal of a message changes. latest is the later of the two, for the
// caller to tell whether a change in the same clock tick could hide
// behind it. A folder not created yet has the empty stamp.
func (f Folder) Stamp() (stamp string, latest time.Time, err error) {
	var ns [2]int64
	for i, sub := range []string{subNew, subCur} {
		fi, err := f.Dir.disk().Stat(filepath.Join(f.Dir.Path, sub))
		if errors.Is(err, fs.ErrNotExist) {
			return "", time.Time{}, nil
		}
		if err != nil {
			return "", time.Time{}, err
		}
		ns[i] = fi.ModTime().UnixNano()
		if fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
	}
	return fmt.Sprintf("%d/%d", ns[0], ns[1]), latest, nil
}
