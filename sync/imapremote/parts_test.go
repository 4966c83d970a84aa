package imapremote

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// partRequests returns, per UID, the partial BODY.PEEK[] requests of a
// trace as "offset.length".
func partRequests(trace string) map[mail.UID][]string {
	re := regexp.MustCompile(`(?i)UID FETCH (\d+) \(UID BODY\.PEEK\[\]<(\d+\.\d+)>\)`)
	out := map[mail.UID][]string{}
	for _, l := range clientLines(trace) {
		if m := re.FindStringSubmatch(l); m != nil {
			var u mail.UID
			fmt.Sscan(m[1], &u)
			out[u] = append(out[u], m[2])
		}
	}
	return out
}

// selectInParts connects to s with LargeMessage large and selects INBOX.
func selectInParts(t *testing.T, s *imaptest.Server, trace *traceBuffer, large int64) *Client {
	t.Helper()
	opts := connectOptions(t, s, trace)
	opts.LargeMessage = large
	c := mustDial(t, opts)
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Fatalf("Select: %v", err)
	}
	return c
}

// TestFetchBodiesInParts: a message above LargeMessage arrives whole in
// one body, fetched in consecutive parts, whether it ends in the middle
// of a part, exactly at the end of one, or beyond the size it was said to
// have; smaller messages of the same call come in one command.
func TestFetchBodiesInParts(t *testing.T) {
	const large = 64 << 10
	forEachServer(t, func(t *testing.T, s *imaptest.Server, _ mail.SyncMode) {
		bodies := [][]byte{
			testBigMessage(200 << 10),
			testMessage(2),
			testBigMessage(3 * large)[:3*large], // ends exactly at a part's end
			testBigMessage(150 << 10),           // its size is understated below
			testBigMessage(100 << 10),           // expunged before the fetch
		}
		var msgs []mail.RemoteMessage
		for i, b := range bodies {
			u := mail.UID(s.Append("INBOX", b, nil, time.Time{}))
			size := int64(len(b))
			if i == 3 {
				size = large + 1
			}
			msgs = append(msgs, mail.RemoteMessage{UID: u, Size: size})
		}
		var trace traceBuffer
		c := selectInParts(t, s, &trace, large)
		s.Expunge("INBOX", uint32(msgs[4].UID))

		got := map[mail.UID][]byte{}
		err := c.FetchBodies(t.Context(), msgs, func(uid mail.UID, size int64, body io.Reader) error {
			b, err := io.ReadAll(body)
			if err != nil {
				return err
			}
			if _, dup := got[uid]; dup {
				t.Errorf("UID %d delivered twice", uid)
			}
			for _, m := range msgs {
				if m.UID == uid && m.Size != size {
					t.Errorf("UID %d: size %d, want the %d given", uid, size, m.Size)
				}
			}
			got[uid] = b
			return nil
		})
		if err != nil {
			t.Fatalf("FetchBodies: %v", err)
		}
		for i, m := range msgs[:4] {
			if !bytes.Equal(got[m.UID], bodies[i]) {
				t.Errorf("UID %d: body of %d bytes differs from the server's %d", m.UID, len(got[m.UID]), len(bodies[i]))
			}
		}
		if _, ok := got[msgs[4].UID]; ok {
			t.Errorf("expunged UID %d delivered", msgs[4].UID)
		}

		parts := partRequests(trace.String())
		if len(parts[msgs[1].UID]) != 0 {
			t.Errorf("small UID %d fetched in parts: %v", msgs[1].UID, parts[msgs[1].UID])
		}
		for _, i := range []int{0, 2, 3} {
			u := msgs[i].UID
			ps := parts[u]
			if len(ps) < 2 {
				t.Errorf("UID %d (%d bytes): parts %v, want several", u, len(bodies[i]), ps)
				continue
			}
			// Consecutive, none above LargeMessage.
			next := int64(0)
			for _, p := range ps {
				var off, n int64
				fmt.Sscanf(p, "%d.%d", &off, &n)
				if off != next || n > large || n <= 0 {
					t.Errorf("UID %d: parts %v are not consecutive ranges of at most %d bytes", u, ps, large)
					break
				}
				next = off + n
			}
			if next < int64(len(bodies[i])) {
				t.Errorf("UID %d: parts %v end before the message's %d bytes", u, ps, len(bodies[i]))
			}
		}
		if n := len(parts[msgs[4].UID]); n != 1 {
			t.Errorf("expunged UID %d: %d part requests, want 1", msgs[4].UID, n)
		}
	})
}

// TestFetchPartsCallbackError: fn failing in the middle of a message
// fetched in parts fails the call with fn's error, fetches no further
// part, and leaves the connection usable.
func TestFetchPartsCallbackError(t *testing.T) {
	const large = 64 << 10
	s := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	big := testBigMessage(400 << 10)
	u := mail.UID(s.Append("INBOX", big, nil, time.Time{}))
	small := mail.UID(s.Append("INBOX", testMessage(2), nil, time.Time{}))
	var trace traceBuffer
	c := selectInParts(t, s, &trace, large)
	errDisk := errors.New("disk full")
	err := c.FetchBodies(t.Context(), []mail.RemoteMessage{{UID: u, Size: int64(len(big))}}, func(_ mail.UID, _ int64, body io.Reader) error {
		if _, err := io.ReadFull(body, make([]byte, large+10)); err != nil {
			return err
		}
		return errDisk
	})
	if !errors.Is(err, errDisk) {
		t.Fatalf("FetchBodies error %v, want the callback's", err)
	}
	if n := len(partRequests(trace.String())[u]); n != 2 {
		t.Errorf("%d parts requested, want 2 (the callback stopped in the second)", n)
	}
	got, err := fetchBody(t.Context(), c, mail.RemoteMessage{UID: small})
	if err != nil || !bytes.Equal(got, testMessage(2)) {
		t.Errorf("FetchBodies after a failed one: %v, body %q", err, got)
	}
}

// fetchInParts dials opts with LargeMessage large and fetches UID 7, said
// to be 3*large bytes. It returns how many bytes the callback read and the
// call's error.
func fetchInParts(t *testing.T, opts Options, large int64) (int, error) {
	t.Helper()
	opts.LargeMessage = large
	c := mustDial(t, opts)
	b, err := fetchBody(t.Context(), c, mail.RemoteMessage{UID: 7, Size: 3 * large})
	return len(b), err
}

// TestFetchPartsTruncated: a connection that ends in the middle of a part
// fails the message; the callback does not see a clean end.
func TestFetchPartsTruncated(t *testing.T) {
	const large = 64
	opts := preauthServer(t, map[string]commandFunc{
		"UID": func(c net.Conn, tag, line string) bool {
			if strings.Contains(line, "<0.") {
				// The first part whole, then 10 bytes of the second.
				fmt.Fprintf(c, "* 1 FETCH (UID 7 BODY[]<0> {%d}\r\n%s)\r\n%s OK done\r\n", large, strings.Repeat("a", large), tag)
				return true
			}
			fmt.Fprintf(c, "* 1 FETCH (UID 7 BODY[]<%d> {%d}\r\n0123456789", large, large)
			return false
		},
	})
	n, err := fetchInParts(t, opts, large)
	if err == nil {
		t.Errorf("FetchBodies succeeded on a connection that ended mid-part (%d bytes delivered)", n)
	}
	if !errors.Is(err, mail.ErrTransient) {
		t.Errorf("FetchBodies error %v is not transient", err)
	}
}

// TestFetchPartsEndless: a server that answers every part in full, past
// any plausible end of the message, fails it rather than fill the disk.
func TestFetchPartsEndless(t *testing.T) {
	const large = 64
	re := regexp.MustCompile(`<(\d+)\.(\d+)>`)
	opts := preauthServer(t, map[string]commandFunc{
		"UID": func(c net.Conn, tag, line string) bool {
			var off, n int
			if m := re.FindStringSubmatch(line); m != nil {
				fmt.Sscan(m[1], &off)
				fmt.Sscan(m[2], &n)
			}
			fmt.Fprintf(c, "* 1 FETCH (UID 7 BODY[]<%d> {%d}\r\n%s)\r\n%s OK done\r\n", off, n, strings.Repeat("a", n), tag)
			return true
		},
	})
	n, err := fetchInParts(t, opts, large)
	if err == nil {
		t.Fatalf("FetchBodies took %d bytes for a message of %d", n, 3*large)
	}
	if n > 8*large {
		t.Errorf("%d bytes delivered before giving up", n)
	}
}
