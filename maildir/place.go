package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// PlaceAll gives d every message of from whose key d lacks (see
// PlaceLazy), in key order, checking ctx between files, then makes the
// entries of new/ and cur/ durable: when it returns nil, the placed files
// survive a power cut and may be recorded. d is created if missing. It
// returns how many files it placed.
func (d Dir) PlaceAll(ctx context.Context, from Dir) (int, error) {
	src, err := from.Scan()
	if err != nil {
		return 0, err
	}
	if err := d.Init(); err != nil {
		return 0, err
	}
	have, err := d.Scan()
	if err != nil {
		return 0, err
	}
	keys := make([]string, 0, len(src))
	for k := range src {
		if _, ok := have[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	n := 0
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := d.PlaceLazy(from, src[k]); err != nil {
			return n, err
		}
		n++
	}
	if err := d.SyncDirs(); err != nil {
		return n, err
	}
	return n, nil
}

// PlaceLazy gives d the message file e of folder from, under the same
// name (so the same flags, in the same subdirectory) and with the same
// mtime: a hard link where the two folders share a file system, else a
// copy written to tmp/ (mode 0600), fsynced, given the source's mtime and
// renamed into place. A file of that name already in d is kept. As with
// DeliverKeyLazy, the new name is durable only after SyncDirs, and
// nothing may record the file before.
func (d Dir) PlaceLazy(from Dir, e Entry) error {
	src, dst := e.Path(from), e.Path(d)
	// Hard links on the operating system's file system only: FS has no
	// Link, and a link from one FS into another would bypass them.
	if from.fsys == nil && d.fsys == nil {
		err := os.Link(src, dst)
		if err == nil || errors.Is(err, fs.ErrExist) {
			return nil
		}
		// Another file system (EXDEV), or one without hard links: a
		// copy.
	}
	if err := d.copyIn(from, src, dst); err != nil {
		return fmt.Errorf("place %s in %s: %w", e.Name, d.Path, err)
	}
	return nil
}

// copyIn copies from's file src to dst in d the Maildir way: written
// under tmp/, fsynced, given src's mtime, renamed to dst.
func (d Dir) copyIn(from Dir, src, dst string) error {
	in, err := open(from.disk(), src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	fsys := d.disk()
	tmp := filepath.Join(d.Path, subTmp, NewKey())
	out, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	// The umask may have removed bits from the mode given to OpenFile.
	err = out.Chmod(0o600)
	if err == nil {
		_, err = io.Copy(out, in)
	}
	if err == nil {
		// Before the fsync, so that the date is durable too: the mtime
		// is the message's date to mail readers (see Deliver).
		err = fsys.Chtimes(tmp, fi.ModTime(), fi.ModTime())
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, dst)
	}
	if err != nil {
		_ = fsys.Remove(tmp)
	}
	return err
}
