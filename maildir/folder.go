package maildir

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Root is an account's Maildir root: every mailbox is a folder below it.
// It works on the operating system's file system unless made by
// NewRootFS.
type Root struct {
	Dir string
	// Layout maps mailbox names to folders; nil is Verbatim.
	Layout Layout
	fsys   FS // nil: the operating system's
}

// disk returns the file system r works on.
func (r Root) disk() FS { return orOS(r.fsys) }

// Path maps a mailbox's hierarchy levels to its folder, relative to the
// root, as the root's layout places it.
func (r Root) Path(levels []string) (string, error) { return r.layout().Encode(levels) }

// Folder opens the folder at a path relative to the root.
func (r Root) Folder(rel string) Folder {
	return Folder{Dir{Path: filepath.Join(r.Dir, filepath.FromSlash(rel)), fsys: r.fsys}}
}

// MkdirAll creates a plain directory below the root: a hierarchy level
// that holds no messages. As Dir.Init does, it creates missing levels
// with mode 0700 and fsyncs their parents: Init trusts a directory it
// finds, so a folder created below this one later would otherwise be
// lost with it in a power cut.
// A layout without nested levels (Maildir++) has no such directories:
// it creates nothing.
func (r Root) MkdirAll(rel string) error {
	if !r.layout().Nested() {
		return nil
	}
	p := filepath.Join(r.Dir, filepath.FromSlash(rel))
	if err := makeDirs(r.disk(), filepath.Clean(p)); err != nil {
		return fmt.Errorf("create directory %s: %w", p, err)
	}
	return nil
}

// Folder presents a Dir with the method set of the sync engine's folder:
// only satchel's value types cross it.
type Folder struct{ Dir Dir }

// Init creates the folder if missing.
func (f Folder) Init() error { return f.Dir.Init() }

// NewKey returns a new unique message key.
func (f Folder) NewKey() string { return NewKey() }

// Deliver writes a message durably under key; see Dir.DeliverKey.
func (f Folder) Deliver(ctx context.Context, key string, body io.Reader, flags mail.Flags, date time.Time) (messageID string, err error) {
	d, err := f.Dir.DeliverKey(ctx, key, body, flags, date)
	if err != nil {
		return "", err
	}
	return d.MessageID, nil
}

// Stage writes a message under key into tmp/ (see Dir.Stage) and returns
// what finishes its delivery, with its Message-ID.
func (f Folder) Stage(ctx context.Context, key string, body io.Reader, flags mail.Flags, date time.Time) (interface {
	Commit() error
	Abort()
}, string, error) {
	st, err := f.Dir.Stage(ctx, key, body, flags, date)
	if err != nil {
		return nil, "", err
	}
	return stagedCommit{st}, st.MessageID(), nil
}

// StageLink stages under key a message that the durable file src holds,
// linked or else copied (see Dir.StageLink).
func (f Folder) StageLink(ctx context.Context, key, src string, flags mail.Flags) (interface {
	Commit() error
	Abort()
}, bool, error) {
	st, copied, err := f.Dir.StageLink(ctx, key, src, flags)
	if err != nil {
		return nil, false, err
	}
	return stagedCommit{st}, copied, nil
}

// Locate returns the path of key's file (see Dir.Locate).
func (f Folder) Locate(key string, seen mail.Flags) (string, bool, error) {
	return f.Dir.Locate(key, seen)
}

// stagedCommit is a Staged whose Commit reports only its error.
type stagedCommit struct{ *Staged }

func (s stagedCommit) Commit() error {
	_, err := s.Staged.Commit()
	return err
}

// SyncDirs makes the folder's new/ and cur/ entries durable.
func (f Folder) SyncDirs() error { return f.Dir.SyncDirs() }

// Find returns the flags of key's file.
func (f Folder) Find(key string) (mail.Flags, bool, error) {
	e, ok, err := f.Dir.Find(key)
	return e.Flags, ok, err
}

// SetFlags renames key's file to carry flags.
func (f Folder) SetFlags(key string, flags mail.Flags) error {
	_, err := f.Dir.SetFlags(key, flags)
	return err
}

// SetFlagsLazy is SetFlags without the directory fsyncs (see SyncDirs);
// seen is the flags a listing last saw on the file.
func (f Folder) SetFlagsLazy(key string, seen, flags mail.Flags) error {
	_, err := f.Dir.SetFlagsLazy(key, seen, flags)
	return err
}

// RemoveLazy is Remove without the directory fsync (see SyncDirs); an
// absent file is not an error. seen is as for SetFlagsLazy.
func (f Folder) RemoveLazy(key string, seen mail.Flags) error {
	err := f.Dir.RemoveLazy(key, seen)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Remove deletes key's file; a file already gone is not an error, so that
// a step retried after a crash succeeds. The removal may then have been
// made by a process killed before its fsync, visible but not yet durable:
// new/ and cur/ are fsynced before it counts as done. A folder that does
// not exist has nothing to remove.
func (f Folder) Remove(key string) error {
	err := f.Dir.Remove(key)
	if errors.Is(err, fs.ErrNotExist) {
		err = f.Dir.syncSubdirs()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	return err
}

// Count is the number of messages in the folder; a folder not created yet
// has none.
func (f Folder) Count() (int, error) {
	n, err := f.Dir.Count()
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return n, err
}

// scanAttempts bounds how often Scan lists a folder again because a mail
// reader changed it during the listing.
const scanAttempts = 4

// Scan lists the folder's messages, key → flags. A rename by a mail
// reader during the listing could hide a file from it, so the listing is
// repeated while new/ or cur/ changed (their mtime) during it. A folder
// not created yet has no messages.
func (f Folder) Scan() (map[string]mail.Flags, error) { return f.ScanShared(nil) }

// ScanShared is Scan keeping, for each key found, the string same returns
// for it (equal to the key): a caller that holds the keys already passes
// its own copy, and the listing of a large folder costs it no second one.
// same may be nil.
func (f Folder) ScanShared(same func(key string) string) (map[string]mail.Flags, error) {
	for attempt := 1; ; attempt++ {
		before, err := f.dirStamps()
		if errors.Is(err, fs.ErrNotExist) {
			return map[string]mail.Flags{}, nil
		}
		if err != nil {
			return nil, err
		}
		files, err := f.Dir.scanFlags(same)
		if err != nil {
			return nil, err
		}
		after, err := f.dirStamps()
		if err != nil {
			return nil, err
		}
		if before == after || attempt == scanAttempts {
			return files, nil
		}
	}
}

// EachFile calls fn with the key and flags of each message file in new/
// and cur/, a directory block at a time, without holding the list: a key
// found in both is reported twice. A missing folder has no files.
func (f Folder) EachFile(fn func(key string, flags mail.Flags)) error {
	for _, sub := range []string{subNew, subCur} {
		err := f.Dir.eachEntry(sub, func(e Entry) bool {
			fn(e.Key, e.Flags)
			return true
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("list %s: %w", f.Dir.Path, err)
		}
	}
	return nil
}

// FindAll finds the files of several keys at once: each first under the
// name its flags in want give it (a stat), the others by listing new/ and
// then cur/, and those still missing by listing both again (a mail reader
// may rename a file while a listing passes it). It returns the flags of
// the files found, by key. However many keys, it lists the folder at most
// twice, where Find lists it for each.
func (f Folder) FindAll(want map[string]mail.Flags) (map[string]mail.Flags, error) {
	found := make(map[string]mail.Flags, len(want))
	missing := map[string]bool{}
	for key, flags := range want {
		if e, ok := f.Dir.guess(key, flags); ok {
			found[key] = e.Flags
		} else {
			missing[key] = true
		}
	}
	for range 2 {
		if len(missing) == 0 {
			break
		}
		err := f.EachFile(func(key string, flags mail.Flags) {
			if missing[key] {
				found[key] = flags
				delete(missing, key)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return found, nil
}

// dirStamps identifies the state of new/ and cur/ by their mtimes.
func (f Folder) dirStamps() ([2]time.Time, error) {
	var s [2]time.Time
	for i, sub := range []string{subNew, subCur} {
		fi, err := f.Dir.disk().Stat(filepath.Join(f.Dir.Path, sub))
		if err != nil {
			return s, err
		}
		s[i] = fi.ModTime()
	}
	return s, nil
}

// Info describes a local message as the server would see it.
type Info = mail.LocalInfo

// Info reads the file of key once to describe it. seen is the flags a
// listing last saw on the file: it is found by the name they give, with a
// few stats, and the folder listed only if it moved since (see guess).
func (f Folder) Info(key string, seen mail.Flags) (Info, error) {
	e, ok, err := f.Dir.lookup(key, &seen, 0)
	if err != nil {
		return Info{}, err
	}
	if !ok {
		return Info{}, fmt.Errorf("read %q in %s: %w", key, f.Dir.Path, fs.ErrNotExist)
	}
	file, err := open(f.Dir.disk(), e.Path(f.Dir))
	if err != nil {
		return Info{}, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return Info{}, err
	}
	h := sha256.New()
	sniff := &headerSniffer{}
	cw := &countWriter{w: io.Discard}
	hdr := &headerHasher{h: h}
	// The sniffer reads the file as stored (LF); size and hash are of the
	// CRLF form.
	lf := io.TeeReader(bufio.NewReader(file), sniff)
	if _, err := io.Copy(io.MultiWriter(cw, hdr), NewCRLFReader(lf)); err != nil {
		return Info{}, fmt.Errorf("read %q in %s: %w", key, f.Dir.Path, err)
	}
	info := Info{Size: cw.n, ModTime: fi.ModTime(), Flags: e.Flags, MessageID: sniff.messageID()}
	copy(info.HeaderHash[:], h.Sum(nil))
	return info, nil
}

// headerHasher hashes the bytes up to and including the first empty line
// (CRLF form), or everything if there is none.
type headerHasher struct {
	h    io.Writer
	last [4]byte
	done bool
}

func (w *headerHasher) Write(p []byte) (int, error) {
	if w.done {
		return len(p), nil
	}
	for i, c := range p {
		w.last = [4]byte{w.last[1], w.last[2], w.last[3], c}
		if w.last == [4]byte{'\r', '\n', '\r', '\n'} {
			w.h.Write(p[:i+1])
			w.done = true
			return len(p), nil
		}
	}
	w.h.Write(p)
	return len(p), nil
}

// OpenCRLF opens the file of key as the server must receive it: LF line
// endings turned into CRLF. seen is as for Info.
func (f Folder) OpenCRLF(key string, seen mail.Flags) (io.ReadCloser, error) {
	e, ok, err := f.Dir.lookup(key, &seen, 0)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("open %q in %s: %w", key, f.Dir.Path, fs.ErrNotExist)
	}
	file, err := open(f.Dir.disk(), e.Path(f.Dir))
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{NewCRLFReader(bufio.NewReader(file)), file}, nil
}

// MoveFile moves the file of key from one folder to another below the
// root, keeping its name, and fsyncs both directories (the new entry
// first, so a power cut can duplicate the file but never lose it).
func (r Root) MoveFile(fromRel, toRel, key string) error {
	from, to := r.Folder(fromRel).Dir, r.Folder(toRel).Dir
	if err := to.Init(); err != nil {
		return err
	}
	e, ok, err := from.Find(key)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("move %q from %s: %w", key, from.Path, fs.ErrNotExist)
	}
	fsys := r.disk()
	if err := fsys.Rename(e.Path(from), filepath.Join(to.Path, e.Subdir, e.Name)); err != nil {
		return fmt.Errorf("move %q to %s: %w", key, to.Path, err)
	}
	if err := syncDir(fsys, filepath.Join(to.Path, e.Subdir)); err != nil {
		return err
	}
	return syncDir(fsys, filepath.Join(from.Path, e.Subdir))
}
