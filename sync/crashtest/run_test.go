package crashtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// run is one `satchel sync` process.
type run struct {
	n       int
	trace   string // its --trace file
	log     string // its stdout and stderr (-v: a line per message handled)
	code    int    // exit code; -1 when killed
	killed  bool
	elapsed time.Duration
}

// runSatchel runs `satchel -v --trace FILE sync` and, if killAfter is
// positive, sends it SIGKILL after that long unless it has exited by then.
// A run that outlives runLimit is killed and fails the test as hung.
func (w *world) runSatchel(killAfter time.Duration) run {
	return w.runSatchelKill(killAfter, nil)
}

// runSatchelKill is runSatchel that, given killAt, instead kills the run
// as soon as its trace shows a client line that matches killAt.
func (w *world) runSatchelKill(killAfter time.Duration, killAt *regexp.Regexp) run {
	w.t.Helper()
	w.runs++
	r := run{
		n:     w.runs,
		trace: filepath.Join(w.runDir, fmt.Sprintf("trace-%03d.txt", w.runs)),
		log:   filepath.Join(w.runDir, fmt.Sprintf("log-%03d.txt", w.runs)),
	}
	logFile, err := os.OpenFile(r.log, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(satchelBin, "--config", w.config, "-v", "--trace", r.trace, "sync")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "SATCHEL_CONFIG=", "XDG_DATA_HOME="+filepath.Join(w.dir, "xdg-data"))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("start satchel: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	var kill <-chan time.Time
	switch {
	case killAt != nil:
		kill = watchTrace(r.trace, killAt, done)
	case killAfter > 0:
		timer := time.NewTimer(killAfter)
		defer timer.Stop()
		kill = timer.C
	}
	hang := time.NewTimer(runLimit)
	defer hang.Stop()
	select {
	case <-done:
	case <-kill:
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	case <-hang.C:
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		w.t.Fatalf("run %d: satchel sync did not finish within %v; log tail:\n%s", r.n, runLimit, tail(r.log, 20))
	}
	r.elapsed = time.Since(start)
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	r.killed = ws.Signaled() && ws.Signal() == syscall.SIGKILL
	r.code = cmd.ProcessState.ExitCode()
	return r
}

// mustComplete runs satchel to the end; a run that does not exit 0 is a
// problem of the world.
func (w *world) mustComplete(what string) run {
	w.t.Helper()
	r := w.runSatchel(0)
	if r.code != 0 {
		w.problem("%s: run %d exited %d (want 0); log tail:\n%s", what, r.n, r.code, tail(r.log, 12))
	}
	return r
}

// watchTrace follows a trace file while it is written and sends on the
// returned channel when a client line matches re, or closes nothing and
// returns when done is closed. It reads as fast as it can: the step after
// the matched command follows within a round trip.
func watchTrace(path string, re *regexp.Regexp, done <-chan struct{}) <-chan time.Time {
	matched := make(chan time.Time, 1)
	go func() {
		var f *os.File
		defer func() {
			if f != nil {
				f.Close()
			}
		}()
		var pending []byte
		buf := make([]byte, 256<<10)
		for {
			select {
			case <-done:
				return
			default:
			}
			if f == nil {
				var err error
				if f, err = os.Open(path); err != nil {
					f = nil
					time.Sleep(100 * time.Microsecond)
					continue
				}
			}
			n, _ := f.Read(buf)
			if n == 0 {
				time.Sleep(100 * time.Microsecond)
				continue
			}
			pending = append(pending, buf[:n]...)
			for {
				i := bytes.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				line := string(pending[:i])
				pending = pending[i+1:]
				if strings.HasPrefix(line, "C") && re.MatchString(line) {
					matched <- time.Now()
					return
				}
			}
			if len(pending) > 1<<20 {
				// A body line, never a command: keep memory flat.
				pending = pending[len(pending)-1024:]
			}
		}
	}()
	return matched
}

// tail returns the last n lines of a file, each cut to 300 bytes.
func tail(path string, n int) string {
	lines := lastLines(path, n, nil)
	return strings.Join(lines, "\n")
}

// lastLines returns the last n lines of a file that match keep (all
// lines when keep is nil), each cut to 300 bytes. Only the last 1 MiB of
// the file is read: traces hold whole message bodies.
func lastLines(path string, n int, keep *regexp.Regexp) []string {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		// Killed before it created the file.
		return nil
	}
	if err != nil {
		return []string{fmt.Sprintf("(%v)", err)}
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 1<<20 {
		f.Seek(fi.Size()-1<<20, io.SeekStart)
	}
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 256<<10)
	for sc.Scan() {
		line := sc.Text()
		if keep != nil && !keep.MatchString(line) {
			continue
		}
		if len(line) > 300 {
			line = line[:300] + "..."
		}
		out = append(out, line)
		if len(out) > n {
			out = out[1:]
		}
	}
	return out
}

// commandLine matches a traced client command line (not literal data,
// which is message text): a tag and an upper-case command.
var commandLine = regexp.MustCompile(`^C[:|] [A-Za-z0-9.]+ (UID )?[A-Z]+( |$)`)

// mutating matches the client commands that change the server (its
// messages or its mailboxes) or download a body; a sync with nothing to do
// sends none of them.
var mutating = regexp.MustCompile(`^C[:|] [A-Za-z0-9.]+ (UID )?(APPEND|STORE|COPY|MOVE|EXPUNGE|CREATE|DELETE|RENAME|SUBSCRIBE|UNSUBSCRIBE)( |$)|^C[:|] [A-Za-z0-9.]+ (UID )?FETCH .*BODY(\.PEEK)?\[\]`)

// copyFile copies src to dst; a missing src is not an error.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyIndex copies the index as the last run left it (the database and
// its write-ahead log, which holds the committed transactions a killed
// run did not checkpoint) into the run directory, and returns the copy.
func (w *world) copyIndex(name string) (string, error) {
	dst := filepath.Join(w.runDir, name+".db")
	for _, suffix := range []string{"", "-wal"} {
		if err := copyFile(w.index+suffix, dst+suffix); err != nil {
			return "", err
		}
	}
	if _, err := os.Stat(dst); err != nil {
		return "", err
	}
	return dst, nil
}

// observeKill looks at both sides after a killed run: the messages that
// are now on a side twice or on neither side are recorded in firstSeen
// (the final check names the run that first showed them), and the run is
// summed up in w.kills with its last command, its last log line and the
// index it left.
func (w *world) observeKill(r run, delay, clean time.Duration) {
	w.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "run %d (%s) killed after %v (%.0f%% of a clean run)", r.n, w.mode.name, delay.Round(time.Millisecond), 100*float64(delay)/float64(clean))
	if cmds := lastLines(r.trace, 1, commandLine); len(cmds) > 0 {
		fmt.Fprintf(&b, "; last command %q", cmds[0])
	}
	if lines := lastLines(r.log, 1, nil); len(lines) > 0 {
		fmt.Fprintf(&b, "; last log line %q", lines[0])
	}
	var diag strings.Builder
	if copy, err := w.copyIndex(fmt.Sprintf("index-after-%03d", r.n)); err != nil {
		fmt.Fprintf(&b, "; index: %v", err)
	} else if ix, err := readIndex(copy); err != nil {
		fmt.Fprintf(&b, "; index: %v", err)
	} else {
		fmt.Fprintf(&b, "; index %s", ix.summary())
		diag.WriteString(ix.dump())
	}
	lv, lerr := w.scanLocal(false)
	sv, serr := w.peekServer(false)
	if err := errors.Join(lerr, serr); err != nil {
		w.t.Fatalf("after run %d: %v", r.n, err)
	}
	var anomalies []string
	ids := map[string]bool{}
	for id := range w.model {
		ids[id] = true
	}
	for id := range lv.byID {
		ids[id] = true
	}
	for id := range sv.byID {
		ids[id] = true
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		s, l := sv.byID[id], lv.byID[id]
		var what string
		switch {
		case len(s) > 1:
			what = fmt.Sprintf("on the server %d times %s", len(s), whereServer(s))
		case len(l) > 1:
			what = fmt.Sprintf("in the Maildir %d times %s", len(l), whereLocal(l))
		case len(s) == 0 && len(l) == 0 && w.model[id] != nil:
			what = "on neither side"
		default:
			continue
		}
		anomalies = append(anomalies, id+": "+what)
		if w.firstSeen[id] == "" {
			w.firstSeen[id] = fmt.Sprintf("first seen after run %d (killed after %v): %s", r.n, delay.Round(time.Millisecond), what)
		}
	}
	if len(anomalies) > 0 {
		fmt.Fprintf(&b, "; %d messages twice or on neither side", len(anomalies))
	}
	w.kills = append(w.kills, b.String())
	fmt.Fprintf(&diag, "\n%s\n\n%s\n", b.String(), strings.Join(anomalies, "\n"))
	os.WriteFile(filepath.Join(w.runDir, fmt.Sprintf("after-%03d.txt", r.n)), []byte(diag.String()), 0o600)
}
