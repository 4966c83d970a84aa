//go:build linux

package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	gosync "sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/satchel-mail/satchel/sync/mail"
)

// watchMask: what adds, removes or renames an entry of new/ or cur/, and
// what moves or removes the directory itself.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// watcher is one inotify instance, read without blocking: what the kernel
// queued before a read is all there when the read returns EAGAIN.
type watcher struct {
	mu       gosync.Mutex
	fd       int
	byWD     map[int32]*FolderWatch
	overflow bool // the kernel dropped events: no watch can tell
	closed   bool
}

// FolderWatch is one folder's part of a Watcher.
type FolderWatch struct {
	w    *watcher
	wds  []int32
	dirs map[int32]string
	// keys holds every key an event named, with the paths its events
	// added and did not take away since.
	keys map[string]map[string]bool
	bad  bool // a directory went, or a name that is not a message's
}

func newWatcher() (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		// EMFILE: the user's inotify instances are used up
		// (fs.inotify.max_user_instances); the sync does without.
		return nil, fmt.Errorf("%w: inotify: %w", ErrWatchUnsupported, err)
	}
	return &watcher{fd: fd, byWD: map[int32]*FolderWatch{}}, nil
}

func (w *watcher) watch(dirs []string) (*FolderWatch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errors.New("watch: the watcher is closed")
	}
	fw := &FolderWatch{w: w, dirs: map[int32]string{}, keys: map[string]map[string]bool{}}
	for _, d := range dirs {
		wd, err := unix.InotifyAddWatch(w.fd, d, watchMask)
		if err == nil && w.byWD[int32(wd)] != nil {
			// The same directory twice (two names for one folder): one
			// watch descriptor cannot serve two folders.
			err = errors.New("already watched")
		} else if err == nil {
			w.byWD[int32(wd)] = fw
			fw.wds = append(fw.wds, int32(wd))
			fw.dirs[int32(wd)] = d
		}
		if err != nil {
			w.unwatch(fw)
			return nil, fmt.Errorf("watch %s: %w", d, err)
		}
	}
	return fw, nil
}

// drain reads every queued event. Under w.mu.
func (w *watcher) drain() {
	var buf [64 << 10]byte
	for !w.closed {
		n, err := unix.Read(w.fd, buf[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n <= 0 {
			// EAGAIN: nothing more is queued.
			if err != nil && !errors.Is(err, unix.EAGAIN) {
				w.overflow = true
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			end := off + unix.SizeofInotifyEvent + int(ev.Len)
			if end > n {
				w.overflow = true
				return
			}
			name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:end], "\x00"))
			off = end
			w.note(ev.Wd, ev.Mask, name)
		}
	}
}

// note records one event. Under w.mu.
func (w *watcher) note(wd int32, mask uint32, name string) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		w.overflow = true
		return
	}
	fw := w.byWD[wd]
	if fw == nil {
		return // a watch removed since (its IN_IGNORED among others)
	}
	if mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED|unix.IN_UNMOUNT|unix.IN_ISDIR) != 0 {
		fw.bad = true
		return
	}
	key, _, ok := ParseName(name)
	if !ok {
		fw.bad = true
		return
	}
	paths := fw.keys[key]
	if paths == nil {
		paths = map[string]bool{}
		fw.keys[key] = paths
	}
	// One queue for both directories: the events come in the order of
	// the changes, a move from new/ to cur/ included.
	p := filepath.Join(fw.dirs[wd], name)
	if mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
		paths[p] = true
	} else {
		delete(paths, p)
	}
}

func (fw *FolderWatch) changed() (map[string]*mail.Flags, bool) {
	w := fw.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || fw.wds == nil {
		return nil, false
	}
	w.drain()
	if w.overflow || fw.bad {
		return nil, false
	}
	out := make(map[string]*mail.Flags, len(fw.keys))
	for k, paths := range fw.keys {
		// The file an event put there and none took away, if it is
		// still there: a stat per changed message, not a listing.
		var found *mail.Flags
		for p := range paths {
			fi, err := os.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			if found != nil {
				return nil, false // two files for one key
			}
			_, flags, _ := ParseName(filepath.Base(p))
			found = &flags
		}
		out[k] = found
	}
	return out, true
}

func (fw *FolderWatch) close() {
	fw.w.mu.Lock()
	defer fw.w.mu.Unlock()
	fw.w.unwatch(fw)
}

// unwatch removes fw's watches. Under w.mu.
func (w *watcher) unwatch(fw *FolderWatch) {
	for _, wd := range fw.wds {
		delete(w.byWD, wd)
		if !w.closed {
			_, _ = unix.InotifyRmWatch(w.fd, uint32(wd))
		}
	}
	fw.wds = nil
}

func (w *watcher) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	for wd, fw := range w.byWD {
		fw.wds = nil
		delete(w.byWD, wd)
	}
	return unix.Close(w.fd)
}
