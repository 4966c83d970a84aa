// Package maildir owns satchel's local message store: Maildir folders on
// disk (https://cr.yp.to/proto/maildir.html). It delivers messages
// durably through tmp/, maps IMAP flags to and from the ":2," info of file
// names, lists, finds, renames and removes message files while mail
// readers change the same folders, converts line ends between IMAP's CRLF
// and the Maildir's LF, and maps mailbox names to local paths.
//
// Every file-system call goes through FS: the operating system's, or one a
// test gives NewRootFS.
//
// It is an adapter: it works on the shared value types of sync/mail and
// must not import the sync engine or go-imap.
package maildir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Subdirectories of a Maildir.
const (
	subTmp = "tmp"
	subNew = "new"
	subCur = "cur"
)

// Dir is one Maildir folder: a directory with cur/, new/ and tmp/.
//
// Other programs (mail readers) use the same folder at the same time: they
// rename files from new/ to cur/ and change the info of names in cur/.
// Methods that look a file up by key therefore retry when a file moves
// under them, and report a message as gone only when it is.
//
// A Dir works on the operating system's file system, or on the one of the
// Root (NewRootFS) it came from.
type Dir struct {
	Path string
	fsys FS // nil: the operating system's
}

// disk returns the file system d works on.
func (d Dir) disk() FS { return orOS(d.fsys) }

// Init creates Path and its cur/, new/ and tmp/ (and any missing parents)
// with mode 0700, whatever the umask, and fsyncs each parent directory
// whose entries changed, so the folder survives a power cut. Existing
// directories are left as they are.
func (d Dir) Init() error {
	if d.Path == "" {
		return errors.New("init maildir: empty path")
	}
	if err := makeDirs(d.disk(), filepath.Clean(d.Path), subTmp, subNew, subCur); err != nil {
		return fmt.Errorf("init maildir %s: %w", d.Path, err)
	}
	return nil
}

// makeDirs creates dir, its missing parents and the named subdirectories
// of dir with mode 0700, whatever the umask, and fsyncs each parent
// directory whose entries changed. Existing directories are left as they
// are.
func makeDirs(fsys FS, dir string, subs ...string) error {
	var missing []string
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := fsys.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	toCreate := make([]string, 0, len(missing)+len(subs))
	for i := len(missing) - 1; i >= 0; i-- {
		toCreate = append(toCreate, missing[i])
	}
	for _, sub := range subs {
		toCreate = append(toCreate, filepath.Join(dir, sub))
	}

	var changed []string // parents to fsync, in creation order
	for _, p := range toCreate {
		created, err := mkdir(fsys, p)
		if err != nil {
			return err
		}
		if created {
			if parent := filepath.Dir(p); len(changed) == 0 || changed[len(changed)-1] != parent {
				changed = append(changed, parent)
			}
		}
	}
	// Deepest first: an entry is only worth persisting once what it
	// points to is.
	for i := len(changed) - 1; i >= 0; i-- {
		if err := syncDir(fsys, changed[i]); err != nil {
			return err
		}
	}
	return nil
}

// mkdir creates one directory with mode 0700 and reports whether it did.
// A directory that already exists (made by someone else meanwhile, too)
// is fine; anything else in its place is an error.
func mkdir(fsys FS, p string) (bool, error) {
	err := fsys.Mkdir(p, 0o700)
	if errors.Is(err, fs.ErrExist) {
		fi, serr := fsys.Stat(p)
		if serr != nil {
			return false, serr
		}
		if !fi.IsDir() {
			return false, fmt.Errorf("%s exists and is not a directory", p)
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Mkdir's mode is masked by the umask; the folder must be private
	// and usable whatever the umask is.
	if err := fsys.Chmod(p, 0o700); err != nil {
		return true, err
	}
	return true, nil
}

// syncDir fsyncs a directory, making the creation, removal and renaming
// of its entries durable.
func syncDir(fsys FS, dir string) error {
	f, err := open(fsys, dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// syncSubdirs fsyncs new/ and cur/, making every rename and removal in
// them durable, whoever made it.
func (d Dir) syncSubdirs() error {
	for _, sub := range []string{subNew, subCur} {
		if err := syncDir(d.disk(), filepath.Join(d.Path, sub)); err != nil {
			return err
		}
	}
	return nil
}

// Entry is one message file found in new/ or cur/.
type Entry struct {
	Key    string
	Subdir string     // "new" or "cur"
	Name   string     // base name
	Flags  mail.Flags // from the ":2," suffix (none for a file without it)
}

// Path returns the file's path in d.
func (e Entry) Path(d Dir) string { return filepath.Join(d.Path, e.Subdir, e.Name) }

// Scan lists new/ and cur/ (names only, no file contents). Dot files,
// directories and names without a key are skipped. It reads new/ before
// cur/: a mail reader that moves a file from new/ to cur/ during the scan
// then makes it appear twice rather than not at all, and a key found twice
// is reported once, preferring cur/. Returns map key → Entry.
func (d Dir) Scan() (map[string]Entry, error) {
	m := make(map[string]Entry)
	for _, sub := range []string{subNew, subCur} {
		err := d.eachEntry(sub, func(e Entry) bool {
			if old, ok := m[e.Key]; ok && old.Subdir == sub {
				// The same key twice in one directory: a rename seen
				// from both sides. Keep the first name, deterministically.
				return true
			}
			m[e.Key] = e
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", d.Path, err)
		}
	}
	return m, nil
}

// scanFlags lists new/ and cur/ as Scan does, as key → flags, without
// the entries' names: the map of a large folder is built once, not as
// entries first. Each key is stored as the string same returns for it
// (nil: the key as found).
func (d Dir) scanFlags(same func(key string) string) (map[string]mail.Flags, error) {
	inNew, inCur := map[string]mail.Flags{}, map[string]mail.Flags{}
	for _, pass := range []struct {
		sub   string
		found map[string]mail.Flags
	}{{subNew, inNew}, {subCur, inCur}} {
		err := d.eachEntry(pass.sub, func(e Entry) bool {
			if _, ok := pass.found[e.Key]; ok {
				// The same key twice in one directory: a rename seen
				// from both sides. Keep the first name, deterministically.
				return true
			}
			key := e.Key
			if same != nil {
				key = same(key)
			}
			pass.found[key] = e.Flags
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", d.Path, err)
		}
	}
	// A key in both is reported once, from cur/. The larger map takes
	// the other's entries: no copy of it is made.
	if len(inNew) > len(inCur) {
		for k, fl := range inCur {
			inNew[k] = fl
		}
		return inNew, nil
	}
	for k, fl := range inNew {
		if _, ok := inCur[k]; !ok {
			inCur[k] = fl
		}
	}
	return inCur, nil
}

// Count returns the number of message files in new/ and cur/, counted as
// Scan counts them, without building the map.
func (d Dir) Count() (int, error) {
	n := 0
	for _, sub := range []string{subNew, subCur} {
		err := d.eachEntry(sub, func(Entry) bool { n++; return true })
		if err != nil {
			return 0, fmt.Errorf("count %s: %w", d.Path, err)
		}
	}
	return n, nil
}

// eachEntry calls fn for every message file of one subdirectory, in
// batches so a large folder is never listed whole, until fn returns false.
func (d Dir) eachEntry(sub string, fn func(Entry) bool) error {
	f, err := open(d.disk(), filepath.Join(d.Path, sub))
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		des, err := f.ReadDir(1024)
		for _, de := range des {
			if de.IsDir() {
				continue
			}
			key, flags, ok := ParseName(de.Name())
			if !ok {
				continue
			}
			if !fn(Entry{Key: key, Subdir: sub, Name: de.Name(), Flags: flags}) {
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// findIn looks for the file of key in one subdirectory.
func (d Dir) findIn(sub, key string) (Entry, bool, error) {
	var found Entry
	ok := false
	err := d.eachEntry(sub, func(e Entry) bool {
		if e.Key == key {
			found, ok = e, true
			return false
		}
		return true
	})
	return found, ok, err
}

// Find locates the file of a key. It looks in cur/, then new/, then cur/
// again: a mail reader may move the file from new/ to cur/ between the
// first two looks, and that must not make the message look gone.
// ok is false if the file is absent.
func (d Dir) Find(key string) (e Entry, ok bool, err error) {
	if !validKey(key) {
		return Entry{}, false, fmt.Errorf("find %q in %s: invalid key: %w", key, d.Path, fs.ErrInvalid)
	}
	for _, sub := range []string{subCur, subNew, subCur} {
		e, ok, err := d.findIn(sub, key)
		if err != nil {
			return Entry{}, false, fmt.Errorf("find %q in %s: %w", key, d.Path, err)
		}
		if ok {
			return e, true, nil
		}
	}
	return Entry{}, false, nil
}

// renameAttempts bounds how often SetFlags and Remove look a file up again
// after it moved under them.
const renameAttempts = 5

// SetFlags renames the file of key so its info carries flags. Keywords
// that Maildir cannot represent are ignored; letters in the old info that
// this package does not own (another program's keywords) are kept. A file
// in new/ moves to cur/ when the flags include \Seen; otherwise it stays
// in its subdirectory. The directories involved are fsynced. Returns the
// new Entry; a missing file returns an error wrapping fs.ErrNotExist. If
// the name would not change, nothing is renamed, but new/ and cur/ are
// fsynced all the same: the rename may have been made by a process killed
// before its fsync, visible but not yet durable.
func (d Dir) SetFlags(key string, flags mail.Flags) (Entry, error) {
	return d.setFlags(key, nil, flags, true)
}

// SetFlagsLazy is SetFlags without the directory fsyncs: the new name is
// durable only after SyncDirs, and nothing may record it before. seen is
// the flags a listing last saw on the file: the file is looked up under
// the name they give before the folder is listed (see guess).
func (d Dir) SetFlagsLazy(key string, seen, flags mail.Flags) (Entry, error) {
	return d.setFlags(key, &seen, flags, false)
}

// guess looks key's file up under the names it most likely has, given
// the flags a listing last saw on it (as satchel and mail readers write
// them: the letters in order): a few stats instead of a listing of a
// directory that may hold 100,000 files. A file under another name is
// not found; the caller then lists.
func (d Dir) guess(key string, seen mail.Flags) (Entry, bool) {
	named := key + infoSep + InfoFromFlags(seen)
	for _, c := range [...]struct{ sub, name string }{{subCur, named}, {subNew, key}, {subNew, named}, {subCur, key}} {
		fi, err := d.disk().Stat(filepath.Join(d.Path, c.sub, c.name))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		_, flags, _ := ParseName(c.name)
		return Entry{Key: key, Subdir: c.sub, Name: c.name, Flags: flags}, true
	}
	return Entry{}, false
}

// lookup finds key's file: first under the name seen gives it, if any,
// on the first attempt only (a rename that raced it lists next time).
func (d Dir) lookup(key string, seen *mail.Flags, attempt int) (Entry, bool, error) {
	if seen != nil && attempt == 0 && validKey(key) {
		if e, ok := d.guess(key, *seen); ok {
			return e, true, nil
		}
	}
	return d.Find(key)
}

func (d Dir) setFlags(key string, seen *mail.Flags, flags mail.Flags, durable bool) (Entry, error) {
	for attempt := range renameAttempts {
		e, ok, err := d.lookup(key, seen, attempt)
		if err != nil {
			return Entry{}, fmt.Errorf("set flags: %w", err)
		}
		if !ok {
			return Entry{}, fmt.Errorf("set flags of %q in %s: %w", key, d.Path, fs.ErrNotExist)
		}
		n := Entry{Key: key, Subdir: e.Subdir, Name: nameWithFlags(key, e.Name, flags)}
		if n.Subdir == subNew && flags.Has(mail.FlagSeen) {
			n.Subdir = subCur
		}
		_, n.Flags, _ = ParseName(n.Name)
		if n.Subdir == e.Subdir && n.Name == e.Name {
			if !durable {
				return e, nil
			}
			if err := d.syncSubdirs(); err != nil {
				return Entry{}, fmt.Errorf("set flags of %q in %s: %w", key, d.Path, err)
			}
			return e, nil
		}
		err = d.disk().Rename(e.Path(d), n.Path(d))
		if errors.Is(err, fs.ErrNotExist) {
			continue // moved by someone else since Find; look again
		}
		if err != nil {
			return Entry{}, fmt.Errorf("set flags of %q in %s: %w", key, d.Path, err)
		}
		if !durable {
			return n, nil
		}
		// The new name first: if only the old entry's removal reached
		// the disk, the message would be lost.
		if err := syncDir(d.disk(), filepath.Join(d.Path, n.Subdir)); err != nil {
			return Entry{}, fmt.Errorf("set flags of %q in %s: %w", key, d.Path, err)
		}
		if n.Subdir != e.Subdir {
			if err := syncDir(d.disk(), filepath.Join(d.Path, e.Subdir)); err != nil {
				return Entry{}, fmt.Errorf("set flags of %q in %s: %w", key, d.Path, err)
			}
		}
		return n, nil
	}
	return Entry{}, fmt.Errorf("set flags of %q in %s: file keeps moving", key, d.Path)
}

// Remove deletes the file of key and fsyncs its directory. A missing file
// returns an error wrapping fs.ErrNotExist.
func (d Dir) Remove(key string) error { return d.remove(key, nil, true) }

// RemoveLazy is Remove without the directory fsync: the removal is
// durable only after SyncDirs, and nothing may record it before. seen is
// as for SetFlagsLazy.
func (d Dir) RemoveLazy(key string, seen mail.Flags) error { return d.remove(key, &seen, false) }

func (d Dir) remove(key string, seen *mail.Flags, durable bool) error {
	for attempt := range renameAttempts {
		e, ok, err := d.lookup(key, seen, attempt)
		if err != nil {
			return fmt.Errorf("remove: %w", err)
		}
		if !ok {
			return fmt.Errorf("remove %q from %s: %w", key, d.Path, fs.ErrNotExist)
		}
		err = d.disk().Remove(e.Path(d))
		if errors.Is(err, fs.ErrNotExist) {
			continue // renamed by someone else since Find; look again
		}
		if err != nil {
			return fmt.Errorf("remove %q from %s: %w", key, d.Path, err)
		}
		if !durable {
			return nil
		}
		if err := syncDir(d.disk(), filepath.Join(d.Path, e.Subdir)); err != nil {
			return fmt.Errorf("remove %q from %s: %w", key, d.Path, err)
		}
		return nil
	}
	return fmt.Errorf("remove %q from %s: file keeps moving", key, d.Path)
}
