package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Linker is the part of an FS that makes hard links, as os.Link does. A
// file system without it gets copies.
type Linker interface {
	Link(oldname, newname string) error
}

func (osFS) Link(oldname, newname string) error { return os.Link(oldname, newname) }

// Locate returns the path of key's file, looked up first under the name
// the flags seen give it (a few stats), then by listing the folder; ok
// is false when there is none.
func (d Dir) Locate(key string, seen mail.Flags) (path string, ok bool, err error) {
	e, ok, err := d.lookup(key, &seen, 0)
	if err != nil || !ok {
		return "", false, err
	}
	return e.Path(d), true, nil
}

// StageLink stages under key a message whose file src already holds it,
// as Stage does with a message read from the server: src is hard-linked
// into tmp/, so the two names share one file and no byte is written
// again. Where the link cannot be made (src on another file system,
// EXDEV; a file system or FS without hard links; too many links) src is
// copied instead, byte for byte, its mtime kept. Removing either name
// later leaves the other whole: a Maildir file is never changed in
// place, only renamed and removed.
//
// src must be durable (a committed delivery): Commit makes only the new
// name durable. A src that is gone fails with an error wrapping
// fs.ErrNotExist. copied reports that a copy was made.
func (d Dir) StageLink(ctx context.Context, key, src string, flags mail.Flags) (st *Staged, copied bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("deliver to %s: %w", d.Path, err)
	}
	if !validKey(key) {
		return nil, false, fmt.Errorf("deliver to %s: invalid key %q: %w", d.Path, key, fs.ErrInvalid)
	}
	fsys := d.disk()
	tmp := filepath.Join(d.Path, subTmp, key)
	if l, ok := fsys.(Linker); ok {
		lerr := l.Link(src, tmp)
		if lerr == nil {
			return &Staged{d: d, fsys: fsys, tmp: tmp, key: key, flags: flags, linked: true}, false, nil
		}
		if errors.Is(lerr, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("deliver to %s: link %s: %w", d.Path, src, lerr)
		}
		if !linkRefused(lerr) {
			return nil, false, fmt.Errorf("deliver to %s: %w", d.Path, lerr)
		}
	}
	in, err := open(fsys, src)
	if err != nil {
		return nil, false, fmt.Errorf("deliver to %s: copy %s: %w", d.Path, src, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("deliver to %s: copy %s: %w", d.Path, src, err)
	}
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("deliver to %s: %w", d.Path, err)
	}
	st = &Staged{d: d, fsys: fsys, f: f, tmp: tmp, key: key, flags: flags}
	if err := f.Chmod(0o600); err != nil {
		st.Abort()
		return nil, false, fmt.Errorf("deliver to %s: %w", d.Path, err)
	}
	buf := chunks.Get().(*[deliverChunk]byte)
	st.size, err = io.CopyBuffer(struct{ io.Writer }{f}, struct{ io.Reader }{in}, buf[:])
	chunks.Put(buf)
	if err == nil {
		err = fsys.Chtimes(tmp, fi.ModTime(), fi.ModTime())
	}
	if err != nil {
		st.Abort()
		return nil, false, fmt.Errorf("deliver to %s: copy %s: %w", d.Path, src, err)
	}
	return st, true, nil
}

// linkRefused reports whether a link failed for a reason a copy gets
// round: another file system, a file system without hard links, a file
// with the most links it may have, or links forbidden to this user.
func linkRefused(err error) bool {
	for _, e := range []error{syscall.EXDEV, syscall.EPERM, syscall.EMLINK, syscall.ENOTSUP, syscall.EOPNOTSUPP, syscall.ENOSYS, syscall.EACCES} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
