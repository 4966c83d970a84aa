package imapremote

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Errors of the write side that callers branch on. They are the leaf
// package's, so that the engine can branch on them without importing this
// package.
var (
	// ErrNoMove: the server has no MOVE (RFC 6851). Move sent nothing;
	// the caller copies, then expunges, itself.
	ErrNoMove = mail.ErrNoMove
	// ErrExpungeDeferred: Expunge flagged the messages \Deleted but did
	// not expunge them, because a plain EXPUNGE would also have removed
	// other messages. Not a failure of the connection; a later Expunge
	// can finish the job once the other messages are gone.
	ErrExpungeDeferred = mail.ErrExpungeDeferred
)

// FlagChange is one message's flag update. UnchangedSince, when non-zero
// and the server has CONDSTORE, makes the STORE conditional (RFC 7162
// §3.1.3): it is refused if the message changed on the server since.
type FlagChange = mail.FlagChange

// Store applies flag changes in the selected mailbox and returns, for each
// UID the server confirmed, its flags and MODSEQ afterwards. UIDs missing
// from the result were not changed: refused by UNCHANGEDSINCE or expunged
// meanwhile. UnchangedSince is ignored when the server lacks CONDSTORE.
// On error nothing is reported, though some commands may have taken
// effect.
//
// Messages with the same (Add, Remove, UnchangedSince) share one UID STORE
// per direction (+FLAGS, then -FLAGS), all pipelined, never .SILENT, so
// the server reports each result in a FETCH (RFC 9051 §6.4.6). A
// conditional change that both adds and removes is one STORE FLAGS of the
// message's flags, read first, with Add and Remove applied, under
// UNCHANGEDSINCE: a +FLAGS would raise the MODSEQ and make the -FLAGS that
// follows fail its own condition.
//
// go-imap hands the caller every FETCH that names a UID of a pending
// STORE, and it drops the [MODIFIED] code of a refused one (RFC 7162
// §3.1.3), so a FETCH counts as confirmation only if its flags show the
// change. Any other UID is fetched again and counted as changed only if
// its flags show the change and, for a conditional change, its MODSEQ is
// still at most UnchangedSince: the change was a no-op, which Dovecot
// answers with no FETCH. A NOOP first collects the updates the server had
// queued, which it would otherwise send during the STORE. What remains
// undetectable: another client's change, made after that NOOP, that
// already shows this one, reported during a STORE it makes the server
// refuse; the message then counts as changed, with its true flags.
//
// Changes must name distinct, non-zero UIDs, and no flag may be both
// added and removed.
func (c *Client) Store(ctx context.Context, changes []FlagChange) (map[mail.UID]mail.RemoteMessage, error) {
	return c.StartStore(ctx, changes)()
}

// StartStore is Store in two halves: it sends the STOREs and returns, and
// the function it returns reads their answers and returns what Store
// would. Commands sent between the two, such as the rest of a mailbox's
// writes, go out in the same round trip. The NOOP is left out when the
// connection's last command was one (AppendBatch ends with one) or a
// SELECT: the server has then had nothing to report since.
func (c *Client) StartStore(ctx context.Context, changes []FlagChange) func() (map[mail.UID]mail.RemoteMessage, error) {
	fail := func(err error) func() (map[mail.UID]mail.RemoteMessage, error) {
		return func() (map[mail.UID]mail.RemoteMessage, error) { return nil, err }
	}
	want, order, err := c.checkChanges(changes)
	if err != nil {
		return fail(fmt.Errorf("store flags in %q: %w", c.selected, err))
	}
	out := make(map[mail.UID]mail.RemoteMessage, len(want))
	if len(want) == 0 {
		return func() (map[mail.UID]mail.RemoteMessage, error) { return out, nil }
	}
	quiet := c.quiet
	done := c.guard(ctx)
	if !quiet {
		if err := c.c.Noop().Wait(); err != nil {
			done()
			return fail(fmt.Errorf("store flags in %q: noop: %w", c.selected, c.ioErr(ctx, err)))
		}
	}
	cmds, err := c.planStore(ctx, want, order)
	if err != nil {
		done()
		return fail(fmt.Errorf("store flags: %w", err))
	}
	wait := c.startStores(cmds)
	return func() (map[mail.UID]mail.RemoteMessage, error) {
		defer done()
		replies, err := wait()
		if err != nil {
			return nil, fmt.Errorf("store flags in %q: %w", c.selected, c.ioErr(ctx, err))
		}
		return c.confirmStores(ctx, want, order, replies, out)
	}
}

// confirmStores fills out with the changes the STOREs' replies confirm,
// reading again the messages whose reply did not show the change.
func (c *Client) confirmStores(ctx context.Context, want map[mail.UID]FlagChange, order []mail.UID, replies map[mail.UID]storeReply, out map[mail.UID]mail.RemoteMessage) (map[mail.UID]mail.RemoteMessage, error) {
	var recheck []mail.UID
	for _, uid := range order {
		r, ok := replies[uid]
		if ok && r.hasFlags && satisfies(r.flags, want[uid]) {
			out[uid] = mail.RemoteMessage{UID: uid, Flags: r.flags, ModSeq: r.modSeq}
			continue
		}
		recheck = append(recheck, uid)
	}
	if len(recheck) == 0 {
		return out, nil
	}
	now, err := c.fetchMeta(ctx, uidSet(recheck), &imap.FetchOptions{UID: true, Flags: true, ModSeq: c.condStore()})
	if err != nil {
		return nil, fmt.Errorf("store flags: %w", err)
	}
	for _, m := range now {
		ch, ok := want[m.UID]
		if !ok || !satisfies(m.Flags, ch) {
			continue
		}
		r, ok := replies[m.UID]
		if ch.UnchangedSince != 0 && m.ModSeq > ch.UnchangedSince && !(ok && !r.hasFlags) {
			// Changed since, and the STORE's answer for it, if any, did
			// not show the change: refused (RFC 7162 §3.1.3), whatever
			// the flags now are.
			continue
		}
		out[m.UID] = mail.RemoteMessage{UID: m.UID, Flags: m.Flags, ModSeq: m.ModSeq}
	}
	return out, nil
}

func (c *Client) condStore() bool { return c.caps.Has(imap.CapCondStore) }

// checkChanges validates changes and indexes them by UID, in the order
// given; UnchangedSince is cleared when the server has no CONDSTORE.
func (c *Client) checkChanges(changes []FlagChange) (map[mail.UID]FlagChange, []mail.UID, error) {
	want := make(map[mail.UID]FlagChange, len(changes))
	order := make([]mail.UID, 0, len(changes))
	for _, ch := range changes {
		if ch.UID == 0 {
			return nil, nil, errors.New("UID 0 is not a message")
		}
		if _, dup := want[ch.UID]; dup {
			return nil, nil, fmt.Errorf("UID %d has two flag changes", ch.UID)
		}
		for _, f := range ch.Add.List() {
			if ch.Remove.Has(f) {
				return nil, nil, fmt.Errorf("UID %d: flag %s is both added and removed", ch.UID, f)
			}
		}
		if err := sendableFlags(ch.Add); err != nil {
			return nil, nil, fmt.Errorf("UID %d: %w", ch.UID, err)
		}
		if err := sendableFlags(ch.Remove); err != nil {
			return nil, nil, fmt.Errorf("UID %d: %w", ch.UID, err)
		}
		if !c.condStore() {
			ch.UnchangedSince = 0
		}
		want[ch.UID] = ch
		order = append(order, ch.UID)
	}
	return want, order, nil
}

// satisfies reports whether flags show the change applied. Keywords are
// compared without regard to case (RFC 9051 §2.3.2): a server may echo a
// keyword in the spelling it first stored.
func satisfies(flags mail.Flags, ch FlagChange) bool {
	have := make(map[string]bool, flags.Len())
	for _, f := range flags.List() {
		have[strings.ToLower(f)] = true
	}
	for _, f := range ch.Add.List() {
		if !have[strings.ToLower(f)] {
			return false
		}
	}
	for _, f := range ch.Remove.List() {
		if have[strings.ToLower(f)] {
			return false
		}
	}
	return true
}

// storeCmd is one UID STORE to send.
type storeCmd struct {
	uids  imap.UIDSet
	flags imap.StoreFlags
	since mail.ModSeq
}

// storeBatch is the messages that share one change.
type storeBatch struct {
	change FlagChange // UID aside
	uids   imap.UIDSet
}

// storeGroup is the key messages share a command by.
type storeGroup struct {
	add, remove string
	since       mail.ModSeq
}

// planStore turns the changes into commands, in the order the groups first
// appear. Conditional changes that both add and remove become STORE FLAGS
// of the message's whole new flag set; their current flags are fetched
// for that, and a message already changed since is left out.
func (c *Client) planStore(ctx context.Context, want map[mail.UID]FlagChange, order []mail.UID) ([]storeCmd, error) {
	var (
		cmds    []storeCmd
		groups  = map[storeGroup]*storeBatch{}
		keys    []storeGroup
		replace []mail.UID
	)
	for _, uid := range order {
		ch := want[uid]
		if ch.Add.Len() == 0 && ch.Remove.Len() == 0 {
			continue // nothing to send; the recheck reports its flags
		}
		if ch.UnchangedSince != 0 && ch.Add.Len() > 0 && ch.Remove.Len() > 0 {
			replace = append(replace, uid)
			continue
		}
		k := storeGroup{ch.Add.String(), ch.Remove.String(), ch.UnchangedSince}
		g, ok := groups[k]
		if !ok {
			g = &storeBatch{change: ch}
			groups[k] = g
			keys = append(keys, k)
		}
		g.uids.AddNum(imap.UID(uid))
	}
	for _, k := range keys {
		g := groups[k]
		ch := g.change
		if ch.Add.Len() > 0 {
			cmds = append(cmds, storeCmd{uids: g.uids, since: ch.UnchangedSince, flags: imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: imapFlags(ch.Add)}})
		}
		if ch.Remove.Len() > 0 {
			cmds = append(cmds, storeCmd{uids: g.uids, since: ch.UnchangedSince, flags: imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: imapFlags(ch.Remove)}})
		}
	}
	if len(replace) == 0 {
		return cmds, nil
	}

	cur, err := c.fetchMeta(ctx, uidSet(replace), &imap.FetchOptions{UID: true, Flags: true, ModSeq: true})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(cur, func(a, b mail.RemoteMessage) int { return cmp.Compare(a.UID, b.UID) })
	type target struct {
		flags string
		since mail.ModSeq
	}
	byTarget := map[target]*storeCmd{}
	var targets []target
	for _, m := range cur {
		ch, ok := want[m.UID]
		if !ok || m.ModSeq == 0 || m.ModSeq > ch.UnchangedSince {
			// Changed since: the server would refuse the STORE
			// (RFC 7162 §3.1.3), so it is not sent.
			continue
		}
		// The flags read are still the message's flags exactly when its
		// MODSEQ has not moved past UnchangedSince, which is what the
		// STORE's condition makes the server check.
		set := m.Flags.Union(ch.Add).Minus(ch.Remove)
		k := target{set.String(), ch.UnchangedSince}
		g, ok := byTarget[k]
		if !ok {
			g = &storeCmd{since: ch.UnchangedSince, flags: imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: imapFlags(set)}}
			byTarget[k] = g
			targets = append(targets, k)
		}
		g.uids.AddNum(imap.UID(m.UID))
	}
	for _, k := range targets {
		cmds = append(cmds, *byTarget[k])
	}
	return cmds, nil
}

// storeReply is what one STORE's FETCH said of a message.
type storeReply struct {
	flags    mail.Flags
	hasFlags bool
	modSeq   mail.ModSeq
}

// startStores sends every command before reading any answer; the
// function it returns reads them all. For a UID that two commands name
// (+FLAGS, then -FLAGS), the reply of the later one wins. The two
// commute, Add and Remove being disjoint, so the final flags do not
// depend on the order a server runs them in (RFC 9051 §5.5); a reply
// that shows the state between them fails the check in Store and the
// message is read again.
func (c *Client) startStores(cmds []storeCmd) func() (map[mail.UID]storeReply, error) {
	fetches := make([]*imapclient.FetchCommand, len(cmds))
	for i, sc := range cmds {
		var opts *imap.StoreOptions
		if sc.since != 0 {
			opts = &imap.StoreOptions{UnchangedSince: uint64(sc.since)}
		}
		fetches[i] = c.c.Store(sc.uids, &sc.flags, opts)
	}
	// Each command is drained on its own goroutine, from now on: go-imap
	// blocks its reader when a command's queue of FETCH replies is full,
	// so draining them in turn, or later, could wait on a command whose
	// replies are stuck behind another's.
	results := make([]map[mail.UID]storeReply, len(fetches))
	errs := make([]error, len(fetches))
	var wg sync.WaitGroup
	for i, f := range fetches {
		wg.Go(func() { results[i], errs[i] = drainStore(f) })
	}
	return func() (map[mail.UID]storeReply, error) {
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		out := map[mail.UID]storeReply{}
		for _, r := range results {
			for uid, rep := range r {
				out[uid] = rep
			}
		}
		return out, nil
	}
}

// drainStore reads a STORE's FETCH replies. A reply without UID (RFC 9051
// §6.4.9 requires it in answers to UID commands) cannot be attributed and
// is skipped.
func drainStore(cmd *imapclient.FetchCommand) (map[mail.UID]storeReply, error) {
	out := map[mail.UID]storeReply{}
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		var (
			uid mail.UID
			r   storeReply
		)
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = mail.UID(it.UID)
			case imapclient.FetchItemDataFlags:
				r.flags, r.hasFlags = flagsFromIMAP(it.Flags), true
			case imapclient.FetchItemDataModSeq:
				r.modSeq = mail.ModSeq(it.ModSeq)
			}
		}
		if uid != 0 {
			out[uid] = r
		}
	}
	return out, cmd.Close()
}

// imapFlags converts a flag set for sending; \Recent is never in it.
func imapFlags(f mail.Flags) []imap.Flag {
	l := f.List()
	out := make([]imap.Flag, len(l))
	for i, s := range l {
		out[i] = imap.Flag(s)
	}
	return out
}

// sendableFlags rejects flags that cannot be sent as they are: go-imap writes
// a flag as an atom without checking it, so a space or a CRLF in a
// keyword would break, or inject into, the command (RFC 9051 §9: flag is
// "\" atom or an atom).
func sendableFlags(f mail.Flags) error {
	for _, s := range f.List() {
		a := s
		if a[0] == '\\' {
			a = a[1:]
		}
		ok := a != ""
		for i := 0; ok && i < len(a); i++ {
			b := a[i]
			ok = b > 0x20 && b < 0x7f && strings.IndexByte(`(){%*"\]`, b) < 0
		}
		if !ok {
			return fmt.Errorf("invalid flag %q", s)
		}
	}
	return nil
}

// Append uploads a message to mailbox with flags and INTERNALDATE date (the
// server's time when zero). body must yield exactly size bytes with CRLF
// line endings; it is read to its end. It returns the UIDVALIDITY and UID
// from APPENDUID (RFC 4315 §3) when the server advertises UIDPLUS, and
// zeros otherwise (FindNew then locates the message): Dovecot sends
// APPENDUID even with UIDPLUS hidden, and an unadvertised extension is not
// relied on.
//
// An announced literal cannot be taken back (RFC 9051 §4.3), so a body
// that fails, is short or is long closes the connection before the
// command ends, and nothing is appended.
func (c *Client) Append(ctx context.Context, mailbox string, flags mail.Flags, date time.Time, size int64, body io.Reader) (mail.UIDValidity, mail.UID, error) {
	if err := appendable(flags, size); err != nil {
		return 0, 0, fmt.Errorf("append to %q: %w", mailbox, err)
	}
	defer c.guard(ctx)()
	cmd := c.c.Append(mailbox, size, &imap.AppendOptions{Flags: imapFlags(flags), Time: date})
	if err := sendLiteral(ctx, cmd, body, size); err != nil {
		c.c.Close()
		cmd.Close() // releases go-imap's command lock; fails on the closed connection
		_, werr := cmd.Wait()
		var ierr *imap.Error
		if errors.As(werr, &ierr) {
			// The server refused the command before the literal
			// (synchronizing literal, RFC 9051 §4.3): its reason is
			// the one to report.
			err = werr
		}
		return 0, 0, fmt.Errorf("append to %q: %w", mailbox, c.ioErr(ctx, err))
	}
	if err := cmd.Close(); err != nil {
		return 0, 0, fmt.Errorf("append to %q: %w", mailbox, c.ioErr(ctx, err))
	}
	data, err := cmd.Wait()
	if err != nil {
		return 0, 0, fmt.Errorf("append to %q: %w", mailbox, c.ioErr(ctx, err))
	}
	if !c.caps.Has(imap.CapUIDPlus) {
		return 0, 0, nil
	}
	return mail.UIDValidity(data.UIDValidity), mail.UID(data.UID), nil
}

// AppendBatch appends messages to mailbox in order, each as Append does,
// without waiting for each answer before sending the next when the
// server takes non-synchronizing literals (LITERAL+, RFC 7888): the batch
// costs one round trip, not one per message. Without LITERAL+ each
// literal waits for the server's go-ahead anyway, and the messages are
// appended one by one. The result says, per message, whether it was
// appended (see mail.Appended); an error means the connection failed,
// and the messages without an answer are in doubt.
func (c *Client) AppendBatch(ctx context.Context, mailbox string, msgs []mail.Outgoing) ([]mail.Appended, error) {
	out := make([]mail.Appended, len(msgs))
	if !c.caps.Has(imap.CapLiteralPlus) {
		for i, m := range msgs {
			body, err := m.Open()
			if err != nil {
				out[i].Err = err
				continue
			}
			uidv, uid, err := c.Append(ctx, mailbox, m.Flags, m.Date, m.Size, body)
			body.Close()
			var ierr *imap.Error
			switch {
			case errors.As(err, &ierr) && !c.closed():
				out[i].Err = err
			case err != nil:
				return out, err
			default:
				out[i] = mail.Appended{UIDValidity: uidv, UID: uid, Done: true}
			}
		}
		return out, nil
	}
	defer c.guard(ctx)()
	cmds := make([]*imapclient.AppendCommand, len(msgs))
	for i, m := range msgs {
		if err := appendable(m.Flags, m.Size); err != nil {
			out[i].Err = fmt.Errorf("append to %q: %w", mailbox, err)
			continue
		}
		body, err := m.Open()
		if err != nil {
			out[i].Err = err
			continue
		}
		cmd := c.c.Append(mailbox, m.Size, &imap.AppendOptions{Flags: imapFlags(m.Flags), Time: m.Date})
		err = sendLiteral(ctx, cmd, body, m.Size)
		body.Close()
		if err != nil {
			// An announced literal cannot be taken back: the
			// connection goes, and the answers already read still
			// count.
			c.c.Close()
			cmd.Close()
			cmd.Wait()
			c.collect(cmds[:i], out)
			return out, fmt.Errorf("append to %q: %w", mailbox, c.ioErr(ctx, err))
		}
		if err := cmd.Close(); err != nil {
			c.collect(cmds[:i], out)
			return out, fmt.Errorf("append to %q: %w", mailbox, c.ioErr(ctx, err))
		}
		cmds[i] = cmd
	}
	// A NOOP in the same round trip collects what the server has to
	// report on the selected mailbox, the new messages included, so that
	// a StartStore that follows needs none of its own.
	var noop *imapclient.Command
	if c.selected != "" || c.selecting != "" {
		noop = c.c.Noop()
	}
	if err := c.collect(cmds, out); err != nil {
		return out, fmt.Errorf("append to %q: %w", mailbox, c.ioErr(ctx, err))
	}
	// A failed NOOP only leaves the next STORE its own.
	if noop != nil && noop.Wait() == nil {
		c.quiet = true
	}
	return out, nil
}

// collect waits for the answers of pipelined APPENDs, in order, until
// the connection fails.
func (c *Client) collect(cmds []*imapclient.AppendCommand, out []mail.Appended) error {
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		data, err := cmd.Wait()
		var ierr *imap.Error
		switch {
		case errors.As(err, &ierr) && !c.closed():
			out[i].Err = err
		case err != nil:
			return err
		case c.caps.Has(imap.CapUIDPlus):
			out[i] = mail.Appended{UIDValidity: mail.UIDValidity(data.UIDValidity), UID: mail.UID(data.UID), Done: true}
		default:
			out[i] = mail.Appended{Done: true}
		}
	}
	return nil
}

// closed reports whether the connection is gone.
func (c *Client) closed() bool {
	select {
	case <-c.c.Closed():
		return true
	default:
		return false
	}
}

// appendable checks what APPEND would send before anything is sent.
func appendable(flags mail.Flags, size int64) error {
	if err := sendableFlags(flags); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	return nil
}

// sendLiteral writes an APPEND's message: exactly size bytes of body,
// which must then be at its end. An error leaves the announced literal
// unfinished, and the caller closes the connection.
func sendLiteral(ctx context.Context, cmd *imapclient.AppendCommand, body io.Reader, size int64) error {
	_, err := io.CopyN(cmd, ctxReader{ctx, body}, size)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("the message is shorter than its announced %d bytes", size)
	}
	if err != nil {
		return err
	}
	var probe [1]byte
	if n, _ := io.ReadFull(ctxReader{ctx, body}, probe[:]); n > 0 {
		return fmt.Errorf("the message is longer than its announced %d bytes", size)
	}
	return nil
}

// ctxReader stops reading once ctx ends, so that a body that is slow to
// produce does not hold an Append whose connection is already closed.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// HeaderHash is the SHA-256 of a message's header as FindNew compares it:
// the bytes up to and including the first empty line (CRLF form), or the
// whole message if there is none. It is what the server returns as
// BODY[HEADER] (RFC 9051 §6.4.5: the header including its delimiting
// blank line), so a whole message and its BODY[HEADER] hash the same,
// provided the server returns the header's bytes as stored (Dovecot does;
// go-imap's server returns no BODY[HEADER] for a message without an empty
// line).
func HeaderHash(crlfHeader []byte) [32]byte {
	h := crlfHeader
	if bytes.HasPrefix(h, []byte("\r\n")) {
		h = h[:2] // an empty header: the first line is the empty one
	} else if i := bytes.Index(h, []byte("\r\n\r\n")); i >= 0 {
		h = h[:i+4]
	}
	return sha256.Sum256(h)
}

// FindNew looks in the selected mailbox for a message at or above UID from,
// with RFC822.SIZE size and a header whose HeaderHash is headerHash,
// skipping UIDs in exclude, and returns the lowest match or 0. It is how a
// message appended or copied without UIDPLUS is found. A NOOP first makes
// the server report messages added since the last command.
func (c *Client) FindNew(ctx context.Context, from mail.UID, size int64, headerHash [32]byte, exclude map[mail.UID]bool) (mail.UID, error) {
	defer c.guard(ctx)()
	if err := c.c.Noop().Wait(); err != nil {
		return 0, fmt.Errorf("find new message in %q: noop: %w", c.selected, c.ioErr(ctx, err))
	}
	if from == 0 {
		from = 1
	}
	// RFC 9051 §6.4.9: from:* always names the last message, even below
	// from; such replies are filtered out below.
	var all imap.UIDSet
	all.AddRange(imap.UID(from), 0)
	sizes, err := c.c.Fetch(all, &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return 0, fmt.Errorf("find new message in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	var cand imap.UIDSet
	for _, m := range sizes {
		uid := mail.UID(m.UID)
		// A reply without RFC822.SIZE (an update about the message's
		// flags, say) is checked in full below.
		if uid < from || exclude[uid] || (size >= 0 && m.RFC822Size != 0 && m.RFC822Size != size) {
			continue
		}
		cand.AddNum(m.UID)
	}
	if len(cand) == 0 {
		return 0, nil
	}
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	heads, err := c.c.Fetch(cand, &imap.FetchOptions{UID: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return 0, fmt.Errorf("find new message in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	var found mail.UID
	for _, m := range heads {
		uid := mail.UID(m.UID)
		head := m.FindBodySection(section)
		if uid < from || exclude[uid] || (size >= 0 && m.RFC822Size != size) || head == nil || HeaderHash(head) != headerHash {
			continue
		}
		if found == 0 || uid < found {
			found = uid
		}
	}
	return found, nil
}

// Move moves messages from the selected mailbox to dest with UID MOVE
// (RFC 6851 §3.1) and returns old→new UIDs from COPYUID when the server
// advertises UIDPLUS and sends it (RFC 6851 §4.3); the map may be empty.
// Without MOVE it returns ErrNoMove and sends nothing: go-imap would fall
// back to COPY, STORE \Deleted and a plain EXPUNGE, which also removes
// every other message flagged \Deleted.
func (c *Client) Move(ctx context.Context, uids []mail.UID, dest string) (map[mail.UID]mail.UID, error) {
	if !c.caps.Has(imap.CapMove) {
		return nil, fmt.Errorf("move from %q to %q: %w", c.selected, dest, ErrNoMove)
	}
	if len(uids) == 0 {
		return map[mail.UID]mail.UID{}, nil
	}
	defer c.guard(ctx)()
	// go-imap decides on its fallback from its own capability set, the
	// same one unless a server changed its list since Dial.
	if !c.c.Caps().Has(imap.CapMove) {
		return nil, fmt.Errorf("move from %q to %q: %w", c.selected, dest, ErrNoMove)
	}
	data, err := c.c.Move(uidSet(uids), dest).Wait()
	if err != nil {
		return nil, fmt.Errorf("move from %q to %q: %w", c.selected, dest, c.ioErr(ctx, err))
	}
	return c.copyUIDs(uids, data.SourceUIDs, data.DestUIDs), nil
}

// Copy copies messages from the selected mailbox to dest with UID COPY and
// returns old→new UIDs from COPYUID (RFC 4315 §3) when the server
// advertises UIDPLUS and sends it; the map may be empty.
func (c *Client) Copy(ctx context.Context, uids []mail.UID, dest string) (map[mail.UID]mail.UID, error) {
	if len(uids) == 0 {
		return map[mail.UID]mail.UID{}, nil
	}
	defer c.guard(ctx)()
	data, err := c.c.Copy(uidSet(uids), dest).Wait()
	if err != nil {
		return nil, fmt.Errorf("copy from %q to %q: %w", c.selected, dest, c.ioErr(ctx, err))
	}
	return c.copyUIDs(uids, data.SourceUIDs, data.DestUIDs), nil
}

// copyUIDs pairs a COPYUID's source and destination UIDs. RFC 4315 §3
// pairs them in the order listed; go-imap hands both sets over sorted,
// which keeps the pairing for servers that copy in UID order (all known
// ones do, as messages are copied in mailbox order). Sets of different
// lengths, or sources not asked for, make the whole answer unusable:
// the map is then empty and the caller falls back to FindNew.
func (c *Client) copyUIDs(asked []mail.UID, src, dst imap.NumSet) map[mail.UID]mail.UID {
	out := map[mail.UID]mail.UID{}
	if !c.caps.Has(imap.CapUIDPlus) {
		return out
	}
	s, ok1 := src.(imap.UIDSet)
	d, ok2 := dst.(imap.UIDSet)
	if !ok1 || !ok2 {
		return out
	}
	from, ok1 := s.Nums()
	to, ok2 := d.Nums()
	if !ok1 || !ok2 || len(from) != len(to) {
		return out
	}
	for i, u := range from {
		if !slices.Contains(asked, mail.UID(u)) {
			return map[mail.UID]mail.UID{}
		}
		out[mail.UID(u)] = mail.UID(to[i])
	}
	return out
}

// Expunge removes messages from the selected mailbox: STORE +FLAGS.SILENT
// (\Deleted), then UID EXPUNGE of exactly those UIDs (RFC 4315 §2.1).
// Without UIDPLUS, a plain EXPUNGE (RFC 9051 §6.4.3) would also remove
// every other message flagged \Deleted, by the user or another client, so
// it is sent only when UID SEARCH DELETED finds nothing but these UIDs;
// otherwise the messages stay flagged \Deleted and ErrExpungeDeferred is
// returned. Another client that flags a message \Deleted between that
// SEARCH and the EXPUNGE loses it: IMAP without UIDPLUS cannot prevent it.
func (c *Client) Expunge(ctx context.Context, uids []mail.UID) error {
	return c.StartExpunge(ctx, uids)()
}

// StartExpunge is Expunge in two halves: with UIDPLUS it sends the STORE
// (unless FlagDeleted sent it already), waits for its answer, sends the
// UID EXPUNGE and returns, and the function it returns waits for the UID
// EXPUNGE's answer; without, it does all of Expunge before returning. The
// UID EXPUNGE never goes out with the STORE: it depends on the STORE's
// result, and a server may run pipelined commands at once (RFC 9051
// §5.5). Dovecot does: a UID EXPUNGE sent right behind the STORE can
// find the messages not yet flagged, expunge nothing and answer OK.
// Commands sent before StartExpunge, such as a mailbox's flag STOREs,
// share the STORE's round trip.
func (c *Client) StartExpunge(ctx context.Context, uids []mail.UID) func() error {
	p := c.deleting
	c.deleting = nil
	if p != nil && !slices.Equal(p.uids, uids) {
		<-p.done // another set: the STORE's answer is not left unread
		p = nil
	}
	if len(uids) == 0 {
		return func() error { return nil }
	}
	if !c.caps.Has(imap.CapUIDPlus) {
		err := c.expungeSearched(ctx, uids)
		return func() error { return err }
	}
	if p == nil {
		p = c.sendDeleted(ctx, uids)
	}
	done := c.guard(ctx)
	if err := <-p.done; err != nil {
		done()
		err = fmt.Errorf("flag messages \\Deleted in %q: %w", c.selected, c.ioErr(ctx, err))
		return func() error { return err }
	}
	exp := c.c.UIDExpunge(uidSet(p.uids))
	// Drained from now on: go-imap queues EXPUNGE replies for the
	// pending UID EXPUNGE and blocks its reader when the queue is full,
	// and the flag STOREs sent before it may still wait to be read.
	expDone := make(chan error, 1)
	go func() { expDone <- exp.Close() }()
	return func() error {
		defer done()
		if err := <-expDone; err != nil {
			return fmt.Errorf("expunge messages in %q: %w", c.selected, c.ioErr(ctx, err))
		}
		return nil
	}
}

// pendingDelete is a STORE +FLAGS.SILENT (\Deleted) sent ahead of the
// UID EXPUNGE of the same messages; done gets its answer.
type pendingDelete struct {
	uids []mail.UID
	done chan error
}

// FlagDeleted sends the STORE +FLAGS.SILENT (\Deleted) of an expunge to
// come and returns without waiting, so that it rides in the round trip
// of the commands sent next (a mailbox's APPENDs). StartExpunge of the
// same UIDs then only waits for its answer before it sends the UID
// EXPUNGE, in the round trip of whatever is sent beside it (the flag
// STOREs). It does nothing without UIDPLUS, or unless the mailbox is
// selected with no SELECT pending: the UIDs must be those of the mailbox
// the server has open.
func (c *Client) FlagDeleted(ctx context.Context, uids []mail.UID) {
	if len(uids) == 0 || !c.caps.Has(imap.CapUIDPlus) || c.selected == "" || c.selecting != "" || c.examined || c.deleting != nil {
		return
	}
	c.deleting = c.sendDeleted(ctx, uids)
}

// sendDeleted sends the STORE +FLAGS.SILENT (\Deleted) of uids.
func (c *Client) sendDeleted(ctx context.Context, uids []mail.UID) *pendingDelete {
	defer c.guard(ctx)()
	store := c.c.Store(uidSet(uids), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil)
	p := &pendingDelete{uids: slices.Clone(uids), done: make(chan error, 1)}
	// Drained from now on: go-imap queues the STORE's FETCH replies for
	// it and blocks its reader when the queue is full.
	go func() { p.done <- store.Close() }()
	return p
}

// expungeSearched is Expunge without UIDPLUS.
func (c *Client) expungeSearched(ctx context.Context, uids []mail.UID) error {
	defer c.guard(ctx)()
	set := uidSet(uids)
	// The SEARCH waits for the STORE, as StartExpunge's UID EXPUNGE does.
	if err := c.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return fmt.Errorf("flag messages \\Deleted in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	data, err := c.c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("search deleted messages in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	found, ok := data.All.(imap.UIDSet)
	if data.All != nil && (!ok || found.Dynamic()) {
		return fmt.Errorf("search deleted messages in %q: the server sent an invalid UID set", c.selected)
	}
	others := 0
	nums, _ := found.Nums()
	for _, u := range nums {
		if !set.Contains(u) {
			others++
		}
	}
	if others > 0 {
		return fmt.Errorf("expunge %d messages in %q: %d other messages are flagged \\Deleted: %w", len(uids), c.selected, others, ErrExpungeDeferred)
	}
	if len(nums) == 0 {
		return nil // none of them is left to expunge
	}
	if err := c.c.Expunge().Close(); err != nil {
		return fmt.Errorf("expunge messages in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	return nil
}
