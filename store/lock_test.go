//go:build unix

package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestLockTwiceInOneProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "account.lock")
	l1, err := Lock(t.Context(), path, false)
	if err != nil {
		t.Fatalf("first Lock: %v", err)
	}
	if got := perm(t, path); got != 0o600 {
		t.Errorf("mode of lock file = %o, want 600", got)
	}
	if got := perm(t, filepath.Dir(path)); got != 0o700 {
		t.Errorf("mode of lock directory = %o, want 700", got)
	}

	l2, err := Lock(t.Context(), path, false)
	if !errors.Is(err, ErrLocked) {
		if l2 != nil {
			l2.Unlock()
		}
		t.Fatalf("second Lock in the same process = %v, want ErrLocked", err)
	}

	if err := l1.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := l1.Unlock(); err == nil {
		t.Error("second Unlock succeeded")
	}
	l3, err := Lock(t.Context(), path, false)
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	if err := l3.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestLockWaitsForUnlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "account.lock")
	l1, err := Lock(t.Context(), path, false)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		l   *FileLock
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := Lock(t.Context(), path, true)
		done <- result{l, err}
	}()

	// Held: the waiter must not have the lock yet. (This can only pass
	// wrongly, never fail wrongly, on a slow machine.)
	select {
	case r := <-done:
		t.Fatalf("waiting Lock returned %v, %v while the lock was held", r.l, r.err)
	case <-time.After(3 * lockPoll):
	}

	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("waiting Lock after Unlock: %v", r.err)
	}
	r.l.Unlock()
}

func TestLockWaitEndsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "account.lock")
	l1, err := Lock(t.Context(), path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Unlock()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		l, err := Lock(ctx, path, true)
		if l != nil {
			l.Unlock()
		}
		done <- err
	}()
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrLocked) {
		t.Fatalf("waiting Lock with a canceled context = %v, want ErrLocked and context.Canceled", err)
	}
}

// lockHelperEnv names the lock file the helper process takes.
const lockHelperEnv = "SATCHEL_STORE_LOCK_HELPER"

// TestLockHelperProcess is not a test: run by TestLockReleasedWhenHolderDies
// as a child process, it takes the lock, says so, and holds it until its
// stdin closes or it is killed.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv(lockHelperEnv)
	if path == "" {
		t.Skip("helper process for TestLockReleasedWhenHolderDies")
	}
	if _, err := Lock(context.Background(), path, false); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "account.lock")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, %v; want \"locked\"", line, err)
	}

	if _, err := Lock(t.Context(), path, false); !errors.Is(err, ErrLocked) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("Lock while another process holds it = %v, want ErrLocked", err)
	}

	// SIGKILL: no chance to unlock, the kernel must release the lock.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want killed by SIGKILL", err)
	}

	l, err := Lock(t.Context(), path, false)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}
