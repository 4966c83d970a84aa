package maildir

import (
	"errors"
	"path/filepath"

	"github.com/satchel-mail/satchel/sync/mail"
)

// A Watcher follows the message lists of folders below a root while a
// sync changes them: which messages had a file added, removed or renamed
// in new/ or cur/, by this process or any other. A sync that changed a
// folder can then tell, without listing it, whether anything but its
// own writes happened there: it checks the messages named against the
// index, and the folder's stamp stays trusted (see Folder.Stamp).
//
// On Linux it is one inotify instance for the run; elsewhere, or on a
// Root whose FS is not the operating system's, NewWatcher returns
// ErrWatchUnsupported and callers do without.
type Watcher struct {
	w    *watcher // nil: unsupported
	root Root
}

// ErrWatchUnsupported: the folders cannot be watched here.
var ErrWatchUnsupported = errors.New("watching folders is not supported here")

// NewWatcher starts a Watcher for the folders below r. Close releases it.
func (r Root) NewWatcher() (*Watcher, error) {
	if r.fsys != nil {
		return nil, ErrWatchUnsupported
	}
	w, err := newWatcher()
	if err != nil {
		return nil, err
	}
	return &Watcher{w: w, root: r}, nil
}

// Watch starts following the folder at rel (relative to the root). The
// folder's new/ and cur/ must exist. Changes made before Watch returns
// may or may not be reported: take the folder's stamp after it.
//
// It returns a *FolderWatch, as an interface the sync engine's Watcher
// also names, so that a *Watcher serves it as it is.
func (w *Watcher) Watch(rel string) (interface {
	Changed() (map[string]*mail.Flags, bool)
	Close()
}, error) {
	dir := w.root.Folder(rel).Dir.Path
	fw, err := w.w.watch([]string{filepath.Join(dir, subNew), filepath.Join(dir, subCur)})
	if err != nil {
		return nil, err
	}
	return fw, nil
}

// Close stops every watch and releases the watcher.
func (w *Watcher) Close() error { return w.w.close() }

// Changed returns the messages whose files were added to, removed from or
// renamed in the folder's new/ or cur/ since Watch, by key: the flags of
// the file the events left there, nil if they left none (the file is
// gone, or was there before Watch and untouched since: a caller must not
// take nil for absence of a message it did not see go). ok is false when
// that cannot be told: the kernel's queue of events overflowed, a
// directory was moved or removed, a name that is not a message's
// (ParseName) appeared or went, or the events left two files for a key.
// It may be called more than once; each call reports everything since
// Watch, as the files are now.
func (fw *FolderWatch) Changed() (changed map[string]*mail.Flags, ok bool) { return fw.changed() }

// Close stops following the folder.
func (fw *FolderWatch) Close() { fw.close() }
