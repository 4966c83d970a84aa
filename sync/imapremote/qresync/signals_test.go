package qresync

import (
	"bytes"
	"io"
	"testing"
)

// TestReadKeepsSignals: the [THROTTLED] of tagged OKs is counted and the
// text of a BYE kept, however the stream is cut, and the bytes go on to
// go-imap unchanged.
func TestReadKeepsSignals(t *testing.T) {
	const in = "* OK Gimap ready\r\n" +
		"a1 OK Success [THROTTLED]\r\n" +
		"* 1 FETCH (UID 4 BODY[] {25}\r\nSubject: [THROTTLED]\r\n\r\nx)\r\n" + // inside a literal: not a reply
		"a2 OK Success\r\n" +
		"a3 NO [OVERQUOTA] Account exceeded command or bandwidth limits. [THROTTLED]\r\n" + // a NO is no slowdown request
		"* OK [THROTTLED]\r\n" + // untagged: no reply either
		"a4 ok done [THROTTLED]\r\n" +
		"* BYE Session expired, please login again.\r\n"
	for _, pieces := range splits(in) {
		c := Wrap(&scriptConn{in: copies(pieces)})
		var out bytes.Buffer
		if _, err := io.Copy(&out, c); err != nil {
			t.Fatal(err)
		}
		if out.String() != in {
			t.Fatalf("go-imap reads %q", out.String())
		}
		if n := c.Throttled(); n != 2 {
			t.Fatalf("cut in %d: %d throttled replies, want 2", len(pieces), n)
		}
		if b := c.Bye(); b != "Session expired, please login again." {
			t.Fatalf("cut in %d: BYE text %q", len(pieces), b)
		}
	}
}
