package qresync

import (
	"bytes"
)

// Two things the server says that go-imap drops, kept for imapremote:
//
//   - Gmail's request to slow down: " [THROTTLED]" after the text of a
//     tagged OK (not a response code: the command succeeded), as users
//     report it (mscdex/node-imap#593: "A2 OK Success [THROTTLED]");
//   - the text of an untagged BYE (RFC 9051 §7.1.5), which go-imap
//     reads and forgets: the connection then ends, and only this text
//     says why (Gmail: "Session expired, please login again.", when the
//     OAuth token the session was opened with runs out).

// maxBye bounds the BYE text kept.
const maxBye = 200

// throttleMark ends a tagged OK whose server asks the client to slow down.
var throttleMark = []byte("[THROTTLED]")

// Throttled counts the tagged OKs that carried Gmail's [THROTTLED].
func (c *Conn) Throttled() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.throttled
}

// Bye returns the text of the last untagged BYE the server sent, "" if
// none.
func (c *Conn) Bye() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bye
}

// noteTagged takes a whole tagged status response. The caller holds c.mu.
func (c *Conn) noteTagged(line []byte) {
	fields := bytes.Fields(line)
	if len(fields) > 2 && bytes.EqualFold(fields[1], []byte("OK")) && bytes.Equal(fields[len(fields)-1], throttleMark) {
		c.throttled++
	}
}

// noteBye takes a whole "* BYE" response. The caller holds c.mu.
func (c *Conn) noteBye(line []byte) {
	fields := bytes.Fields(line)
	if len(fields) < 2 {
		return
	}
	text := bytes.Join(fields[2:], []byte(" "))
	if len(text) > maxBye {
		text = text[:maxBye]
	}
	c.bye = string(text)
}
