package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestDeliver(t *testing.T) {
	date := time.Date(2024, 11, 25, 21, 26, 40, 0, time.UTC)
	filler := "X-Filler: " + strings.Repeat("x", 300<<10) + "\r\n"
	tests := []struct {
		name     string
		in       string
		flags    mail.Flags
		wantSub  string
		wantInfo string
		wantBody string
		wantID   string
	}{
		{
			name:     "crlf message unseen",
			in:       "Subject: hi\r\nMessage-ID: <a@b>\r\n\r\nline1\r\nline2\r\n",
			wantSub:  "new",
			wantBody: "Subject: hi\nMessage-ID: <a@b>\n\nline1\nline2\n",
			wantID:   "<a@b>",
		},
		{
			name:     "seen and flagged go to cur",
			in:       "Message-ID: <s@x>\r\n\r\nbody\r\n",
			flags:    mail.NewFlags(mail.FlagSeen, mail.FlagFlagged),
			wantSub:  "cur",
			wantInfo: "FS",
			wantBody: "Message-ID: <s@x>\n\nbody\n",
			wantID:   "<s@x>",
		},
		{
			name:     "every letter, keyword dropped",
			in:       "x\r\n",
			flags:    mail.NewFlags(mail.FlagDeleted, mail.FlagSeen, mail.FlagAnswered, mail.FlagForwarded, mail.FlagFlagged, mail.FlagDraft, "$Junk"),
			wantSub:  "cur",
			wantInfo: "DFPRST",
			wantBody: "x\n",
		},
		{
			name:     "answered but unseen stays in new",
			in:       "x",
			flags:    mail.NewFlags(mail.FlagAnswered),
			wantSub:  "new",
			wantInfo: "R",
			wantBody: "x",
		},
		{
			name:     "bare CR and bare LF kept",
			in:       "a\rb\nc\r\r\nd\n\re\r",
			wantSub:  "new",
			wantBody: "a\rb\nc\r\nd\n\re\r",
		},
		{
			name:     "folded Message-ID",
			in:       "Subject: x\r\nMessage-ID:\r\n  <fold@ed>\r\n\r\nbody",
			wantSub:  "new",
			wantBody: "Subject: x\nMessage-ID:\n  <fold@ed>\n\nbody",
			wantID:   "<fold@ed>",
		},
		{
			name:     "field name in any case, value trimmed",
			in:       "message-id:   <lc@x>  \r\n\r\n",
			wantSub:  "new",
			wantBody: "message-id:   <lc@x>  \n\n",
			wantID:   "<lc@x>",
		},
		{
			name:     "no Message-ID in header, one in body",
			in:       "Subject: none\r\n\r\nMessage-ID: <in@body>\r\n",
			wantSub:  "new",
			wantBody: "Subject: none\n\nMessage-ID: <in@body>\n",
		},
		{
			name:     "header only without final newline",
			in:       "Subject: s\r\nMessage-ID: <h@o>",
			wantSub:  "new",
			wantBody: "Subject: s\nMessage-ID: <h@o>",
			wantID:   "<h@o>",
		},
		{
			name:     "header only with final newline",
			in:       "Message-ID: <h2@o>\r\n",
			wantSub:  "new",
			wantBody: "Message-ID: <h2@o>\n",
			wantID:   "<h2@o>",
		},
		{
			name:    "empty message",
			in:      "",
			wantSub: "new",
		},
		{
			name:     "empty header",
			in:       "\r\nMessage-ID: <x@y>\r\n",
			wantSub:  "new",
			wantBody: "\nMessage-ID: <x@y>\n",
		},
		{
			name:     "broken header tolerated",
			in:       "this is no header\r\nMessage-ID: <b@r>\r\n\r\nbody\r\n",
			wantSub:  "new",
			wantBody: "this is no header\nMessage-ID: <b@r>\n\nbody\n",
		},
		{
			name:     "LF input unchanged",
			in:       "Message-ID: <lf@x>\n\nbody\n",
			wantSub:  "new",
			wantBody: "Message-ID: <lf@x>\n\nbody\n",
			wantID:   "<lf@x>",
		},
		{
			name:     "Message-ID before a header over 256 KiB",
			in:       "Message-ID: <early@x>\r\n" + filler + "\r\nbody",
			wantSub:  "new",
			wantBody: "Message-ID: <early@x>\n" + strings.ReplaceAll(filler, "\r\n", "\n") + "\nbody",
			wantID:   "<early@x>",
		},
		{
			name:     "Message-ID past 256 KiB of header",
			in:       filler + "Message-ID: <late@x>\r\n\r\nbody",
			wantSub:  "new",
			wantBody: strings.ReplaceAll(filler, "\r\n", "\n") + "Message-ID: <late@x>\n\nbody",
		},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			if oneByte && len(tt.in) > 4096 {
				continue // a syscall per byte; the small cases cover splits
			}
			t.Run(fmt.Sprintf("%s/onebyte=%v", tt.name, oneByte), func(t *testing.T) {
				d := newDir(t)
				var r io.Reader = strings.NewReader(tt.in)
				if oneByte {
					r = iotest.OneByteReader(r)
				}
				got, err := d.Deliver(context.Background(), r, tt.flags, date)
				if err != nil {
					t.Fatalf("Deliver: %v", err)
				}
				if got.Subdir != tt.wantSub {
					t.Errorf("Subdir = %q, want %q", got.Subdir, tt.wantSub)
				}
				if want := got.Key + ":2," + tt.wantInfo; got.Name != want {
					t.Errorf("Name = %q, want %q", got.Name, want)
				}
				if key, _, ok := ParseName(got.Name); !ok || key != got.Key {
					t.Errorf("ParseName(%q) = %q, %v; want key %q", got.Name, key, ok, got.Key)
				}
				if got.MessageID != tt.wantID {
					t.Errorf("MessageID = %q, want %q", got.MessageID, tt.wantID)
				}
				p := filepath.Join(d.Path, got.Subdir, got.Name)
				body, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if string(body) != tt.wantBody {
					t.Errorf("content = %q, want %q", trim(string(body)), trim(tt.wantBody))
				}
				if got.Size != int64(len(tt.wantBody)) {
					t.Errorf("Size = %d, want %d", got.Size, len(tt.wantBody))
				}
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if !fi.ModTime().Equal(date) {
					t.Errorf("mtime = %v, want %v", fi.ModTime(), date)
				}
				if l := names(t, d, subTmp); len(l) != 0 {
					t.Errorf("tmp/ holds %q", l)
				}
				other := map[string]string{"new": "cur", "cur": "new"}[got.Subdir]
				if l := names(t, d, other); len(l) != 0 {
					t.Errorf("%s/ holds %q", other, l)
				}
			})
		}
	}
}

// trim shortens long strings in failure messages.
func trim(s string) string {
	if len(s) > 200 {
		return s[:100] + "…" + s[len(s)-100:]
	}
	return s
}

func TestDeliverZeroDateKeepsNow(t *testing.T) {
	d := newDir(t)
	before := time.Now().Add(-time.Minute)
	got, err := d.Deliver(context.Background(), strings.NewReader("x"), mail.NewFlags(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(d.Path, got.Subdir, got.Name))
	if err != nil {
		t.Fatal(err)
	}
	if fi.ModTime().Before(before) {
		t.Errorf("mtime = %v, want the delivery time", fi.ModTime())
	}
}

var errBoom = errors.New("boom")

// cancelReader cancels its context on the second Read, after which a
// further chunk is still available.
type cancelReader struct {
	cancel context.CancelFunc
	reads  int
}

func (c *cancelReader) Read(p []byte) (int, error) {
	c.reads++
	if c.reads == 2 {
		c.cancel()
	}
	if c.reads > 5 {
		return 0, io.EOF
	}
	return copy(p, "Subject: x\r\n"), nil
}

func TestDeliverFailureLeavesNothing(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		reader  func(cancel context.CancelFunc) io.Reader
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error
	}{
		{
			name: "reader fails midway",
			reader: func(context.CancelFunc) io.Reader {
				return io.MultiReader(strings.NewReader("Subject: x\r\n\r\npartial"), iotest.ErrReader(errBoom))
			},
			ctx:     func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wantErr: errBoom,
		},
		{
			name: "reader fails with data",
			reader: func(context.CancelFunc) io.Reader {
				return iotest.DataErrReader(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(errBoom)))
			},
			ctx:     func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wantErr: errBoom,
		},
		{
			name:    "context cancelled before",
			reader:  func(context.CancelFunc) io.Reader { return strings.NewReader("x") },
			ctx:     func() (context.Context, context.CancelFunc) { return cancelled, func() {} },
			wantErr: context.Canceled,
		},
		{
			name:    "context cancelled while streaming",
			reader:  func(cancel context.CancelFunc) io.Reader { return &cancelReader{cancel: cancel} },
			ctx:     func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wantErr: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t)
			ctx, cancel := tt.ctx()
			defer cancel()
			_, err := d.Deliver(ctx, tt.reader(cancel), mail.NewFlags(mail.FlagSeen), time.Now())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Deliver error = %v, want %v", err, tt.wantErr)
			}
			assertEmpty(t, d)
		})
	}
}

func TestDeliverWithoutInit(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "missing")}
	if _, err := d.Deliver(context.Background(), strings.NewReader("x"), mail.NewFlags(), time.Now()); err == nil {
		t.Fatal("Deliver into a folder without tmp/ succeeded")
	}
	if _, err := os.Stat(d.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Deliver created %s: %v", d.Path, err)
	}
}

func TestDeliverConcurrentKeysUnique(t *testing.T) {
	d := newDir(t)
	const n = 50
	keys := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := d.Deliver(context.Background(), strings.NewReader(fmt.Sprintf("m%d\r\n", i)), mail.NewFlags(), time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = got.Key
		})
	}
	wg.Wait()
	m, err := d.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != n {
		t.Fatalf("Scan found %d messages, want %d", len(m), n)
	}
	for i, k := range keys {
		e, ok := m[k]
		if !ok {
			t.Fatalf("key %q not scanned", k)
		}
		body, err := os.ReadFile(e.Path(d))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("m%d\n", i); string(body) != want {
			t.Errorf("message %d holds %q, want %q", i, body, want)
		}
	}
}
