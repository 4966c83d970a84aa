package imapremote

import (
	"context"
	"fmt"
	gosync "sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Change is what the server reported about the selected mailbox while
// WaitChange waited, as a set of bits; 0 when it reported nothing.
type Change uint8

const (
	// ChangeExists: the message count changed (EXISTS, RFC 9051 §7.4.1):
	// mail arrived, or was copied or moved in.
	ChangeExists Change = 1 << iota
	// ChangeFlags: a message's flags changed (an unsolicited FETCH, RFC
	// 9051 §7.5.2).
	ChangeFlags
	// ChangeExpunge: messages went (EXPUNGE, RFC 9051 §7.5.1, or VANISHED,
	// RFC 7162 §3.2.10), perhaps moved to another mailbox.
	ChangeExpunge
)

// MaxIdle is the longest one IDLE command of WaitChange lasts. RFC 2177
// §3: a server may log out a client idle for 30 minutes, so clients
// should re-issue IDLE at least every 29; go-imap restarts its own IDLE
// after 28, which this stays clear of.
const MaxIdle = 25 * time.Minute

// doneGrace bounds the wait for the server's reply to DONE once ctx has
// ended: the caller is shutting down and the connection is closed anyway.
const doneGrace = 2 * time.Second

// changeSignal collects what the server reports outside the replies to
// commands. go-imap calls the handlers on its read goroutine.
type changeSignal struct {
	mu   gosync.Mutex
	got  Change
	wake chan struct{} // holds a value once got is non-zero
}

func newChangeSignal() *changeSignal {
	return &changeSignal{wake: make(chan struct{}, 1)}
}

func (s *changeSignal) note(c Change) {
	s.mu.Lock()
	s.got |= c
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns and forgets what was noted.
func (s *changeSignal) take() Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.got
	s.got = 0
	select {
	case <-s.wake:
	default:
	}
	return c
}

// handler is go-imap's UnilateralDataHandler: every unsolicited FETCH
// goes to fetch as well. An EXISTS is unsolicited unless it answers a
// SELECT or EXAMINE; an EXPUNGE unless it answers an EXPUNGE command.
func (s *changeSignal) handler(fetch func(*imapclient.FetchMessageData)) *imapclient.UnilateralDataHandler {
	return &imapclient.UnilateralDataHandler{
		Fetch: func(msg *imapclient.FetchMessageData) {
			fetch(msg)
			s.note(ChangeFlags)
		},
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				s.note(ChangeExists)
			}
		},
		Expunge: func(uint32) { s.note(ChangeExpunge) },
	}
}

// CanIdle reports whether the server has IDLE (RFC 2177; part of
// IMAP4rev2). Without it WaitChange polls with NOOP.
func (c *Client) CanIdle() bool { return c.caps.Has(imap.CapIdle) }

// WaitChange waits until the server reports a change to mailbox, ctx
// ends or maxIdle has passed, and returns what was reported (0 if
// nothing). It opens mailbox read-only with EXAMINE unless it is already
// the selected mailbox, so it is meant for a connection of its own: call
// it in a loop, and whatever the server reports between two calls is
// returned by the next at once. Changes made before the EXAMINE are not
// reported.
//
// It waits in IDLE (RFC 2177), ended with DONE. maxIdle is capped at
// MaxIdle; a connection that died without a word is found when the reply
// to DONE does not come within Options.Timeout, so a shorter maxIdle
// finds it sooner. Without IDLE it waits maxIdle and sends NOOP.
//
// When ctx ends it sends DONE, waits briefly for the reply and returns
// ctx.Err(); the connection is then still usable, to be closed with
// Close. Other errors are those of any call: the connection is unusable
// after one, and errors.Is(err, mail.ErrTransient) says a new one may
// succeed.
func (c *Client) WaitChange(ctx context.Context, mailbox string, maxIdle time.Duration) (Change, error) {
	c.quiet = false
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if maxIdle <= 0 || maxIdle > MaxIdle {
		maxIdle = MaxIdle
	}
	if c.selected != mailbox {
		// Read-only: watching a mailbox must not change it, not even
		// \Recent. What arrived before the reply's end concerns the
		// mailbox before it, or this one's state as EXAMINE reported it.
		if _, err := c.Examine(ctx, mailbox); err != nil {
			return 0, err
		}
		c.take()
	} else if got := c.take(); got != 0 {
		return got, nil
	}
	if !c.CanIdle() {
		return c.poll(ctx, mailbox, maxIdle)
	}

	end := c.guard(ctx)
	idle, err := c.c.Idle()
	end()
	if err != nil {
		return 0, fmt.Errorf("idle in %q: %w", mailbox, c.ioErr(ctx, err))
	}
	timer := time.NewTimer(maxIdle)
	defer timer.Stop()
	select {
	case <-c.changes.wake:
	case <-timer.C:
	case <-ctx.Done():
	case <-c.c.Closed():
	}
	err = c.done(ctx, idle)
	got := c.take()
	if ctx.Err() != nil {
		return got, ctx.Err()
	}
	if err != nil {
		return got, fmt.Errorf("idle in %q: %w", mailbox, c.ioErr(ctx, err))
	}
	return got, nil
}

// take returns what the server reported since the last call. VANISHED
// UIDs kept by the QRESYNC layer are dropped: only the fact counts here.
func (c *Client) take() Change {
	c.q.Vanished()
	return c.changes.take()
}

// done ends an IDLE command and waits for its tagged reply, within
// Options.Timeout of silence, or doneGrace once ctx has ended.
func (c *Client) done(ctx context.Context, idle *imapclient.IdleCommand) error {
	disarm := c.wd.arm()
	defer disarm()
	if ctx.Err() != nil {
		t := time.AfterFunc(doneGrace, func() { c.c.Close() })
		defer t.Stop()
	}
	if err := idle.Close(); err != nil {
		return err
	}
	return idle.Wait()
}

// poll is WaitChange for a server without IDLE: a NOOP after maxIdle
// (RFC 9051 §6.1.2), whose untagged responses say what changed.
func (c *Client) poll(ctx context.Context, mailbox string, maxIdle time.Duration) (Change, error) {
	timer := time.NewTimer(maxIdle)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-timer.C:
	}
	end := c.guard(ctx)
	err := c.c.Noop().Wait()
	end()
	if err != nil {
		return 0, fmt.Errorf("noop in %q: %w", mailbox, c.ioErr(ctx, err))
	}
	return c.take(), nil
}
