// Package qresync adds to go-imap v2.0.0-beta.8 what it cannot do from
// above: QRESYNC (RFC 7162 §3.2), which it refuses to ENABLE, cannot ask
// for in SELECT and closes the connection over (a VANISHED response), and
// MAILBOXID (RFC 8474 §4), which it cannot ask for in STATUS and drops
// from the replies. It is the part of satchel to delete once go-imap
// supports both; the name is from the first of them.
//
// It does so from below: Conn wraps the net.Conn that go-imap speaks over
// (the stack is TCP, TLS, wiretrace, Conn, go-imap) and edits the byte
// streams in a few places, leaving every other byte as it is:
//
//   - Enable writes its own "ENABLE QRESYNC" (tag "Q1", "Q2", ...) between
//     two of go-imap's commands and removes the reply from what go-imap
//     reads;
//   - ArmSelect makes go-imap's next SELECT or EXAMINE carry the QRESYNC
//     parameter (RFC 7162 §3.2.5);
//   - every VANISHED response (RFC 7162 §3.2.10) is removed from what
//     go-imap reads, and its UIDs are kept for Vanished;
//   - after RequestMailboxIDs, a STATUS command, or the STATUS return
//     option of a LIST (RFC 5819), that go-imap writes with an empty item
//     list asks for MAILBOXID (RFC 8474 §4.3); the ids in the STATUS
//     responses are kept for MailboxIDs, and the responses pass on to
//     go-imap, which skips the item it does not know;
//   - the "OK [MAILBOXID (id)]" of a SELECT or EXAMINE (RFC 8474 §4.2)
//     passes on too, and its id is kept for SelectMailboxID;
//   - Gmail's [THROTTLED] after a tagged OK and the text of a BYE pass
//     on, and are kept for Throttled and Bye (signals.go).
//
// The server's unsolicited FETCH responses during a QRESYNC SELECT (RFC
// 7162 §3.2.5) are ordinary FETCH responses: they pass through, and
// go-imap hands them to Options.UnilateralDataHandler.Fetch.
//
// Once QRESYNC is enabled the server reports expunges with VANISHED
// instead of EXPUNGE (RFC 7162 §3.2.10), so go-imap never learns of them:
// its SelectedMailbox.NumMessages goes stale, UnilateralDataHandler.Expunge
// is never called and ExpungeCommand yields no sequence numbers. Callers
// that identify messages by UID alone, as imapremote does, lose nothing.
//
// The package imports only the standard library: it works on the bytes of
// the connection, and the framing it follows (lines, and literals announced
// by "{N}" at a line end, RFC 9051 §4.3) is the one go-imap's decoder uses.
// Mailbox names are decoded from modified UTF-7 (RFC 3501 §5.1.3) here as
// go-imap decodes them, so that an id is found under the name go-imap
// reports. Only package imapremote may import it.
package qresync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	gosync "sync"
)

// Errors callers branch on.
var (
	// ErrNotEnabled: the server completed ENABLE without enabling QRESYNC
	// (RFC 5161 §3.1 lets it), or ArmSelect was called before Enable
	// succeeded. The connection stays usable, without QRESYNC.
	ErrNotEnabled = errors.New("QRESYNC is not enabled")
	// ErrBusy: Enable was called while go-imap was in the middle of
	// writing a command, or while another Enable was waiting.
	ErrBusy = errors.New("connection is busy with another command")
)

// readBufSize is the read buffer: the most server bytes held at a time,
// whatever the length of a line or literal.
const readBufSize = 32 << 10

// Conn is a net.Conn for go-imap to speak over. Reads and writes may run
// on different goroutines (go-imap reads on one of its own); the methods
// of Conn are safe to call from any goroutine.
type Conn struct {
	net.Conn

	// wmu serializes writes: go-imap's and Enable's. It is taken before mu.
	wmu gosync.Mutex
	w   writer

	// rd is used only by Read, which go-imap calls from one goroutine.
	rd reader

	mu        gosync.Mutex
	enabled   bool
	enable    *pendingEnable // nil when no ENABLE of ours is outstanding
	tags      uint64         // last tag number used by Enable
	vanished  []Range        // from VANISHED responses, not yet taken
	earlier   bool           // some of vanished came with (EARLIER)
	selectTag string         // tag of the armed SELECT until its tagged reply
	fetches   int            // untagged FETCH responses during that SELECT
	readErr   error          // sticky: the read side stopped

	askIDs   bool              // RequestMailboxIDs was called
	ids      map[string]string // MAILBOXIDs from STATUS responses, not yet taken
	selectID string            // MAILBOXID of the last SELECT or EXAMINE
	gmail    *pendingGmail     // nil when no GmailFetch is outstanding
	// throttled counts tagged OKs marked [THROTTLED]; bye is the text of
	// the last untagged BYE (signals.go).
	throttled int
	bye       string
	// onVanished is called after each VANISHED response is read.
	onVanished func()
}

// pendingEnable is an ENABLE written by Enable whose tagged reply has not
// been read yet.
type pendingEnable struct {
	tag  string
	saw  bool       // an ENABLED response listed QRESYNC
	done chan error // receives the outcome once; buffered
}

// Wrap returns conn with QRESYNC support. go-imap must be created on the
// returned Conn, and must not be given conn itself.
func Wrap(conn net.Conn) *Conn {
	c := &Conn{Conn: conn}
	c.rd.br = bufio.NewReaderSize(conn, readBufSize)
	return c
}

// Read returns the server's bytes with VANISHED responses and the replies
// to Enable removed. A malformed VANISHED response is an error: the stream
// cannot be handed on without it, and go-imap could not have parsed it
// either.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.readFiltered(p)
	if err != nil {
		c.stopReading(err)
	}
	return n, err
}

// Write sends go-imap's bytes, with the QRESYNC parameter added to an
// armed SELECT or EXAMINE.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.w.write(c, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the connection; an Enable waiting for its reply returns.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.stopReading(net.ErrClosed)
	return err
}

// stopReading fails a pending Enable once the read side can no longer
// deliver its reply.
func (c *Conn) stopReading(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readErr == nil {
		c.readErr = err
	}
	if c.enable != nil {
		c.enable.done <- fmt.Errorf("enable QRESYNC: connection ended before the reply: %w", err)
		c.enable = nil
	}
	if c.gmail != nil {
		c.gmail.done <- fmt.Errorf("gmail fetch: connection ended before the reply: %w", err)
		c.gmail = nil
	}
}

// Enable sends ENABLE QRESYNC (RFC 7162 §3.2.3, RFC 5161) and waits for the
// reply, which go-imap never sees. It returns nil once QRESYNC is enabled,
// ErrNotEnabled if the server declined.
//
// Call it in the authenticated state, before any SELECT or EXAMINE (RFC
// 5161 §3.1), with go-imap created on this Conn (its read goroutine
// delivers the reply) and no go-imap command in progress: an ENABLED
// response that arrives meanwhile is taken as the reply. If go-imap is in
// the middle of writing a command, Enable returns ErrBusy without writing.
// Enabling QRESYNC also enables CONDSTORE (RFC 7162 §3.2.3).
//
// Like go-imap's calls, Enable cannot be interrupted by ctx without
// closing the connection: if ctx ends first, the connection is closed.
func (c *Conn) Enable(ctx context.Context) error {
	wait, err := c.StartEnable(ctx)
	if err != nil {
		return err
	}
	return wait(ctx)
}

// StartEnable writes the ENABLE of Enable and returns without waiting for
// the reply; wait waits for it and says what Enable would. Commands
// go-imap writes meanwhile travel with the ENABLE (a round trip saved):
// the server answers in order, and the reply is taken out of what go-imap
// reads before theirs. A command that needs QRESYNC enabled (ArmSelect)
// must be written only once wait returned nil.
func (c *Conn) StartEnable(ctx context.Context) (wait func(context.Context) error, err error) {
	c.wmu.Lock()
	c.mu.Lock()
	switch {
	case c.enabled:
		c.mu.Unlock()
		c.wmu.Unlock()
		return func(context.Context) error { return nil }, nil
	case c.readErr != nil:
		err := c.readErr
		c.mu.Unlock()
		c.wmu.Unlock()
		return nil, fmt.Errorf("enable QRESYNC: %w", err)
	case c.enable != nil || !c.w.atBoundary():
		c.mu.Unlock()
		c.wmu.Unlock()
		return nil, fmt.Errorf("enable QRESYNC: %w", ErrBusy)
	}
	c.tags++
	pe := &pendingEnable{tag: "Q" + strconv.FormatUint(c.tags, 10), done: make(chan error, 1)}
	c.enable = pe
	c.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { c.Close() })
	_, err = io.WriteString(c.Conn, pe.tag+" ENABLE QRESYNC\r\n")
	stop()
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		if c.enable == pe {
			c.enable = nil
		}
		c.mu.Unlock()
		return nil, fmt.Errorf("enable QRESYNC: %w", ctxErr(ctx, err))
	}
	var once gosync.Once
	var result error
	return func(ctx context.Context) error {
		once.Do(func() {
			select {
			case result = <-pe.done:
				result = ctxErr(ctx, result)
			case <-ctx.Done():
				// Closed, so that a reply arriving later cannot be
				// mistaken for anything else.
				c.Close()
				result = ctx.Err()
			}
		})
		return result
	}, nil
}

// Enabled reports whether Enable succeeded.
func (c *Conn) Enabled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enabled
}

// ArmSelect makes the next SELECT or EXAMINE that go-imap writes carry
//
//	(QRESYNC (uidValidity modSeq knownUIDs))
//
// (RFC 7162 §3.2.5) in place of go-imap's "(CONDSTORE)", if any: QRESYNC
// implies CONDSTORE. knownUIDs is an IMAP sequence-set of UIDs without "*"
// ("1:40,42"), or "" to omit it, in which case the server reports as
// vanished every UID expunged since modSeq, including UIDs the client never
// saw (RFC 7162 §3.2.5). The optional seq-match-data is never sent.
//
// Call it right before go-imap's Select; the next ArmSelect replaces an
// unconsumed one. After the SELECT completes, Vanished holds the UIDs
// expunged since modSeq and SelectFetches counts the changed messages
// go-imap handed to UnilateralDataHandler.Fetch. If uidValidity no longer
// matches, the server ignores the parameter (RFC 7162 §3.2.5) and
// reports nothing.
func (c *Conn) ArmSelect(uidValidity uint32, modSeq uint64, knownUIDs string) error {
	if uidValidity == 0 {
		return errors.New("arm QRESYNC select: UIDVALIDITY 0")
	}
	// RFC 7162 §7: mod-sequence-value is 1 to 2^63-1.
	if modSeq == 0 || modSeq > math.MaxInt64 {
		return fmt.Errorf("arm QRESYNC select: MODSEQ %d out of range", modSeq)
	}
	if knownUIDs != "" {
		if _, err := parseSet([]byte(knownUIDs)); err != nil {
			return fmt.Errorf("arm QRESYNC select: known UIDs %q: %w", knownUIDs, err)
		}
	}
	if !c.Enabled() {
		return fmt.Errorf("arm QRESYNC select: %w", ErrNotEnabled)
	}
	param := " (QRESYNC (" + strconv.FormatUint(uint64(uidValidity), 10) + " " + strconv.FormatUint(modSeq, 10)
	if knownUIDs != "" {
		param += " " + knownUIDs
	}
	param += "))"
	c.wmu.Lock()
	c.w.armed = param
	c.wmu.Unlock()
	return nil
}

// Vanished returns and forgets the UIDs of the VANISHED responses read so
// far, sorted and merged into ranges; earlier reports whether any came with
// (EARLIER), i.e. from a QRESYNC SELECT rather than from an expunge seen
// live (after the client's own UID EXPUNGE or MOVE, or another session's).
//
// The UIDs belong to the selected mailbox. VANISHED responses read before
// the "OK [CLOSED]" of a SELECT or EXAMINE belong to the mailbox it closed
// (RFC 7162 §3.2.11) and are dropped there, untaken: take them before
// selecting another mailbox. Whatever is dropped is reported again by the
// next QRESYNC SELECT of that mailbox with a MODSEQ from before the expunge,
// such as the HIGHESTMODSEQ of the SELECT that opened it: every expunge
// gets a MODSEQ of its own (RFC 7162 §3.2).
func (c *Conn) Vanished() (uids []Range, earlier bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	uids, earlier = normalize(c.vanished), c.earlier
	c.vanished, c.earlier = nil, false
	return uids, earlier
}

// OnVanished makes fn be called after each VANISHED response has been
// read and its UIDs kept for Vanished: go-imap never sees such a response,
// so this is how a caller waiting in IDLE (RFC 2177) learns of an expunge
// (RFC 7162 §3.2.10). fn runs on the goroutine that reads the connection
// and must not block; nil removes it.
func (c *Conn) OnVanished(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onVanished = fn
}

// SelectFetches counts the untagged FETCH responses of the last armed
// SELECT or EXAMINE, from its command to its tagged reply and after its
// "OK [CLOSED]", if any. Valid once go-imap's Select has returned.
//
// go-imap calls UnilateralDataHandler.Fetch for each of them on a
// goroutine of its own, so the calls may still be running, in any order,
// when Select returns: a caller that needs them all waits until its
// handler has seen this many. FETCH responses before "OK [CLOSED]" belong
// to the closed mailbox and reach the handler too; UNSELECT before a
// QRESYNC SELECT so that there are none.
func (c *Conn) SelectFetches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}

// ctxErr prefers the context's error: a connection closed because the
// context ended should say so.
func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
