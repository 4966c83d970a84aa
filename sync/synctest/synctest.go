// Package synctest holds what satchel's tests repeat across packages: a
// buffer that several goroutines write (protocol traces, a command's
// output) and the IMAP options that reach a test server.
//
// It is test support: only _test.go files may import it (the module's
// layer test, layers_test.go, says so). It may import the test servers
// (sync/imaptest) and the adapters; sync/imaptest itself must not import
// satchel's adapters, which is why these helpers are not there.
package synctest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

// Buffer is a bytes.Buffer that goroutines may write while the test
// reads it: go-imap's reader and writer both write a trace, progress
// bars and a logger write a command's output. Its zero value is empty and
// ready.
type Buffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	waiters []waiter
}

type waiter struct {
	text string
	seen chan struct{}
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.b.Write(p)
	l.wake()
	return n, err
}

// String returns what was written.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Reset forgets what was written.
func (l *Buffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

// Seen returns a channel closed once the buffer holds text.
func (l *Buffer) Seen(text string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := waiter{text: text, seen: make(chan struct{})}
	l.waiters = append(l.waiters, w)
	l.wake()
	return w.seen
}

// wake closes the channels of the texts the buffer holds now. l.mu is
// held.
func (l *Buffer) wake() {
	keep := l.waiters[:0]
	for _, w := range l.waiters {
		if strings.Contains(l.b.String(), w.text) {
			close(w.seen)
			continue
		}
		keep = append(keep, w)
	}
	l.waiters = keep
}

// RemoteOptions are the IMAP options that log in to srv as its user,
// without TLS (test servers listen on loopback), with the protocol traced
// to trace when it is not nil.
func RemoteOptions(srv *imaptest.Server, trace *Buffer) imapremote.Options {
	o := imapremote.Options{
		Host: srv.Host, Port: srv.Port, TLS: imapremote.TLSNone,
		User: srv.User, Auth: imapremote.AuthPlain,
		Password: func(context.Context) (string, error) { return srv.Password, nil },
	}
	if trace != nil {
		o.Trace = trace
	}
	return o
}

// VerifyFolder is a Maildir folder as sync/verify reads it (verify.Folder):
// a message's file opened by its key, wherever it is now.
type VerifyFolder struct{ maildir.Folder }

// Open opens the file of key; an absent one fails with os.ErrNotExist.
func (f VerifyFolder) Open(key string) (io.ReadCloser, error) {
	e, ok, err := f.Dir.Find(key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("open %s: %w", key, os.ErrNotExist)
	}
	return os.Open(e.Path(f.Dir))
}
