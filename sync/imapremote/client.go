package imapremote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/satchel-mail/satchel/sync/imapremote/qresync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// Client is one authenticated IMAP connection. It is not safe for
// concurrent use: the engine drives one connection from one goroutine.
// A call whose ctx ends closes the connection; the Client is then unusable.
type Client struct {
	c        *imapclient.Client
	log      *slog.Logger
	caps     imap.CapSet
	selected string
	examined bool // selected is open read-only (Examine)
	q        *qresync.Conn
	lp       *literalPlus
	fetches  *fetchCollector
	changes  *changeSignal // what the server reported unasked; see WaitChange
	wd       *watchdog
	large    int64 // Options.LargeMessage
	ns       *mail.Namespaces
	// enabling, until Mode is first called, waits for the reply to the
	// ENABLE QRESYNC Dial sent without waiting.
	enabling func(context.Context) error
	// compressed: COMPRESS=DEFLATE (RFC 4978) is on.
	compressed bool
	// quiet: the last command sent was a SELECT or a NOOP and its
	// answer is in, so that the server had nothing left to report on
	// the selected mailbox (RFC 9051 §7: it reports changes at the end
	// of those commands); every command clears it (guard).
	quiet bool
	// calls counts the calls guard covered; selecting names the mailbox
	// of a SELECT sent and not yet answered (StartSelect).
	calls     int
	selecting string
	// openedAt: when the selected mailbox was opened; fetched: bodies
	// were fetched from it since (see Settle). now is the clock.
	openedAt time.Time
	fetched  bool
	now      func() time.Time
	// deleting: a \Deleted STORE FlagDeleted sent ahead of its expunge.
	deleting *pendingDelete
}

// opened records the mailbox a SELECT or EXAMINE just opened.
func (c *Client) opened(name string, examined bool) {
	c.selected, c.examined = name, examined
	c.openedAt, c.fetched = c.now(), false
}

// settleAfter is how long after opening a mailbox Settle's NOOP lets the
// server trust its Maildir again: Dovecot re-reads a Maildir directory
// whose modification time lies within a second of its last look at it
// (MAILDIR_SYNC_SECS) at its next look.
const settleAfter = time.Second

// Settle ends a run's use of the connection. When it fetched bodies from
// the selected mailbox and opened that mailbox at least settleAfter ago,
// it sends a NOOP and waits for it, and reports true. Opening a mailbox
// makes Dovecot move new mail into cur/; its later looks within the
// second cannot trust cur/, and a download sends nothing that makes it
// look again. Without this NOOP, the next session to open the mailbox
// (the next sync's LIST-STATUS) re-reads all of cur/; with it, the run
// that changed the directory pays that, once, at the end of a download
// that took longer than the NOOP. Any other server only answers a NOOP.
func (c *Client) Settle(ctx context.Context) (bool, error) {
	if c.selected == "" || !c.fetched || c.now().Sub(c.openedAt) < settleAfter {
		return false, nil
	}
	defer c.guard(ctx)()
	c.fetched = false
	if err := c.c.Noop().Wait(); err != nil {
		return false, fmt.Errorf("noop in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	return true, nil
}

func (c *Client) loadCaps(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { c.c.Close() })
	defer stop()
	caps := c.c.Caps()
	if caps == nil {
		return fmt.Errorf("%w: the server did not answer CAPABILITY: %w", ErrConnect, c.ioErr(ctx, errors.New("no reply")))
	}
	c.caps = caps
	if c.lp != nil {
		// RFC 7888 §3: with LITERAL+, no literal waits for the server.
		c.lp.enable(caps.Has(imap.CapLiteralPlus))
	}
	return nil
}

// Capabilities lists what the server advertised, sorted.
func (c *Client) Capabilities() []string {
	var l []string
	for cp := range c.caps {
		l = append(l, string(cp))
	}
	slices.Sort(l)
	return l
}

// Has reports whether the server advertised a capability.
func (c *Client) Has(capability string) bool { return c.caps.Has(imap.Cap(capability)) }

// Compressed reports whether the connection is compressed with
// COMPRESS=DEFLATE (RFC 4978) in both directions.
func (c *Client) Compressed() bool { return c.compressed }

// Mode is how mailbox changes are learned from this server.
func (c *Client) Mode() mail.SyncMode {
	if wait := c.enabling; wait != nil {
		c.enabling = nil
		switch err := wait(context.Background()); {
		case err == nil:
		case errors.Is(err, qresync.ErrNotEnabled):
			// RFC 5161 §3.1: the server may decline; CONDSTORE remains.
			c.log.Debug("server declined QRESYNC")
		default:
			// The connection failed; the next command says so.
			c.log.Debug("enable QRESYNC", "err", err)
		}
	}
	switch {
	case c.q.Enabled():
		return mail.ModeQResync
	case c.caps.Has(imap.CapCondStore) || c.caps.Has(imap.CapQResync):
		// QRESYNC (RFC 7162 §3.2) implies CONDSTORE.
		return mail.ModeCondStore
	}
	return mail.ModeFull
}

// Close says LOGOUT and closes the connection without waiting for the
// answer: every command before it has been answered, so nothing is left
// to learn from the server, and a no-op sync is a round trip shorter.
func (c *Client) Close() error {
	c.c.Logout()
	return c.c.Close()
}

// guard covers one call: it closes the connection when ctx ends (go-imap
// takes no context) or when the server stays silent for Options.Timeout.
// The returned function ends the guard.
func (c *Client) guard(ctx context.Context) func() {
	c.quiet = false
	c.calls++
	disarm := c.wd.arm()
	stop := context.AfterFunc(ctx, func() { c.c.Close() })
	return func() {
		stop()
		disarm()
	}
}

// List returns every mailbox of the account (LIST "" "*"), names decoded
// from modified UTF-7. NAMESPACE, when its answer is not known yet, goes
// in the same round trip, for Namespaces.
func (c *Client) List(ctx context.Context) ([]mail.RemoteMailbox, error) {
	defer c.guard(ctx)()
	list := c.c.List("", "*", c.listOptions())
	ns := c.sendNamespace()
	data, err := list.Collect()
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", c.ioErr(ctx, err))
	}
	if err := c.keepNamespace(ctx, ns); err != nil {
		return nil, err
	}
	out := make([]mail.RemoteMailbox, 0, len(data))
	for _, d := range data {
		out = append(out, remoteMailbox(d))
	}
	return out, nil
}

// listOptions asks LIST for the special-use attributes where the server
// has SPECIAL-USE (RFC 6154 §2: RETURN (SPECIAL-USE)); without it, the
// attributes a plain LIST gives are all there is.
func (c *Client) listOptions() *imap.ListOptions {
	if c.caps.Has(imap.CapSpecialUse) {
		return &imap.ListOptions{ReturnSpecialUse: true}
	}
	return nil
}

// specialUse spells the special-use attributes of RFC 6154 §2 as it does.
var specialUse = map[string]string{}

func init() {
	for _, a := range []imap.MailboxAttr{imap.MailboxAttrAll, imap.MailboxAttrArchive, imap.MailboxAttrDrafts,
		imap.MailboxAttrFlagged, imap.MailboxAttrJunk, imap.MailboxAttrSent, imap.MailboxAttrTrash} {
		specialUse[strings.ToLower(string(a))] = string(a)
	}
}

// remoteMailbox converts a LIST reply.
func remoteMailbox(d *imap.ListData) mail.RemoteMailbox {
	m := mail.RemoteMailbox{Name: d.Mailbox, Delim: d.Delim}
	if strings.EqualFold(m.Name, "INBOX") {
		m.Name = "INBOX" // RFC 9051 §5.1: INBOX is case-insensitive
	}
	for _, a := range d.Attrs {
		attr := string(a)
		if c, ok := specialUse[strings.ToLower(attr)]; ok {
			attr = c
		}
		m.Attrs = append(m.Attrs, attr)
		switch {
		case strings.EqualFold(string(a), string(imap.MailboxAttrNoSelect)),
			strings.EqualFold(string(a), string(imap.MailboxAttrNonExistent)):
			m.NoSelect = true
		}
	}
	return m
}

// Select opens a mailbox read-write, with CONDSTORE when the server has it
// (RFC 7162 §3.1.8), and returns its state, with the MAILBOXID the server
// reports in its answer (RFC 8474 §4.2) where it has OBJECTID.
func (c *Client) Select(ctx context.Context, name string) (mail.MailboxStatus, error) {
	return c.StartSelect(ctx, name)()
}

// StartSelect is Select in two halves: it sends the SELECT and returns,
// and the function it returns waits for the answer. Until then only
// AppendBatch may be called: an APPEND names its mailbox and does not
// depend on the one selected (RFC 9051 §6.3.12), so it can ride in the
// SELECT's round trip, and its NOOP is then sent too.
func (c *Client) StartSelect(ctx context.Context, name string) func() (mail.MailboxStatus, error) {
	done := c.guard(ctx)
	calls := c.calls
	opts := &imap.SelectOptions{CondStore: c.caps.Has(imap.CapCondStore)}
	cmd := c.c.Select(name, opts)
	c.selecting = name
	return func() (mail.MailboxStatus, error) {
		defer done()
		c.selecting = ""
		data, err := cmd.Wait()
		if err != nil {
			c.selected = ""
			return mail.MailboxStatus{}, fmt.Errorf("select %q: %w", name, c.ioErr(ctx, err))
		}
		// Quiet if nothing was sent since, or an AppendBatch's NOOP was.
		c.opened(name, false)
		c.quiet = c.quiet || c.calls == calls
		if data.UIDValidity == 0 {
			// RFC 9051 §6.3.2 and §2.3.1.1: every SELECT reports a
			// non-zero UIDVALIDITY. Without one, a UID cannot be matched
			// to the same message in a later session.
			return mail.MailboxStatus{}, fmt.Errorf("select %q: the server sent no UIDVALIDITY; its UIDs cannot be relied on", name)
		}
		st := mailboxStatus(data)
		st.MailboxID = c.q.SelectMailboxID()
		return st, nil
	}
}

// mailboxStatus converts a SELECT reply. A missing HIGHESTMODSEQ (no
// CONDSTORE, or NOMODSEQ: RFC 7162 §3.1.2.2) becomes ModSeq 0, which the
// engine reads as "changes cannot be asked for by MODSEQ".
func mailboxStatus(d *imap.SelectData) mail.MailboxStatus {
	st := mail.MailboxStatus{
		UIDValidity:   mail.UIDValidity(d.UIDValidity),
		UIDNext:       mail.UID(d.UIDNext),
		HighestModSeq: mail.ModSeq(d.HighestModSeq),
		Messages:      d.NumMessages,
	}
	var perm []string
	for _, f := range d.PermanentFlags {
		if f == imap.FlagWildcard {
			st.CanCreateKeywords = true
			continue
		}
		perm = append(perm, string(f))
	}
	st.PermanentFlags = mail.NewFlags(perm...)
	if d.PermanentFlags == nil {
		// RFC 3501 §7.1: without PERMANENTFLAGS, every flag can be stored.
		st.PermanentFlags = mail.NewFlags(mail.FlagSeen, mail.FlagAnswered, mail.FlagFlagged, mail.FlagDeleted, mail.FlagDraft)
		st.CanCreateKeywords = true
	}
	return st
}

// flagsFromIMAP converts a FLAGS list; \Recent is dropped.
func flagsFromIMAP(fl []imap.Flag) mail.Flags {
	s := make([]string, len(fl))
	for i, f := range fl {
		s[i] = string(f)
	}
	return mail.NewFlags(s...)
}

// Changes returns UID, FLAGS and MODSEQ of every message whose MODSEQ is
// above since (RFC 7162 §3.1.4.1 CHANGEDSINCE): flag changes and new
// messages alike.
func (c *Client) Changes(ctx context.Context, since mail.ModSeq) ([]mail.RemoteMessage, error) {
	// Size and INTERNALDATE too: new messages are among the changed
	// (RFC 7162 §3.1.4.1), and need them; a FETCH of its own for them
	// would cost a round trip.
	return c.fetchMeta(ctx, allUIDs(), &imap.FetchOptions{UID: true, Flags: true, ModSeq: true, RFC822Size: true, InternalDate: true, ChangedSince: uint64(since)})
}

// Scan returns UID and FLAGS (and MODSEQ with CONDSTORE) of every message.
func (c *Client) Scan(ctx context.Context) ([]mail.RemoteMessage, error) {
	return c.fetchMeta(ctx, allUIDs(), &imap.FetchOptions{UID: true, Flags: true, ModSeq: c.caps.Has(imap.CapCondStore)})
}

// Meta returns everything the index keeps of the given messages: flags,
// MODSEQ, RFC822.SIZE and INTERNALDATE. Messages that no longer exist are
// absent from the result.
func (c *Client) Meta(ctx context.Context, uids []mail.UID) ([]mail.RemoteMessage, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	// The answer has at most one message per UID asked for: sized at
	// once, the list of a first sync's 100,000 messages is not copied
	// as it grows.
	return c.fetchMetaInto(ctx, uidSet(uids), &imap.FetchOptions{
		UID: true, Flags: true, ModSeq: c.caps.Has(imap.CapCondStore), RFC822Size: true, InternalDate: true,
	}, make([]mail.RemoteMessage, 0, len(uids)))
}

// Since returns everything the index keeps of the messages with UID at
// or above from: the new messages, when QRESYNC reported only changes to
// known ones (RFC 7162 §3.2.5: known-uids limits the report).
func (c *Client) Since(ctx context.Context, from mail.UID) ([]mail.RemoteMessage, error) {
	var s imap.UIDSet
	s.AddRange(imap.UID(from), 0)
	msgs, err := c.fetchMeta(ctx, s, &imap.FetchOptions{
		UID: true, Flags: true, ModSeq: c.caps.Has(imap.CapCondStore), RFC822Size: true, InternalDate: true,
	})
	// "n:*" names the last message even when n is above every UID.
	return slices.DeleteFunc(msgs, func(m mail.RemoteMessage) bool { return m.UID < from }), err
}

func allUIDs() imap.UIDSet {
	var s imap.UIDSet
	s.AddRange(1, 0) // 1:*
	return s
}

func uidSet(uids []mail.UID) imap.UIDSet {
	var s imap.UIDSet
	for _, u := range uids {
		s.AddNum(imap.UID(u))
	}
	return s
}

func (c *Client) fetchMeta(ctx context.Context, set imap.UIDSet, opts *imap.FetchOptions) ([]mail.RemoteMessage, error) {
	return c.fetchMetaInto(ctx, set, opts, nil)
}

// fetchMetaInto is fetchMeta appending to out.
func (c *Client) fetchMetaInto(ctx context.Context, set imap.UIDSet, opts *imap.FetchOptions, out []mail.RemoteMessage) ([]mail.RemoteMessage, error) {
	defer c.guard(ctx)()
	cmd := c.c.Fetch(set, opts)
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		m := readMeta(msg)
		if m.UID == 0 {
			// An unsolicited FETCH (a flag change by another client) has
			// no UID; the next sync sees that change anyway.
			continue
		}
		out = append(out, m)
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("fetch flags in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	return out, nil
}

// UIDs returns the UIDs of every message in the selected mailbox, with
// ESEARCH (RFC 4731) when offered so that the answer is a compact set.
func (c *Client) UIDs(ctx context.Context) ([]mail.UID, error) {
	defer c.guard(ctx)()
	var opts *imap.SearchOptions
	if c.caps.Has(imap.CapESearch) {
		opts = &imap.SearchOptions{ReturnAll: true}
	}
	data, err := c.c.UIDSearch(&imap.SearchCriteria{}, opts).Wait()
	if err != nil {
		return nil, fmt.Errorf("search UIDs in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	set, ok := data.All.(imap.UIDSet)
	if data.All == nil {
		return nil, nil
	}
	if !ok || set.Dynamic() {
		return nil, fmt.Errorf("search UIDs in %q: the server sent an invalid UID set", c.selected)
	}
	nums, _ := set.Nums()
	out := make([]mail.UID, len(nums))
	for i, u := range nums {
		out[i] = mail.UID(u)
	}
	return out, nil
}

// BodyFunc receives one message's BODY[] as the server sends it (CRLF line
// endings). body must be read to the end or the call fails; size is the
// literal's announced length, or for a message fetched in parts the size
// FetchBodies was given.
type BodyFunc = func(uid mail.UID, size int64, body io.Reader) error

// ErrBodyOrder is returned for a message whose BODY[] arrived before its
// UID, so that it cannot be told apart in a batch; fetch it alone.
var ErrBodyOrder = errors.New("server sent BODY[] before UID")

// FetchBodies streams BODY[] of the given messages to fn, without setting
// \Seen (BODY.PEEK, RFC 9051 §6.4.5); of each message only UID and Size
// (RFC822.SIZE) are read. Messages up to Options.LargeMessage are fetched
// together in one command, then each larger one on its own, in parts
// (fetchParts), so that no literal is long enough to outlast go-imap's
// per-literal read deadline on a slow link. Messages that no longer exist
// are skipped. If fn fails, the rest of the batch is drained and the
// error is returned.
func (c *Client) FetchBodies(ctx context.Context, msgs []mail.RemoteMessage, fn BodyFunc) error {
	c.fetched = c.fetched || len(msgs) > 0
	var whole []mail.UID
	var large []mail.RemoteMessage
	for _, m := range msgs {
		if m.Size > c.large {
			large = append(large, m)
		} else {
			whole = append(whole, m.UID)
		}
	}
	if err := c.fetchWhole(ctx, whole, fn); err != nil {
		return err
	}
	for _, m := range large {
		if err := c.fetchParts(ctx, m.UID, m.Size, fn); err != nil {
			return err
		}
	}
	return nil
}

// fetchWhole fetches BODY[] of the messages in one command.
func (c *Client) fetchWhole(ctx context.Context, uids []mail.UID, fn BodyFunc) error {
	if len(uids) == 0 {
		return nil
	}
	defer c.guard(ctx)()
	section := &imap.FetchItemBodySection{Peek: true}
	cmd := c.c.Fetch(uidSet(uids), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
	var fnErr error
	for {
		msg := cmd.Next()
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
				if fnErr != nil || it.Literal == nil {
					continue
				}
				if uid == 0 {
					fnErr = fmt.Errorf("fetch message in %q: %w", c.selected, ErrBodyOrder)
					continue
				}
				body := &literalReader{r: it.Literal, left: it.Literal.Size()}
				fnErr = fn(uid, it.Literal.Size(), body)
				if body.err != nil {
					// go-imap's reader has moved on; draining the command
					// now would race with it.
					c.c.Close()
					return fmt.Errorf("fetch message UID %d in %q: %w", uid, c.selected, c.ioErr(ctx, body.err))
				}
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("fetch messages in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	return fnErr
}

// literalReader reads a message literal and remembers a failure: go-imap
// ends a literal cut short by a dropped connection with a plain io.EOF,
// which would make a truncated message look whole.
type literalReader struct {
	r    io.Reader
	left int64
	err  error
}

func (l *literalReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err == io.EOF && l.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}
