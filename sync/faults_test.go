package sync_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// faultEnv is an env whose connections go through a fault proxy.
type faultEnv struct {
	*env
	proxy *imaptest.Proxy
	// timeout and large are imapremote's Options.Timeout and
	// LargeMessage; password, when set, replaces the server's.
	timeout  time.Duration
	large    int64
	password string
}

func newFaultEnv(t *testing.T, srv *imaptest.Server) *faultEnv {
	t.Helper()
	// A retry waits a moment, not seconds.
	satsync.SetConnectBackoff(t, 10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond)
	return &faultEnv{env: newEnv(t, srv), proxy: imaptest.NewProxy(t, srv.Addr)}
}

// sync runs one sync through the proxy, as env.sync does directly. The
// context only keeps a fault the code under test misses from hanging the
// test.
func (f *faultEnv) sync() satsync.Result {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f.trace.Reset()
	root := maildir.Root{Dir: f.root}
	password := f.srv.Password
	if f.password != "" {
		password = f.password
	}
	ropts := imapremote.Options{
		Host: f.proxy.Host, Port: f.proxy.Port, TLS: imapremote.TLSNone,
		User: f.srv.User, Auth: imapremote.AuthPlain,
		Password: func(context.Context) (string, error) { return password, nil },
		Trace:    &f.trace,
		Timeout:  f.timeout, LargeMessage: f.large,
	}
	return satsync.Account(ctx, f.opts, satsync.Deps{
		Connect: func(ctx context.Context) (satsync.Remote, error) {
			c, err := imapremote.Dial(ctx, ropts)
			if err != nil {
				return nil, err
			}
			if f.wrap != nil {
				return f.wrap(c), nil
			}
			return c, nil
		},
		Index:     f.ix,
		Folder:    func(rel string) satsync.Folder { return root.Folder(rel) },
		LocalPath: root.Path,
		MkdirAll:  root.MkdirAll,
		MoveFile:  root.MoveFile,
	})
}

func (f *faultEnv) mustSync() satsync.Result {
	f.t.Helper()
	res := f.sync()
	if res.Err != nil {
		f.t.Fatalf("sync: %v", res.Err)
	}
	for _, m := range res.Mailboxes {
		if m.Err != nil {
			f.t.Fatalf("sync %s: %v", m.Name, m.Err)
		}
	}
	return res
}

// largeMsg is a message of about size bytes, CRLF throughout.
func largeMsg(subject string, size int) []byte {
	var b bytes.Buffer
	b.Write(msg(subject))
	for i := 0; b.Len() < size; i++ {
		b.WriteString(strconv.Itoa(i) + " " + strings.Repeat("0123456789", 7) + "\r\n")
	}
	return b.Bytes()
}

// fetchedUIDs lists, per UID, the BODY.PEEK[] requests of a trace that
// named it: "" for a whole message, "offset.length" for a part.
func fetchedUIDs(t *testing.T, trace string) map[mail.UID][]string {
	t.Helper()
	re := regexp.MustCompile(`(?i)^C: \S+ UID FETCH (\S+) \(UID BODY\.PEEK\[\](?:<(\d+\.\d+)>)?\)`)
	out := map[mail.UID][]string{}
	for line := range strings.Lines(trace) {
		m := re.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
		if m == nil {
			continue
		}
		for _, r := range strings.Split(m[1], ",") {
			lo, hi, _ := strings.Cut(r, ":")
			if hi == "" {
				hi = lo
			}
			a, err1 := strconv.ParseUint(lo, 10, 32)
			b, err2 := strconv.ParseUint(hi, 10, 32)
			if err1 != nil || err2 != nil {
				t.Fatalf("cannot read the UID set of %q", line)
			}
			for u := a; u <= b; u++ {
				out[mail.UID(u)] = append(out[mail.UID(u)], m[2])
			}
		}
	}
	return out
}

// cutFetch cuts the connection a little into the body of one message.
type cutFetch struct {
	satsync.Remote
	proxy *imaptest.Proxy
	uid   mail.UID
}

func (c cutFetch) FetchBodies(ctx context.Context, msgs []mail.RemoteMessage, fn func(mail.UID, int64, io.Reader) error) error {
	return c.Remote.FetchBodies(ctx, msgs, func(uid mail.UID, size int64, body io.Reader) error {
		if uid == c.uid {
			c.proxy.CutAfter(true, 100<<10)
		}
		return fn(uid, size, body)
	})
}

// TestFaultCutMidFetch: the connection drops in the middle of a large
// message. That mailbox fails, alone: the other one syncs on a new
// connection. The next run fetches only the message that was not
// committed.
func TestFaultCutMidFetch(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	var uids []uint32
	for i, body := range [][]byte{msg("one"), msg("two"), largeMsg("big", 300<<10), msg("four")} {
		uids = append(uids, srv.Append("INBOX", body, nil, day.Add(time.Duration(i)*time.Hour)))
	}
	big := mail.UID(uids[2])
	srv.CreateMailbox("Lists")
	srv.Append("Lists", msg("list one"), nil, day)
	srv.Append("Lists", msg("list two"), nil, day)

	f := newFaultEnv(t, srv)
	f.large = 64 << 10
	f.wrap = func(r satsync.Remote) satsync.Remote { return cutFetch{Remote: r, proxy: f.proxy, uid: big} }
	res := f.sync()
	if res.Err != nil {
		t.Fatalf("sync: %v", res.Err)
	}
	if res.Failed() != 1 {
		t.Fatalf("%d mailboxes failed, want 1: %+v", res.Failed(), res.Mailboxes)
	}
	for _, m := range res.Mailboxes {
		switch m.Name {
		case "INBOX":
			if !errors.Is(m.Err, mail.ErrTransient) || m.Downloaded != 3 {
				t.Errorf("INBOX: err %v, downloaded %d; want it cut off after the 3 small messages", m.Err, m.Downloaded)
			}
		case "Lists":
			if m.Err != nil || m.Downloaded != 2 {
				t.Errorf("Lists: err %v, downloaded %d; want it synced", m.Err, m.Downloaded)
			}
		}
	}
	if f.proxy.Conns() < 2 {
		t.Errorf("%d connections: Lists did not get a new one", f.proxy.Conns())
	}
	// Nothing of the cut message where mail readers look, nor left over.
	inbox := f.dir("INBOX")
	for _, sub := range []string{"new", "cur", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(inbox.Path, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(inbox.Path, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("Subject: big\n")) {
				t.Errorf("%s/%s holds part of the cut message (%d bytes)", sub, e.Name(), len(b))
			}
		}
	}

	f.wrap = nil
	res = f.mustSync()
	if down, _, _ := totals(res); down != 1 {
		t.Errorf("second run downloaded %d messages, want only the cut one", down)
	}
	fetched := fetchedUIDs(t, f.trace.String())
	for u := range fetched {
		if u != big {
			t.Errorf("second run fetched UID %d again (%v)", u, fetched[u])
		}
	}
	if len(fetched[big]) < 2 {
		t.Errorf("UID %d fetched as %v, want several parts", big, fetched[big])
	}
	f.assertMirror(true)
}

// cutAppend cuts the connection during an upload: while the message is
// being sent, or once all of it is, before the server's reply.
type cutAppend struct {
	satsync.Remote
	proxy      *imaptest.Proxy
	afterWhole bool
}

func (c cutAppend) AppendBatch(ctx context.Context, mailbox string, msgs []mail.Outgoing) ([]mail.Appended, error) {
	if len(msgs) == 0 {
		return c.Remote.AppendBatch(ctx, mailbox, msgs)
	}
	first := msgs[0]
	open := first.Open
	if !c.afterWhole {
		first.Open = func() (io.ReadCloser, error) {
			c.proxy.CutAfter(false, first.Size/2)
			return open()
		}
	} else {
		first.Open = func() (io.ReadCloser, error) {
			body, err := open()
			if err != nil {
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{&onEOF{r: body, fn: func() { c.proxy.CutAfter(true, 0) }}, body}, nil
		}
	}
	return c.Remote.AppendBatch(ctx, mailbox, append([]mail.Outgoing{first}, msgs[1:]...))
}

// onEOF calls fn when r ends: the whole message has been handed over.
type onEOF struct {
	r  io.Reader
	fn func()
}

func (o *onEOF) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	if err == io.EOF && o.fn != nil {
		o.fn()
		o.fn = nil
	}
	return n, err
}

// TestFaultCutMidAppend: the connection drops during an upload. The
// mailbox is synced again on a new connection in the same run, where the
// cut comes again while sending (it fails, and the next run uploads the
// message) but not once the server has the message; the server ends up
// with one copy of it.
func TestFaultCutMidAppend(t *testing.T) {
	for _, tc := range []struct {
		name       string
		afterWhole bool
		stored     int // copies on the server after the cut
	}{
		{"while sending", false, 0},
		// The server has stored the message but satchel never hears so;
		// the mailbox synced again finds it there.
		{"before the reply", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
			srv.Append("INBOX", msg("already there"), nil, day)
			f := newFaultEnv(t, srv)
			f.mustSync()
			f.writeLocal("INBOX", largeMsg("draft", 200<<10), mail.NewFlags(mail.FlagSeen, mail.FlagDraft))

			f.wrap = func(r satsync.Remote) satsync.Remote {
				return cutAppend{Remote: r, proxy: f.proxy, afterWhole: tc.afterWhole}
			}
			res := f.sync()
			switch {
			case tc.stored == 0 && (res.Err != nil || res.Failed() != 1 || !errors.Is(res.Mailboxes[0].Err, mail.ErrTransient)):
				t.Fatalf("sync with the cut: err %v, mailboxes %+v; want INBOX cut off", res.Err, res.Mailboxes)
			case tc.stored == 1 && (res.Err != nil || res.Failed() != 0 || res.Mailboxes[0].Uploaded != 0):
				t.Fatalf("sync with the cut: err %v, mailboxes %+v; want INBOX synced again, the message found", res.Err, res.Mailboxes)
			}
			copies := func() int {
				n := 0
				for _, m := range srv.Messages("INBOX") {
					if bytes.Contains(m.Body, []byte("Subject: draft\r\n")) {
						n++
					}
				}
				return n
			}
			if n := copies(); n != tc.stored {
				t.Fatalf("after the cut the server has %d copies of the message, want %d", n, tc.stored)
			}

			f.wrap = nil
			f.mustSync()
			if n := copies(); n != 1 {
				t.Fatalf("the server has %d copies of the uploaded message, want 1", n)
			}
			f.assertMirror(false)
			f.assertSettled()
		})
	}
}

// stallFetch stops the proxy's traffic as the bodies are asked for.
type stallFetch struct {
	satsync.Remote
	proxy *imaptest.Proxy
}

func (s stallFetch) FetchBodies(ctx context.Context, msgs []mail.RemoteMessage, fn func(mail.UID, int64, io.Reader) error) error {
	s.proxy.Stall()
	return s.Remote.FetchBodies(ctx, msgs, fn)
}

// TestFaultStall: a server that goes silent in the middle of a sync
// fails the mailbox with ErrTimeout instead of holding the run.
func TestFaultStall(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.Append("INBOX", msg("one"), nil, day)
	f := newFaultEnv(t, srv)
	f.timeout = 500 * time.Millisecond
	f.wrap = func(r satsync.Remote) satsync.Remote { return stallFetch{Remote: r, proxy: f.proxy} }
	res := f.sync()
	if res.Err != nil {
		t.Fatalf("sync: %v", res.Err)
	}
	if len(res.Mailboxes) != 1 || !errors.Is(res.Mailboxes[0].Err, imapremote.ErrTimeout) {
		t.Fatalf("mailboxes %+v; want INBOX failed with ErrTimeout", res.Mailboxes)
	}

	f.proxy.Heal()
	f.wrap, f.timeout = nil, 0
	f.mustSync()
	f.assertMirror(true)
}

// TestFaultTrickle: over a slow link, a message above LargeMessage comes
// in parts, and bytes that keep arriving, however slowly, never count as
// the server's silence: the message takes longer than Timeout (1.2 MiB
// at 400 kB/s, 3 s).
func TestFaultTrickle(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	big := mail.UID(srv.Append("INBOX", largeMsg("big", 1200<<10), nil, day))
	srv.Append("INBOX", msg("small"), nil, day)
	f := newFaultEnv(t, srv)
	f.large = 64 << 10
	f.timeout = 2 * time.Second
	f.proxy.Trickle(400_000)
	f.mustSync()
	if parts := fetchedUIDs(t, f.trace.String())[big]; len(parts) < 2 || parts[0] == "" {
		t.Errorf("UID %d fetched as %v, want several parts", big, parts)
	}
	f.assertMirror(true)
}

// TestFaultRetry: a connection that drops before the greeting is tried
// again and the sync succeeds; a server that never answers is given up
// after the retries; refused credentials are not retried.
func TestFaultRetry(t *testing.T) {
	t.Run("dropped once", func(t *testing.T) {
		srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
		srv.Append("INBOX", msg("one"), nil, day)
		f := newFaultEnv(t, srv)
		f.proxy.CutAfter(true, 0)
		res := f.mustSync()
		if down, _, _ := totals(res); down != 1 {
			t.Errorf("downloaded %d, want 1", down)
		}
		if n := f.proxy.Conns(); n != 2 {
			t.Errorf("%d connections, want 2 (one dropped, one retried)", n)
		}
		f.assertMirror(true)
	})
	t.Run("silent", func(t *testing.T) {
		srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
		f := newFaultEnv(t, srv)
		f.timeout = 300 * time.Millisecond
		f.proxy.Stall()
		res := f.sync()
		if !errors.Is(res.Err, imapremote.ErrTimeout) {
			t.Errorf("sync error %v, want ErrTimeout", res.Err)
		}
		if n := f.proxy.Conns(); n != 4 {
			t.Errorf("%d connections, want 4 (the first and 3 retries)", n)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		srv := imaptest.StartMemory(t)
		f := newFaultEnv(t, srv)
		f.password = "not-" + srv.Password
		res := f.sync()
		if !errors.Is(res.Err, imapremote.ErrAuth) {
			t.Errorf("sync error %v, want ErrAuth", res.Err)
		}
		if n := f.proxy.Conns(); n != 1 {
			t.Errorf("%d connections, want 1: refused credentials are not retried", n)
		}
	})
}
