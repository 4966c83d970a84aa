package imapremote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// DefaultTimeout is Options.Timeout when it is zero.
const DefaultTimeout = 2 * time.Minute

// ErrTimeout: a command was waiting for the server and nothing arrived
// for Options.Timeout (or for one of go-imap's own read deadlines); the
// connection was closed. It is transient (mail.ErrTransient).
var ErrTimeout = errors.New("the server stopped answering")

// go-imap v2.0.0-beta.8 bounds reads with deadlines of its own, but none
// covers the wait for a reply: its read loop clears the deadline after
// each response (idleReadTimeout is 0) and peeks for the first byte of
// the next one with none set, so a server that goes silent after a
// command holds the caller forever. Once a response has begun, the rest
// of it must arrive within respReadTimeout (30 s), and each FETCH literal
// within literalReadTimeout (5 min, counted until the consumer has read
// it all); the greeting is under respReadTimeout too. The writes of a
// command have cmdWriteTimeout (30 s), a literal's literalWriteTimeout
// (5 min).
//
// watchdog adds the missing bound below go-imap, without deadlines (go-imap
// sets and clears those on the same connection): while a call is pending
// (arm) and a Read is waiting on the socket, the connection is closed if
// neither a byte arrives nor a Write makes progress for the timeout.
// Time in which nobody reads (the caller is busy writing a message to
// disk and has not asked for more) does not count, nor does an idle
// connection with no call pending.
//
// It sits directly on the TCP connection, so the TLS handshake and the
// greeting are covered as well, and every byte counts, TLS records
// included.
type watchdog struct {
	net.Conn
	timeout time.Duration

	mu      sync.Mutex
	armed   int       // pending calls
	reading bool      // a Read is waiting on the socket
	last    time.Time // latest of: arming, a Read starting, progress
	timer   *time.Timer
	fired   bool
	sockErr error // the socket's first read or write error
}

func newWatchdog(conn net.Conn, timeout time.Duration) *watchdog {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &watchdog{Conn: conn, timeout: timeout}
}

func (w *watchdog) Read(p []byte) (int, error) {
	w.mu.Lock()
	w.reading, w.last = true, time.Now()
	w.mu.Unlock()
	n, err := w.Conn.Read(p)
	w.mu.Lock()
	w.reading = false
	if n > 0 {
		w.last = time.Now()
	}
	w.noteErr(err)
	w.mu.Unlock()
	return n, err
}

func (w *watchdog) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	w.mu.Lock()
	if n > 0 {
		// An upload in progress is not silence: the server answers
		// only once the literal is complete.
		w.last = time.Now()
	}
	w.noteErr(err)
	w.mu.Unlock()
	return n, err
}

// noteErr keeps the socket's first error. The caller holds mu.
func (w *watchdog) noteErr(err error) {
	if err != nil && w.sockErr == nil {
		w.sockErr = err
	}
}

// arm starts watching for the duration of one call; the returned function
// ends it. Calls may nest.
func (w *watchdog) arm() func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed++
	if w.armed == 1 {
		w.last = time.Now()
		if w.timer == nil {
			w.timer = time.AfterFunc(w.timeout, w.check)
		} else {
			w.timer.Reset(w.timeout)
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.armed--
			if w.armed == 0 {
				w.timer.Stop()
			}
		})
	}
}

// check runs when the timeout may have passed: it closes the connection
// if it has, or looks again when it could.
func (w *watchdog) check() {
	w.mu.Lock()
	if w.armed == 0 || w.fired {
		w.mu.Unlock()
		return
	}
	wait := w.timeout
	if w.reading {
		wait -= time.Since(w.last)
	}
	if wait > 0 {
		w.timer.Reset(wait)
		w.mu.Unlock()
		return
	}
	w.fired = true
	w.mu.Unlock()
	// go-imap's pending command fails with the read error this causes.
	w.Conn.Close()
}

// explain turns the error of a call on this connection into the one to
// report: the context's if it ended (the connection was closed for it),
// ErrTimeout if the server stopped answering, and err marked transient
// (mail.ErrTransient) if the connection failed under it. go-imap reports
// socket errors as text only, so the socket's own error decides.
func (w *watchdog) explain(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	w.mu.Lock()
	fired, sockErr := w.fired, w.sockErr
	w.mu.Unlock()
	switch {
	case fired:
		return transient(fmt.Errorf("%w: nothing received for %v", ErrTimeout, w.timeout))
	case errors.Is(sockErr, os.ErrDeadlineExceeded):
		return transient(fmt.Errorf("%w: %w", ErrTimeout, sockErr))
	case sockErr != nil && transientNetErr(sockErr):
		return transient(err)
	}
	return err
}

// transientNetErr reports whether a socket error may not recur on a new
// connection: the peer closed or reset it, or it timed out. An unknown
// host or an unreachable network is not expected to change within the
// seconds a retry waits.
func transientNetErr(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	}
	return false
}

// transientError marks an error as worth retrying on a new connection
// without changing its text.
type transientError struct{ err error }

func transient(err error) error { return &transientError{err} }

func (e *transientError) Error() string   { return e.err.Error() }
func (e *transientError) Unwrap() []error { return []error{e.err, mail.ErrTransient} }
