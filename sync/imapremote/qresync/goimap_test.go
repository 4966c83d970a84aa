package qresync_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/satchel-mail/satchel/sync/imapremote/qresync"
)

// scripted is the server end of a net.Pipe, driven by the test goroutine.
type scripted struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (s *scripted) send(text string) {
	s.t.Helper()
	if _, err := io.WriteString(s.c, text); err != nil {
		s.t.Fatalf("server send %q: %v", text, err)
	}
}

func (s *scripted) line() string {
	s.t.Helper()
	l, err := s.br.ReadString('\n')
	if err != nil {
		s.t.Fatalf("server read: %v (after %q)", err, l)
	}
	return l
}

func (s *scripted) expect(want string) {
	s.t.Helper()
	if got := s.line(); got != want {
		s.t.Fatalf("server got %q, want %q", got, want)
	}
}

// lockedBuffer collects go-imap's DebugWriter output, which its read and
// write goroutines both write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fetchSink collects what go-imap hands to UnilateralDataHandler.Fetch,
// which it calls on goroutines of its own.
type fetchSink struct {
	mu   sync.Mutex
	got  []*imapclient.FetchMessageBuffer
	more chan struct{}
}

func newFetchSink() *fetchSink { return &fetchSink{more: make(chan struct{}, 1)} }

func (f *fetchSink) fetch(msg *imapclient.FetchMessageData) {
	buf, err := msg.Collect()
	if err != nil {
		return
	}
	f.mu.Lock()
	f.got = append(f.got, buf)
	f.mu.Unlock()
	select {
	case f.more <- struct{}{}:
	default:
	}
}

// wait returns the UIDs of the first n messages, once there are n.
func (f *fetchSink) wait(t *testing.T, n int) []imap.UID {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		if len(f.got) >= n {
			var uids []imap.UID
			for _, b := range f.got[:n] {
				uids = append(uids, b.UID)
			}
			f.got = f.got[n:]
			f.mu.Unlock()
			slices.Sort(uids)
			return uids
		}
		f.mu.Unlock()
		select {
		case <-f.more:
		case <-timeout:
			t.Fatalf("UnilateralDataHandler.Fetch got %d messages, want %d", len(f.got), n)
		}
	}
}

// start connects go-imap through a Conn to a scripted server that greets
// with PREAUTH and caps.
func start(t *testing.T, caps string, opts *imapclient.Options) (*qresync.Conn, *imapclient.Client, *scripted) {
	t.Helper()
	cli, srv := net.Pipe()
	srv.SetDeadline(time.Now().Add(30 * time.Second))
	q := qresync.Wrap(cli)
	ic := imapclient.New(q, opts)
	t.Cleanup(func() { ic.Close() })
	s := &scripted{t: t, c: srv, br: bufio.NewReader(srv)}
	s.send("* PREAUTH [CAPABILITY IMAP4rev1 ENABLE " + caps + "] ready\r\n")
	if err := ic.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	return q, ic, s
}

func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func TestEnableHiddenFromGoIMAP(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  error // nil, ErrNotEnabled, or any error (errAny)
	}{
		{"enabled", "* ENABLED QRESYNC\r\nQ1 OK Enabled.\r\n", nil},
		{"enabled with CONDSTORE", "* ENABLED CONDSTORE QRESYNC\r\nQ1 OK [X] Enabled.\r\n", nil},
		{"declined", "* ENABLED\r\nQ1 OK Nothing enabled.\r\n", qresync.ErrNotEnabled},
		{"refused", "Q1 BAD Unknown command.\r\n", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var debug lockedBuffer
			q, ic, s := start(t, "CONDSTORE QRESYNC", &imapclient.Options{DebugWriter: &debug})
			done := async(func() error { return q.Enable(context.Background()) })
			s.expect("Q1 ENABLE QRESYNC\r\n")
			// Other responses meanwhile go to go-imap.
			s.send("* 3 EXISTS\r\n" + tt.reply)
			err := <-done
			switch {
			case tt.want == errAny && err == nil:
				t.Fatal("Enable succeeded")
			case tt.want != errAny && !errors.Is(err, tt.want):
				t.Fatalf("Enable: %v, want %v", err, tt.want)
			}
			if q.Enabled() != (tt.want == nil) {
				t.Errorf("Enabled() = %v", q.Enabled())
			}

			// go-imap is alive, in step, and never saw the exchange.
			noop := async(func() error { return ic.Noop().Wait() })
			s.expect("T1 NOOP\r\n")
			s.send("T1 OK done\r\n")
			if err := <-noop; err != nil {
				t.Fatalf("NOOP after Enable: %v", err)
			}
			if d := debug.String(); strings.Contains(d, "Q1") || strings.Contains(d, "ENABLED") || !strings.Contains(d, "* 3 EXISTS") {
				t.Errorf("go-imap's traffic:\n%s", d)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestEnableCancelled(t *testing.T) {
	q, ic, s := start(t, "QRESYNC", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := async(func() error { return q.Enable(ctx) })
	s.expect("Q1 ENABLE QRESYNC\r\n")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Enable: %v, want context.Canceled", err)
	}
	select {
	case <-ic.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection stays open after the cancelled Enable")
	}
}

func TestQResyncSelectThroughGoIMAP(t *testing.T) {
	sink := newFetchSink()
	q, ic, s := start(t, "CONDSTORE QRESYNC", &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Fetch: sink.fetch},
	})
	done := async(func() error { return q.Enable(context.Background()) })
	s.expect("Q1 ENABLE QRESYNC\r\n")
	s.send("* ENABLED QRESYNC\r\nQ1 OK Enabled.\r\n")
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	long := strings.Repeat("x", 5000) // too long to quote: go-imap sends a literal
	tests := []struct {
		name    string
		mailbox string
		opts    *imap.SelectOptions
		known   string
		cmd     string // the lines the server reads, "+" answered after a literal
		// the server's answer before the tagged OK
		answer  string
		uids    []qresync.Range
		fetched []imap.UID
	}{
		{
			name:    "INBOX with CONDSTORE",
			mailbox: "INBOX",
			opts:    &imap.SelectOptions{CondStore: true},
			known:   "1:10",
			cmd:     "T1 SELECT INBOX (QRESYNC (7 42 1:10))\r\n",
			answer: "* 7 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [HIGHESTMODSEQ 50] x\r\n" +
				"* VANISHED (EARLIER) 3,5,8\r\n* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (45))\r\n* 6 FETCH (UID 9 FLAGS () MODSEQ (47))\r\n",
			uids:    []qresync.Range{{3, 3}, {5, 5}, {8, 8}},
			fetched: []imap.UID{2, 9},
		},
		{
			name:    "non-ASCII name, reselect closes INBOX",
			mailbox: "Entwürfe",
			cmd:     "T2 SELECT \"Entw&APw-rfe\" (QRESYNC (7 42))\r\n",
			answer: "* VANISHED 4\r\n* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (51))\r\n* OK [CLOSED] x\r\n" +
				"* 1 EXISTS\r\n* VANISHED (EARLIER) 2:3\r\n",
			uids: []qresync.Range{{2, 3}},
		},
		{
			name:    "EXAMINE, quoted specials",
			mailbox: `a "b" \c`,
			opts:    &imap.SelectOptions{ReadOnly: true, CondStore: true},
			known:   "1:3",
			cmd:     `T3 EXAMINE "a \"b\" \\c" (QRESYNC (7 42 1:3))` + "\r\n",
			answer:  "* 0 EXISTS\r\n",
		},
		{
			name:    "literal name",
			mailbox: long,
			opts:    &imap.SelectOptions{CondStore: true},
			cmd:     "T4 SELECT {5000}\r\n+" + long + " (QRESYNC (7 42))\r\n",
			answer:  "* 0 EXISTS\r\n* VANISHED (EARLIER) 1:100\r\n",
			uids:    []qresync.Range{{1, 100}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := q.ArmSelect(7, 42, tt.known); err != nil {
				t.Fatal(err)
			}
			var data *imap.SelectData
			done := async(func() error {
				var err error
				data, err = ic.Select(tt.mailbox, tt.opts).Wait()
				return err
			})
			cmd, rest, literal := strings.Cut(tt.cmd, "+")
			s.expect(cmd)
			if literal {
				s.send("+ go on\r\n")
				s.expect(rest)
			}
			tag, _, _ := strings.Cut(cmd, " ")
			s.send(tt.answer + tag + " OK [READ-WRITE] Selected.\r\n")
			if err := <-done; err != nil {
				t.Fatalf("Select: %v", err)
			}
			if uids, earlier := q.Vanished(); !slices.Equal(uids, tt.uids) || earlier != (tt.uids != nil) {
				t.Errorf("Vanished() = %v, %v; want %v", uids, earlier, tt.uids)
			}
			if n := q.SelectFetches(); n != len(tt.fetched) {
				t.Errorf("SelectFetches() = %d, want %d", n, len(tt.fetched))
			}
			if tt.fetched != nil {
				if got := sink.wait(t, len(tt.fetched)); !slices.Equal(got, tt.fetched) {
					t.Errorf("UnilateralDataHandler.Fetch got UIDs %v, want %v", got, tt.fetched)
				}
			}
			if data.UIDValidity == 0 && tt.name == "INBOX with CONDSTORE" {
				t.Errorf("go-imap lost the SELECT data: %+v", data)
			}
		})
	}
}
