package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procResult is one run of a sync tool.
type procResult struct {
	elapsed time.Duration
	user    time.Duration // CPU time, its waited-for children included
	sys     time.Duration
	maxRSS  int64 // bytes: the high-water mark of the process's resident set
	exit    int   // -1 if it did not run to an exit
}

// runLimit is how long one sync may take before the bench gives up on it.
const runLimit = 30 * time.Minute

// hwmSampling is how often a running tool's VmHWM is read.
const hwmSampling = 5 * time.Millisecond

// runProc runs a command to its end, its output appended to logPath, and
// measures its wall time and peak RSS.
//
// Peak RSS: wait4's ru_maxrss alone would be wrong. Go starts a child with
// clone(CLONE_VM|CLONE_VFORK), and at exec Linux folds the high-water mark
// of the mm the child leaves, which is the bench's own, into the child's
// maxrss: every tool would measure at least the bench's peak. So the
// bench lowers its own mark first (GC, then "5" to /proc/self/clear_refs),
// and reads the tool's VmHWM from /proc/PID/status every 5 ms while it
// runs; VmHWM only grows, so only growth within the last 5 ms before exit
// could be missed. When ru_maxrss is above the bench's own mark it is the
// tool's exact peak, and that is taken instead.
func runProc(ctx context.Context, logPath string, env []string, name string, args ...string) (procResult, error) {
	return runProcOut(ctx, logPath, nil, env, name, args...)
}

// runProcOut is runProc with the tool's standard output going to stdout
// (the log when nil), for a tool whose output the bench reads.
func runProcOut(ctx context.Context, logPath string, stdout io.Writer, env []string, name string, args ...string) (procResult, error) {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return procResult{exit: -1}, err
	}
	defer log.Close()
	fmt.Fprintf(log, "\n$ %s %q\n", name, args)
	ctx, cancel := context.WithTimeout(ctx, runLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.Env = env

	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	floor := vmHWM("/proc/self/status")

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return procResult{exit: -1}, err
	}
	// Start returns once the child has exec'd (CLONE_VFORK), so its
	// status describes the tool from the first sample on.
	var sampled int64
	var mu sync.Mutex
	stop := make(chan struct{})
	sampler := make(chan struct{})
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	go func() {
		defer close(sampler)
		t := time.NewTicker(hwmSampling)
		defer t.Stop()
		for {
			if v := vmHWM(status); v > 0 {
				mu.Lock()
				sampled = max(sampled, v)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	err = cmd.Wait()
	elapsed := time.Since(start)
	close(stop)
	<-sampler

	res := procResult{elapsed: elapsed, exit: -1, maxRSS: sampled}
	if cmd.ProcessState != nil {
		res.exit = cmd.ProcessState.ExitCode()
		res.user, res.sys = cmd.ProcessState.UserTime(), cmd.ProcessState.SystemTime()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			if exact := ru.Maxrss << 10; exact > floor { // kilobytes on Linux
				res.maxRSS = exact
			}
		}
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		err = nil // the exit code says it
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: %w", name, ctx.Err())
	}
	return res, err
}

// vmHWM reads the VmHWM line of a /proc status file, in bytes; 0 when the
// process is gone.
func vmHWM(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
