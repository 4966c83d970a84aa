package maildir

import (
	"io"
	"io/fs"
	"os"
	"time"
)

// FS is the file system under a Root and its folders. A Root or Dir
// written as a struct literal works on the operating system's; only tests
// give NewRootFS another one, such as a file system that simulates a power
// cut and so checks that every change is fsynced before it is relied on.
//
// The methods take paths as the os package does and behave as the os
// functions of the same names. Errors must wrap fs.ErrNotExist and
// fs.ErrExist as os's do: this package branches on them.
type FS interface {
	// OpenFile opens a file, or a directory with os.O_RDONLY for listing
	// or for Sync.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Stat(name string) (fs.FileInfo, error)
	Mkdir(name string, perm fs.FileMode) error
	Chmod(name string, mode fs.FileMode) error
	Chtimes(name string, atime, mtime time.Time) error
	Rename(oldpath, newpath string) error
	Remove(name string) error
}

// File is an open file or directory, as *os.File is. Sync on a file makes
// its contents and metadata durable; on a directory, the creation,
// removal and renaming of its entries.
type File interface {
	io.ReadWriteCloser
	ReadDir(n int) ([]fs.DirEntry, error)
	Stat() (fs.FileInfo, error)
	Chmod(mode fs.FileMode) error
	Sync() error
}

// NewRootFS returns the Root at dir whose folders work on fsys. Only tests
// call it; a Root{Dir: dir} works on the operating system's file system.
func NewRootFS(dir string, fsys FS) Root { return Root{Dir: dir, fsys: fsys} }

// osFS is the operating system's file system.
type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		// A nil *os.File in a File would not compare equal to nil.
		return nil, err
	}
	return f, nil
}

func (osFS) Stat(name string) (fs.FileInfo, error)     { return os.Stat(name) }
func (osFS) Mkdir(name string, perm fs.FileMode) error { return os.Mkdir(name, perm) }
func (osFS) Chmod(name string, mode fs.FileMode) error { return os.Chmod(name, mode) }
func (osFS) Rename(oldpath, newpath string) error      { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                  { return os.Remove(name) }
func (osFS) Chtimes(name string, atime, mtime time.Time) error {
	return os.Chtimes(name, atime, mtime)
}

// orOS returns fsys, or the operating system's file system for nil.
func orOS(fsys FS) FS {
	if fsys == nil {
		return osFS{}
	}
	return fsys
}

// open opens a file or directory for reading, as os.Open does.
func open(fsys FS, name string) (File, error) { return fsys.OpenFile(name, os.O_RDONLY, 0) }
