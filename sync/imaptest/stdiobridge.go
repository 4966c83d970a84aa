package imaptest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// stdioBridge serves an IMAP server that talks on stdin and stdout, one
// process per connection, the way inetd would run it: it accepts
// connections on ln and bridges each to a fresh process made by command.
//
// The process's stdin and stdout are pipes rather than the socket itself,
// so the bridge can close any session on stop without relying on the
// process to notice a shutdown socket, and so the process never inherits a
// descriptor the Go runtime has in non-blocking mode.
type stdioBridge struct {
	name    string           // for messages, e.g. "courier imapd"
	command func() *exec.Cmd // a new, unstarted command per connection; Stdin, Stdout and Stderr are set by serve
	log     *os.File         // stderr of every process, and bridge errors
	ln      net.Listener
	done    chan struct{} // closed when acceptLoop returns

	mu       sync.Mutex
	closed   bool // set by stop; sessions started afterwards close at once
	sessions map[*bridgeSession]struct{}
	started  []*os.Process // every process ever started, for the cleanup test
	wg       sync.WaitGroup
}

type bridgeSession struct {
	conn net.Conn
	proc *os.Process
}

// listenStdio opens the log at logPath and a listener on 127.0.0.1:0,
// and starts a bridge on it (see newStdioBridge); what names the server
// in messages. The caller must call stop.
func listenStdio(t testing.TB, what, logPath string, command func() *exec.Cmd) (*stdioBridge, *net.TCPAddr) {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("imaptest: create %s log: %v", what, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		logFile.Close()
		t.Fatalf("imaptest: listen: %v", err)
	}
	return newStdioBridge(what, ln, logFile, command), ln.Addr().(*net.TCPAddr)
}

// newStdioBridge starts accepting on ln. The caller must call stop.
func newStdioBridge(name string, ln net.Listener, log *os.File, command func() *exec.Cmd) *stdioBridge {
	b := &stdioBridge{
		name:     name,
		command:  command,
		log:      log,
		ln:       ln,
		done:     make(chan struct{}),
		sessions: make(map[*bridgeSession]struct{}),
	}
	go b.acceptLoop()
	return b
}

func (b *stdioBridge) acceptLoop() {
	defer close(b.done)
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				b.logf("accept: %v", err)
			}
			return
		}
		// stop waits for this loop to return before wg.Wait, so Add never
		// races with Wait.
		b.wg.Add(1)
		go b.serve(conn)
	}
}

// serve runs one process for conn. Each direction is copied by its own
// goroutine, and closing either end (client gone, or the process exited
// after LOGOUT) unwinds the other.
func (b *stdioBridge) serve(conn net.Conn) {
	defer b.wg.Done()
	defer conn.Close()

	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		b.logf("pipe: %v", err)
		return
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		b.logf("pipe: %v", err)
		return
	}
	cmd := b.command()
	cmd.Stdin = stdinR
	cmd.Stdout = stdoutW
	cmd.Stderr = b.log
	err = cmd.Start()
	// The child holds its own copies; the parent's would keep the pipes
	// open after the child exits.
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		stdinW.Close()
		stdoutR.Close()
		b.logf("start %s: %v", cmd.Path, err)
		return
	}

	sess := &bridgeSession{conn: conn, proc: cmd.Process}
	b.mu.Lock()
	b.started = append(b.started, cmd.Process)
	closed := b.closed
	if !closed {
		b.sessions[sess] = struct{}{}
	}
	b.mu.Unlock()
	if closed {
		conn.Close()
	}

	var copies sync.WaitGroup
	copies.Add(2)
	go func() {
		defer copies.Done()
		io.Copy(stdinW, conn)
		stdinW.Close() // EOF makes the server exit
	}()
	go func() {
		defer copies.Done()
		io.Copy(conn, stdoutR)
		conn.Close() // the server is gone; the client sees EOF and stdin copying stops
	}()
	if err := cmd.Wait(); err != nil {
		b.logf("%s process %d: %v", b.name, cmd.Process.Pid, err)
	}
	copies.Wait()
	stdoutR.Close()

	b.mu.Lock()
	delete(b.sessions, sess)
	b.mu.Unlock()
}

// stop closes the listener and every connection, waits for the processes
// and bridge goroutines, and kills processes that do not exit within
// stopTimeout of their connection closing.
func (b *stdioBridge) stop() error {
	b.ln.Close()
	<-b.done

	b.mu.Lock()
	b.closed = true
	for s := range b.sessions {
		s.conn.Close()
	}
	b.mu.Unlock()

	finished := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(finished)
	}()
	var err error
	select {
	case <-finished:
	case <-time.After(stopTimeout):
		b.mu.Lock()
		for s := range b.sessions {
			s.proc.Kill()
		}
		n := len(b.sessions)
		b.mu.Unlock()
		<-finished
		err = fmt.Errorf("killed %d %s processes that did not exit within %v of their connection closing", n, b.name, stopTimeout)
	}
	if cerr := b.log.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close log: %w", cerr)
	}
	return err
}

func (b *stdioBridge) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "imaptest bridge: "+format+"\n", args...)
}
