// Package maildirtest provides CrashFS, a file system for package
// maildir (maildir.NewRootFS) that simulates a power cut: it works on the
// real disk and keeps a model of what an fsync has made durable, and after
// a chosen number of operations it fails every call, as a machine that
// lost power would. Materialize then rewrites the directory tree to what
// the disk would hold after the reboot.
//
// A SIGKILL leaves the page cache to be written out, so it can never show
// a missing fsync; this can.
//
// It is for tests only: nothing outside _test.go files may import it. It
// imports package maildir for the FS and File interfaces only.
package maildirtest

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/satchel-mail/satchel/maildir"
)

// ErrPowerCut is wrapped by every error of a CrashFS after the cut.
var ErrPowerCut = errors.New("power cut (simulated)")

// CrashFS is a maildir.FS over a directory tree on the real disk (its
// base) that models durability the strict POSIX way:
//
//   - A file's contents, mode and times become durable when the file is
//     fsynced, as they are at that moment.
//   - A directory's entries (names created, renamed in or out, removed)
//     become durable when that directory is fsynced, all of them as they
//     are at that moment. Entries name inodes: a durable entry whose file
//     was never fsynced holds an empty file; one renamed over an older
//     file before the directory's fsync still names the older file. A
//     rename is durable in the target directory and in the source one
//     independently, so a file may come back under both names, or under
//     neither.
//   - Directories created are modelled like files; their modes count as
//     durable at once (only messages' modes are checked).
//
// Everything below the base when New is called counts as durable.
//
// Mutating calls are counted: creating or opening a file for writing,
// Chmod, Chtimes, Sync, Mkdir, Rename, Remove (Write and reads are not:
// their effects are durable only through a later Sync, so a cut before
// them is a cut before that Sync). Op counts the operations of other
// layers that a power cut stops too, such as an index commit or a command
// to the server, in the same sequence. The call that would be operation
// number after+1 is the cut: it and every later call fail with
// ErrPowerCut and change nothing, and the functions given to OnCut run.
// Materialize then makes the cut a power cut; Restart makes it a process
// crash, after which a power cut can still come.
//
// The model holds every file's contents in memory: it is meant for the
// small trees of tests. Methods are safe for concurrent use.
type CrashFS struct {
	base  string
	after int

	mu    sync.Mutex
	ops   int
	cut   bool
	cutOp string
	trace []string
	onCut []func()
	root  *inode
	err   error // the first disagreement between model and disk
}

// inode is a file or directory of the model.
type inode struct {
	dir bool
	// Files: data is the contents as written through the FS, the durable
	// fields what the last Sync saw (nil data and zero times if none).
	data     []byte
	durData  []byte
	durMode  fs.FileMode
	durMtime time.Time
	// Directories: the entries now and as of the last Sync.
	mode fs.FileMode
	cur  map[string]*inode
	dur  map[string]*inode
}

var _ maildir.FS = (*CrashFS)(nil)

// New returns a CrashFS over the directory base (which must exist) that
// cuts the power after that many operations; a negative after never cuts.
func New(base string, after int) (*CrashFS, error) {
	abs, err := filepath.Abs(base)
	if err != nil {
		return nil, err
	}
	c := &CrashFS{base: filepath.Clean(abs), after: after}
	root, err := c.load(c.base)
	if err != nil {
		return nil, fmt.Errorf("crashfs: load %s: %w", base, err)
	}
	if !root.dir {
		return nil, fmt.Errorf("crashfs: %s is not a directory", base)
	}
	c.root = root
	return c, nil
}

// load reads the tree at p into the model, all of it durable.
func (c *CrashFS) load(p string) (*inode, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	n := newInode(fi.IsDir())
	switch {
	case fi.IsDir():
		n.mode = fi.Mode().Perm()
		des, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		for _, de := range des {
			child, err := c.load(filepath.Join(p, de.Name()))
			if err != nil {
				return nil, err
			}
			n.cur[de.Name()] = child
			n.dur[de.Name()] = child
		}
	case fi.Mode().IsRegular():
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		n.data, n.durData = b, slices.Clone(b)
		n.durMode, n.durMtime = fi.Mode().Perm(), fi.ModTime()
	default:
		return nil, fmt.Errorf("%s: not a regular file or directory", p)
	}
	return n, nil
}

// newInode returns a file or directory with no entries and no data.
func newInode(dir bool) *inode {
	n := &inode{dir: dir}
	if dir {
		n.cur, n.dur = map[string]*inode{}, map[string]*inode{}
	}
	return n
}

// OnCut registers fn to run once, at the cut, after the cut call has
// failed the operation but before it returns. fn must not call c.
func (c *CrashFS) OnCut(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onCut = append(c.onCut, fn)
}

// Op counts an operation of another layer in the sequence of this file
// system's, and returns an error wrapping ErrPowerCut if it falls at or
// after the cut: the caller must then not carry it out.
func (c *CrashFS) Op(what string) error {
	c.mu.Lock()
	hooks, err := c.step(what)
	c.mu.Unlock()
	runHooks(hooks)
	return err
}

// Restart makes the cut a process crash rather than a power cut: the
// disk keeps every change, durable or not, as the page cache does when a
// process is killed, and calls work again until the cut after that many
// more operations (never if after is negative). Functions given to OnCut
// before are dropped.
func (c *CrashFS) Restart(after int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut, c.cutOp, c.onCut = false, "", nil
	c.trace = append(c.trace, "RESTART")
	c.after = -1
	if after >= 0 {
		c.after = c.ops + after
	}
}

// Check returns an error wrapping ErrPowerCut after the cut, nil before;
// it is not counted. Other layers call it before a call that changes
// nothing, which a machine without power does not make either.
func (c *CrashFS) Check(what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live(what)
}

// Ops returns how many operations were carried out.
func (c *CrashFS) Ops() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops
}

// Cut returns the operation the power cut replaced ("" if none yet).
func (c *CrashFS) Cut() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cutOp
}

// Trace returns the last n operations carried out, oldest first, and the
// cut if it came.
func (c *CrashFS) Trace(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.trace
	if len(t) > n {
		t = t[len(t)-n:]
	}
	return slices.Clone(t)
}

// Err returns the first disagreement found between the model and the
// disk (a file changed behind the FS's back, a path outside the base).
func (c *CrashFS) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// step counts one mutating operation; the caller holds c.mu and runs the
// returned hooks after releasing it.
func (c *CrashFS) step(what string) ([]func(), error) {
	if c.cut {
		return nil, c.cutErr(what)
	}
	desc := fmt.Sprintf("op %d: %s", c.ops+1, what)
	if c.after >= 0 && c.ops >= c.after {
		c.cut, c.cutOp = true, desc
		c.trace = append(c.trace, "CUT "+desc)
		hooks := c.onCut
		c.onCut = nil
		return hooks, c.cutErr(what)
	}
	c.ops++
	c.trace = append(c.trace, desc)
	return nil, nil
}

// runHooks runs the OnCut functions a cut returned.
func runHooks(hooks []func()) {
	for _, h := range hooks {
		h()
	}
}

// cutErr is the error of a call at or after the cut.
func (c *CrashFS) cutErr(what string) error {
	return fmt.Errorf("%s: %w", what, ErrPowerCut)
}

// live fails a non-counted call after the cut; the caller holds c.mu.
func (c *CrashFS) live(what string) error {
	if c.cut {
		return c.cutErr(what)
	}
	return nil
}

// fail records a disagreement between model and disk and returns it.
func (c *CrashFS) fail(format string, args ...any) error {
	err := fmt.Errorf("crashfs model: "+format, args...)
	if c.err == nil {
		c.err = err
	}
	return err
}

// rel returns name relative to the base, for messages and lookups.
func (c *CrashFS) rel(name string) (string, error) {
	r, err := filepath.Rel(c.base, filepath.Clean(name))
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", c.fail("%s is outside %s", name, c.base)
	}
	return r, nil
}

// lookup returns the inode at name now, nil if there is none.
func (c *CrashFS) lookup(name string) (*inode, error) {
	r, err := c.rel(name)
	if err != nil {
		return nil, err
	}
	n := c.root
	if r == "." {
		return n, nil
	}
	for _, e := range strings.Split(r, string(filepath.Separator)) {
		if !n.dir {
			return nil, nil
		}
		if n = n.cur[e]; n == nil {
			return nil, nil
		}
	}
	return n, nil
}

// parent returns the directory inode holding name now and name's last
// element; the directory is nil if it is not in the model.
func (c *CrashFS) parent(name string) (*inode, string, error) {
	clean := filepath.Clean(name)
	dir, err := c.lookup(filepath.Dir(clean))
	if err != nil {
		return nil, "", err
	}
	if dir != nil && !dir.dir {
		dir = nil
	}
	return dir, filepath.Base(clean), nil
}

// show is name relative to the base, for the trace.
func (c *CrashFS) show(name string) string {
	r, err := filepath.Rel(c.base, name)
	if err != nil {
		return name
	}
	return r
}

const writeFlags = os.O_WRONLY | os.O_RDWR | os.O_CREATE | os.O_TRUNC | os.O_APPEND

// OpenFile opens a file on the disk; see maildir.FS. Opening for writing
// or creating counts as an operation.
func (c *CrashFS) OpenFile(name string, flag int, perm fs.FileMode) (maildir.File, error) {
	c.mu.Lock()
	var hooks []func()
	defer func() { c.mu.Unlock(); runHooks(hooks) }()
	what := "open " + c.show(name)
	if flag&writeFlags != 0 {
		var err error
		if hooks, err = c.step(what); err != nil {
			return nil, err
		}
	} else if err := c.live(what); err != nil {
		return nil, err
	}
	n, err := c.lookup(name)
	if err != nil {
		return nil, err
	}
	var dir *inode
	var base string
	if n == nil {
		if dir, base, err = c.parent(name); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	switch {
	case n == nil && (dir == nil || flag&os.O_CREATE == 0):
		f.Close()
		return nil, c.fail("open %s: on the disk but not in the model", name)
	case n == nil:
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		n = newInode(false)
		n.durMode = fi.Mode().Perm()
		dir.cur[base] = n
	case flag&os.O_TRUNC != 0 && !n.dir:
		n.data = nil
	}
	h := &file{c: c, f: f, n: n, name: name}
	if flag&os.O_APPEND != 0 {
		h.pos = int64(len(n.data))
	}
	return h, nil
}

// Stat is os.Stat; it is not counted.
func (c *CrashFS) Stat(name string) (fs.FileInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.live("stat " + c.show(name)); err != nil {
		return nil, err
	}
	return os.Stat(name)
}

// Mkdir is os.Mkdir, counted.
func (c *CrashFS) Mkdir(name string, perm fs.FileMode) error {
	c.mu.Lock()
	var hooks []func()
	defer func() { c.mu.Unlock(); runHooks(hooks) }()
	var err error
	if hooks, err = c.step("mkdir " + c.show(name)); err != nil {
		return err
	}
	return c.mkdir(name, perm)
}

// mkdir creates one directory on the disk and in the model.
func (c *CrashFS) mkdir(name string, perm fs.FileMode) error {
	dir, base, err := c.parent(name)
	if err != nil {
		return err
	}
	if err := os.Mkdir(name, perm); err != nil {
		return err
	}
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	if dir == nil {
		return c.fail("mkdir %s: its parent is not in the model", name)
	}
	if dir.cur[base] != nil {
		return c.fail("mkdir %s: created on the disk, but the model has it", name)
	}
	n := newInode(true)
	n.mode = fi.Mode().Perm()
	dir.cur[base] = n
	return nil
}

// Chmod is os.Chmod, counted.
func (c *CrashFS) Chmod(name string, mode fs.FileMode) error {
	c.mu.Lock()
	var hooks []func()
	defer func() { c.mu.Unlock(); runHooks(hooks) }()
	var err error
	if hooks, err = c.step("chmod " + c.show(name)); err != nil {
		return err
	}
	n, err := c.lookup(name)
	if err != nil {
		return err
	}
	if err := os.Chmod(name, mode); err != nil {
		return err
	}
	if n == nil {
		return c.fail("chmod %s: not in the model", name)
	}
	if n.dir {
		n.mode = mode.Perm()
	}
	return nil
}

// Chtimes is os.Chtimes, counted; the times become durable at the file's
// next Sync.
func (c *CrashFS) Chtimes(name string, atime, mtime time.Time) error {
	c.mu.Lock()
	var hooks []func()
	defer func() { c.mu.Unlock(); runHooks(hooks) }()
	var err error
	if hooks, err = c.step("chtimes " + c.show(name)); err != nil {
		return err
	}
	return os.Chtimes(name, atime, mtime)
}

// Rename is os.Rename, counted. It becomes durable in each directory at
// that directory's Sync.
func (c *CrashFS) Rename(oldpath, newpath string) error {
	c.mu.Lock()
	var hooks []func()
	defer func() { c.mu.Unlock(); runHooks(hooks) }()
	var err error
	if hooks, err = c.step("rename " + c.show(oldpath) + " -> " + c.show(newpath)); err != nil {
		return err
	}
	from, fromBase, err := c.parent(oldpath)
	if err != nil {
		return err
	}
	to, toBase, err := c.parent(newpath)
	if err != nil {
		return err
	}
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	if from == nil || to == nil || from.cur[fromBase] == nil {
		return c.fail("rename %s to %s: not in the model", oldpath, newpath)
	}
	n := from.cur[fromBase]
	delete(from.cur, fromBase)
	to.cur[toBase] = n
	return nil
}

// Remove is os.Remove, counted. It becomes durable at the directory's
// Sync.
func (c *CrashFS) Remove(name string) error {
	c.mu.Lock()
	var hooks []func()
	defer func() { c.mu.Unlock(); runHooks(hooks) }()
	var err error
	if hooks, err = c.step("remove " + c.show(name)); err != nil {
		return err
	}
	dir, base, err := c.parent(name)
	if err != nil {
		return err
	}
	if err := os.Remove(name); err != nil {
		return err
	}
	if dir == nil || dir.cur[base] == nil {
		return c.fail("remove %s: not in the model", name)
	}
	delete(dir.cur, base)
	return nil
}

// file is an open file or directory of a CrashFS.
type file struct {
	c    *CrashFS
	f    *os.File
	n    *inode
	name string
	pos  int64 // where the next Write lands in n.data
}

// Write writes to the disk and to the model's copy; it is not counted.
func (h *file) Write(p []byte) (int, error) {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.live("write " + c.show(h.name)); err != nil {
		return 0, err
	}
	n, err := h.f.Write(p)
	if end := h.pos + int64(n); end > int64(len(h.n.data)) {
		h.n.data = append(h.n.data, make([]byte, end-int64(len(h.n.data)))...)
	}
	copy(h.n.data[h.pos:], p[:n])
	h.pos += int64(n)
	return n, err
}

// Read is not counted; it fails after the cut.
func (h *file) Read(p []byte) (int, error) {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.live("read " + c.show(h.name)); err != nil {
		return 0, err
	}
	return h.f.Read(p)
}

// ReadDir is not counted; it fails after the cut.
func (h *file) ReadDir(n int) ([]fs.DirEntry, error) {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.live("readdir " + c.show(h.name)); err != nil {
		return nil, err
	}
	return h.f.ReadDir(n)
}

// Stat is not counted; it fails after the cut.
func (h *file) Stat() (fs.FileInfo, error) {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.live("fstat " + c.show(h.name)); err != nil {
		return nil, err
	}
	return h.f.Stat()
}

// Chmod is counted; the mode becomes durable at the next Sync.
func (h *file) Chmod(mode fs.FileMode) error {
	c := h.c
	c.mu.Lock()
	var hooks []func()
	defer func() { c.mu.Unlock(); runHooks(hooks) }()
	var err error
	if hooks, err = c.step("fchmod " + c.show(h.name)); err != nil {
		return err
	}
	if err := h.f.Chmod(mode); err != nil {
		return err
	}
	if h.n.dir {
		h.n.mode = mode.Perm()
	}
	return nil
}

// Sync is counted. On a file it makes the contents, mode and times
// durable; on a directory, its entries. Nothing is fsynced on the real
// disk, whose state after a cut Materialize replaces anyway.
func (h *file) Sync() error {
	c := h.c
	c.mu.Lock()
	var hooks []func()
	defer func() { c.mu.Unlock(); runHooks(hooks) }()
	var err error
	if hooks, err = c.step("fsync " + c.show(h.name)); err != nil {
		return err
	}
	// The disk itself is not asked: durability is what the model says.
	n := h.n
	if n.dir {
		n.dur = maps.Clone(n.cur)
		return nil
	}
	fi, err := h.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != int64(len(n.data)) {
		return c.fail("fsync %s: %d bytes on the disk, %d in the model", h.name, fi.Size(), len(n.data))
	}
	n.durData = slices.Clone(n.data)
	n.durMode, n.durMtime = fi.Mode().Perm(), fi.ModTime()
	return nil
}

// Close closes the file on the disk; it is not counted, and fails after
// the cut (having closed the file all the same).
func (h *file) Close() error {
	c := h.c
	err := h.f.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if lerr := c.live("close " + c.show(h.name)); lerr != nil {
		return lerr
	}
	return err
}

// Materialize cuts the power if it has not been cut, and rewrites the tree
// below the base on the disk to its durable state: the entries every
// directory had at its last fsync, each file with the contents, mode and
// modification time of its last fsync (empty if it had none). A file
// durable under two names is written twice. The base directory itself is
// kept. Afterwards c fails every call.
func (c *CrashFS) Materialize() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cut {
		c.cut, c.cutOp = true, "materialize"
	}
	des, err := os.ReadDir(c.base)
	if err != nil {
		return fmt.Errorf("crashfs: materialize: %w", err)
	}
	for _, de := range des {
		if err := os.RemoveAll(filepath.Join(c.base, de.Name())); err != nil {
			return fmt.Errorf("crashfs: materialize: %w", err)
		}
	}
	if err := c.write(c.root, c.base, nil); err != nil {
		return fmt.Errorf("crashfs: materialize: %w", err)
	}
	return c.err
}

// write creates the durable entries of directory n in p; above holds the
// directories being written, so that a cycle of durable entries (which
// renames of directories could make) is reported rather than followed.
func (c *CrashFS) write(n *inode, p string, above []*inode) error {
	if slices.Contains(above, n) {
		return fmt.Errorf("%s: durable directory entries form a cycle", p)
	}
	above = append(above, n)
	names := make([]string, 0, len(n.dur))
	for name := range n.dur {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		child, cp := n.dur[name], filepath.Join(p, name)
		if child.dir {
			if err := os.Mkdir(cp, 0o700); err != nil {
				return err
			}
			if err := c.write(child, cp, above); err != nil {
				return err
			}
			if err := os.Chmod(cp, child.mode); err != nil {
				return err
			}
			continue
		}
		mode := child.durMode
		if mode == 0 {
			mode = 0o600
		}
		if err := os.WriteFile(cp, child.durData, mode); err != nil {
			return err
		}
		if err := os.Chmod(cp, mode); err != nil {
			return err
		}
		if !child.durMtime.IsZero() {
			if err := os.Chtimes(cp, child.durMtime, child.durMtime); err != nil {
				return err
			}
		}
	}
	return nil
}
