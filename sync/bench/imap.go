package main

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// rawConn is the bench's own IMAP connection for seeding: go-imap has no
// MULTIAPPEND (RFC 3502), and one APPEND carrying many messages makes
// Dovecot lock and rewrite dovecot-uidlist once per batch instead of once
// per message.
type rawConn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	tag  int
}

// Batch limits of one MULTIAPPEND.
const (
	appendBatchMessages = 500
	appendBatchBytes    = 32 << 20
)

func dialRaw(ctx context.Context, addr string) (*rawConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &rawConn{conn: conn, br: bufio.NewReaderSize(conn, 64<<10), bw: bufio.NewWriterSize(conn, 1<<20)}
	greeting, err := c.br.ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	if !strings.HasPrefix(greeting, "* PREAUTH ") {
		conn.Close()
		return nil, fmt.Errorf("greeting %q, want PREAUTH", strings.TrimSpace(greeting))
	}
	return c, nil
}

// command sends one command line and waits for its tagged OK.
func (c *rawConn) command(format string, args ...any) error {
	c.tag++
	tag := "B" + strconv.Itoa(c.tag)
	fmt.Fprintf(c.bw, tag+" "+format+"\r\n", args...)
	if err := c.bw.Flush(); err != nil {
		return err
	}
	return c.waitTagged(tag)
}

// appendAll appends msgs to mailbox in MULTIAPPEND batches, with LITERAL+
// so that a batch is one write.
func (c *rawConn) appendAll(mailbox string, msgs []message) error {
	for start := 0; start < len(msgs); {
		end, size := start, 0
		for end < len(msgs) && end-start < appendBatchMessages && (end == start || size+len(msgs[end].body) <= appendBatchBytes) {
			size += len(msgs[end].body)
			end++
		}
		c.tag++
		tag := "B" + strconv.Itoa(c.tag)
		fmt.Fprintf(c.bw, "%s APPEND %s", tag, quote(mailbox))
		for _, m := range msgs[start:end] {
			fmt.Fprintf(c.bw, " (%s) \"%s\" {%d+}\r\n", strings.Join(m.flags, " "), m.date.Format("_2-Jan-2006 15:04:05 -0700"), len(m.body))
			c.bw.Write(m.body)
		}
		c.bw.WriteString("\r\n")
		if err := c.bw.Flush(); err != nil {
			return fmt.Errorf("append to %s: %w", mailbox, err)
		}
		if err := c.waitTagged(tag); err != nil {
			return fmt.Errorf("append messages %d to %d to %s: %w", start+1, end, mailbox, err)
		}
		start = end
	}
	return nil
}

// waitTagged reads lines up to the one tagged tag. Nothing the bench sends
// on this connection is answered with a literal.
func (c *rawConn) waitTagged(tag string) error {
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read response: %w", err)
		}
		if rest, ok := strings.CutPrefix(line, tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				return fmt.Errorf("server: %s", strings.TrimSpace(line))
			}
			return nil
		}
	}
}

func (c *rawConn) close() {
	c.command("LOGOUT")
	c.conn.Close()
}

// quote renders an ASCII mailbox name as an IMAP quoted string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// createMailboxes creates names, parents first.
func createMailboxes(ctx context.Context, addr string, names []string) error {
	c, err := dialRaw(ctx, addr)
	if err != nil {
		return err
	}
	defer c.close()
	for _, name := range names {
		if strings.EqualFold(name, "INBOX") {
			continue
		}
		if err := c.command("CREATE %s", quote(name)); err != nil {
			return fmt.Errorf("create %q: %w", name, err)
		}
	}
	return nil
}

// serverChange is what the "server changes" scenario does to the server,
// as another mail client would: toggle \Flagged or \Seen on flagShare of
// the messages (or on flags messages, when set), expunge some and deliver
// new ones.
type serverChange struct {
	flagShare float64
	flags     int
	expunge   int
	deliver   int
}

// changeServer applies ch to boxes (a weighted list: new mail, of sizes
// sz, lands in proportion) and returns what it did and by how many
// messages the mailboxes grew. Choices are drawn from seed over the
// messages sorted by (mailbox, UID), so the same server state gets the
// same changes, whichever tool is measured.
func changeServer(ctx context.Context, addr string, boxes []folder, ch serverChange, sz sizes, seed uint64) (desc string, delta int, err error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", 0, err
	}
	c := imapclient.New(nc, nil)
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.WaitGreeting(); err != nil {
		return "", 0, fmt.Errorf("greeting: %w", err)
	}

	type msg struct {
		box     string
		uid     imap.UID
		flagged bool
		seen    bool
	}
	var all []msg
	for _, b := range boxes {
		if _, err := c.Select(b.name, nil).Wait(); err != nil {
			return "", 0, fmt.Errorf("select %q: %w", b.name, err)
		}
		bufs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			return "", 0, fmt.Errorf("fetch flags of %q: %w", b.name, err)
		}
		for _, m := range bufs {
			all = append(all, msg{box: b.name, uid: m.UID, flagged: slices.Contains(m.Flags, imap.FlagFlagged), seen: slices.Contains(m.Flags, imap.FlagSeen)})
		}
	}
	slices.SortFunc(all, func(a, b msg) int {
		if c := strings.Compare(a.box, b.box); c != 0 {
			return c
		}
		return int(a.uid) - int(b.uid)
	})
	r := rand.New(rand.NewPCG(seed, 0xc4a9e))
	perm := r.Perm(len(all))
	nFlags := int(float64(len(all))*ch.flagShare + 0.5)
	if ch.flags > 0 {
		nFlags = min(ch.flags, len(all))
	}
	nExpunge := min(ch.expunge, len(all)-nFlags)
	type op struct {
		flags   imap.StoreFlags
		expunge bool
	}
	byBox := map[string]map[imap.UID]op{}
	for i, k := range perm[:nFlags+nExpunge] {
		m := all[k]
		var o op
		switch {
		case i >= nFlags:
			o = op{flags: imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, expunge: true}
		case r.IntN(2) == 0:
			o.flags = imap.StoreFlags{Op: opFor(!m.flagged), Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}
		default:
			o.flags = imap.StoreFlags{Op: opFor(!m.seen), Silent: true, Flags: []imap.Flag{imap.FlagSeen}}
		}
		if byBox[m.box] == nil {
			byBox[m.box] = map[imap.UID]op{}
		}
		byBox[m.box][m.uid] = o
	}
	for _, box := range slices.Sorted(maps.Keys(byBox)) {
		if _, err := c.Select(box, nil).Wait(); err != nil {
			return "", 0, fmt.Errorf("select %q: %w", box, err)
		}
		var gone imap.UIDSet
		for _, uid := range slices.Sorted(maps.Keys(byBox[box])) {
			o := byBox[box][uid]
			if err := c.Store(imap.UIDSetNum(uid), &o.flags, nil).Close(); err != nil {
				return "", 0, fmt.Errorf("store in %q: %w", box, err)
			}
			if o.expunge {
				gone.AddNum(uid)
			}
		}
		if len(gone) > 0 {
			if err := c.UIDExpunge(gone).Close(); err != nil {
				return "", 0, fmt.Errorf("expunge in %q: %w", box, err)
			}
		}
	}
	c.Logout().Wait()

	g := newGen(seed, 0xde11e7)
	byFolder := map[string][]message{}
	for i := 0; i < ch.deliver; i++ {
		f := pickFolder(r, boxes)
		byFolder[f] = append(byFolder[f], g.next(sz))
	}
	raw, err := dialRaw(ctx, addr)
	if err != nil {
		return "", 0, err
	}
	defer raw.close()
	for _, f := range slices.Sorted(maps.Keys(byFolder)) {
		if err := raw.appendAll(f, byFolder[f]); err != nil {
			return "", 0, err
		}
	}
	return fmt.Sprintf("%d flag changes, %d expunged, %d new", nFlags, nExpunge, ch.deliver), ch.deliver - nExpunge, nil
}

func opFor(add bool) imap.StoreFlagsOp {
	if add {
		return imap.StoreFlagsAdd
	}
	return imap.StoreFlagsDel
}

// pickFolder draws a folder by its share.
func pickFolder(r *rand.Rand, boxes []folder) string {
	x := r.Float64()
	for _, b := range boxes {
		if x -= b.share; x < 0 {
			return b.name
		}
	}
	return boxes[0].name
}
