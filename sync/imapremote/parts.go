package imapremote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/satchel-mail/satchel/sync/mail"
)

// DefaultLargeMessage is Options.LargeMessage when it is zero: messages
// above it are fetched in parts.
const DefaultLargeMessage = 4 << 20

// Part sizes of a large message. The first part asks for firstPart bytes
// (at most Options.LargeMessage); each next part for what the previous
// one delivered in partTarget, between minPart and LargeMessage. go-imap
// gives each literal 5 minutes (literalReadTimeout) until it has been
// read to the end; a part sized to take partTarget stays well below that
// on any link that carries minPart in 5 minutes (about 55 bytes a
// second), once the first part (3.5 kB/s at 1 MiB) has measured it.
const (
	firstPart  = 1 << 20
	minPart    = 16 << 10
	partTarget = 30 * time.Second
)

// fetchParts streams one message to fn as a single body, fetched with one
// BODY.PEEK[]<offset.length> command per part (RFC 9051 §6.4.5), each
// started when fn has read the previous one: only one part is ever in
// flight, and nothing is held beyond go-imap's buffers. size is what the
// caller knows of the message (RFC822.SIZE), passed on to fn; the message
// ends with the first part shorter than asked for, not at size, which
// some servers report inexactly, though never by as much as its size
// again: a server that keeps sending beyond that fails the message. A
// message gone before its first part is skipped, like in fetchWhole.
func (c *Client) fetchParts(ctx context.Context, uid mail.UID, size int64, fn BodyFunc) error {
	defer c.guard(ctx)()
	p := &partReader{c: c, ctx: ctx, uid: uid, next: min(firstPart, c.large), size: size, limit: 2*size + c.large}
	found, err := p.start()
	if err != nil {
		return fmt.Errorf("fetch message UID %d in %q: %w", uid, c.selected, err)
	}
	if !found {
		return nil
	}
	fnErr := fn(uid, size, p)
	if p.err != nil {
		// The connection failed, or a part did: that is the cause of
		// whatever fn made of it.
		return fmt.Errorf("fetch message UID %d in %q: %w", uid, c.selected, p.err)
	}
	if err := p.abandon(); err != nil {
		return fmt.Errorf("fetch message UID %d in %q: %w", uid, c.selected, err)
	}
	return fnErr
}

// partReader is the body of a message fetched in parts.
type partReader struct {
	c   *Client
	ctx context.Context
	uid mail.UID

	size  int64 // as given
	limit int64 // the most bytes believed to be one message
	off   int64 // offset of the current part
	want  int64 // length asked for in the current part
	got   int64 // bytes of the current part read so far
	began time.Time
	cmd   *imapclient.FetchCommand // the current part's, until it completes
	lit   *literalReader
	whole bool  // the server ignored the range and sent all of BODY[]
	next  int64 // length to ask for in the next part
	done  bool  // the message has ended
	err   error // sticky
}

// errVanished: a message that was there for its first part was not for a
// later one.
var errVanished = errors.New("the message vanished while it was being fetched")

// start sends the FETCH of the next part and waits for its literal; false
// if the server sent none (the message does not exist).
func (p *partReader) start() (bool, error) {
	if p.off+p.next > math.MaxUint32 {
		// RFC 9051 §9: a partial offset is a 32-bit number.
		return false, fmt.Errorf("the message is too large to fetch in parts (%d bytes and more)", p.off)
	}
	p.want, p.got, p.began = p.next, 0, time.Now()
	section := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: p.off, Size: p.want}}
	p.cmd = p.c.c.Fetch(uidSet([]mail.UID{p.uid}), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
	for {
		msg := p.cmd.Next()
		if msg == nil {
			break
		}
		var uid mail.UID
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = mail.UID(it.UID)
			case imapclient.FetchItemDataBodySection:
				if uid != 0 && uid != p.uid {
					continue
				}
				switch {
				case it.MatchCommand(section):
				case it.Section.Partial == nil && p.off == 0:
					p.whole = true
				default:
					continue
				}
				var r io.Reader = eofReader{}
				var n int64
				if it.Literal != nil {
					r, n = it.Literal, it.Literal.Size()
				}
				p.lit = &literalReader{r: r, left: n}
				return true, nil
			}
		}
	}
	err := p.cmd.Close()
	p.cmd = nil
	if err != nil {
		return false, p.c.ioErr(p.ctx, err)
	}
	return false, nil
}

// Read returns the message's bytes across its parts.
func (p *partReader) Read(b []byte) (int, error) {
	for {
		if p.err != nil {
			return 0, p.err
		}
		if p.lit == nil {
			if p.done {
				return 0, io.EOF
			}
			if p.off >= p.limit {
				p.err = fmt.Errorf("the server sent %d bytes and more of a message of %d", p.off, p.size)
				return 0, p.err
			}
			found, err := p.start()
			if err == nil && !found {
				err = fmt.Errorf("%w (after %d bytes)", errVanished, p.off)
			}
			if err != nil {
				p.err = err
				return 0, err
			}
		}
		n, err := p.lit.Read(b)
		p.got += int64(n)
		switch {
		case err == io.EOF:
			if err := p.end(); err != nil {
				p.err = err
				return n, err
			}
			if n == 0 {
				continue
			}
		case err != nil:
			// A part cut short: go-imap's reader has moved on, so the
			// command cannot be drained; the connection is done for.
			p.c.c.Close()
			p.err = p.c.ioErr(p.ctx, err)
			return n, p.err
		}
		return n, nil
	}
}

// end completes the current part, whose literal has been read, and sizes
// the next one.
func (p *partReader) end() error {
	err := p.cmd.Close()
	p.cmd, p.lit = nil, nil
	if err != nil {
		return p.c.ioErr(p.ctx, err)
	}
	p.off += p.got
	if p.whole || p.got < p.want {
		p.done = true
		return nil
	}
	next := p.c.large
	if d := time.Since(p.began); d > 0 {
		next = int64(float64(p.got) * float64(partTarget) / float64(d))
	}
	p.next = max(min(next, p.c.large), min(minPart, p.c.large))
	return nil
}

// abandon completes a part that fn left unread.
func (p *partReader) abandon() error {
	if p.cmd == nil {
		return nil
	}
	err := p.cmd.Close() // reads the rest of the literal
	p.cmd, p.lit, p.done = nil, nil, true
	if err != nil {
		return p.c.ioErr(p.ctx, err)
	}
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
