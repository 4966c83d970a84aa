//go:build linux

package maildir

import (
	"bytes"
	"errors"
	"fmt"
	gosync "sync"
	"unsafe"

	"golang.org/x/sys/unix"
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
	keys map[string]struct{}
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
	fw := &FolderWatch{w: w, keys: map[string]struct{}{}}
	for _, d := range dirs {
		wd, err := unix.InotifyAddWatch(w.fd, d, watchMask)
		if err == nil && w.byWD[int32(wd)] != nil {
			// The same directory twice (two names for one folder): one
			// watch descriptor cannot serve two folders.
			err = errors.New("already watched")
		} else if err == nil {
			w.byWD[int32(wd)] = fw
			fw.wds = append(fw.wds, int32(wd))
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
	fw.keys[key] = struct{}{}
}

func (fw *FolderWatch) changed() ([]string, bool) {
	w := fw.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || fw.wds == nil {
		return nil, false
	}
	w.drain()
	keys := make([]string, 0, len(fw.keys))
	for k := range fw.keys {
		keys = append(keys, k)
	}
	return keys, !w.overflow && !fw.bad
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
