//go:build unix

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrLocked is returned by Lock when another satchel run holds the lock.
var ErrLocked = errors.New("locked by another satchel run")

// lockPoll is how often a waiting Lock retries. flock has no way to wait
// with a deadline, and a blocking flock could not be interrupted by ctx.
const lockPoll = 100 * time.Millisecond

// FileLock is a held lock; see Lock.
type FileLock struct {
	f *os.File
}

// Lock takes an exclusive OS file lock on path (created 0600 if missing,
// in a parent created 0700 if missing), released when the process dies or
// Unlock is called. If another process holds it: wait=false → ErrLocked at
// once; wait=true → block until free or ctx is done, then fail with an
// error that wraps both ErrLocked and ctx.Err().
//
// The lock is flock(2), which belongs to the open file description, not
// to the process as fcntl locks do: a second Lock on the same path in the
// same process is refused like any other, and the kernel drops the lock
// with the last descriptor when the process dies, however it dies.
//
// The file is left in place on Unlock: removing it would let a run that
// already opened the old file and one that creates a new file both hold
// "the" lock.
func Lock(ctx context.Context, path string, wait bool) (*FileLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// os.OpenFile sets O_CLOEXEC: a child process (a PreSync hook, say)
	// does not inherit, and so cannot keep holding, the lock.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	var ticker *time.Ticker
	for {
		err := tryFlock(f)
		if err == nil {
			return &FileLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !wait {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ErrLocked)
		}
		if ticker == nil {
			ticker = time.NewTicker(lockPoll)
			defer ticker.Stop()
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w: %w", path, ErrLocked, ctx.Err())
		case <-ticker.C:
		}
	}
}

func tryFlock(f *os.File) error {
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = conn.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
			if ferr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
}

// Unlock releases the lock. Calling it again returns an error.
func (l *FileLock) Unlock() error {
	// Closing the only descriptor of the open file description releases
	// the flock; an explicit LOCK_UN would add nothing.
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("unlock %s: %w", l.f.Name(), err)
	}
	return nil
}
