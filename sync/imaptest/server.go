package imaptest

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Server is a running IMAP server. The exported fields describe how to
// reach it; the methods seed and inspect it through an IMAP connection of
// its own, opened on first use and reopened if the server dropped it.
//
// Methods call t.Fatal (the t given to the Start function) on any error,
// which stops the test only when called from the test's own goroutine.
// Calls are serialized, so concurrent ones never interleave IMAP commands.
type Server struct {
	Kind     string // "dovecot" or "memory"
	Addr     string // "127.0.0.1:PORT"
	Host     string // "127.0.0.1"
	Port     int
	User     string
	Password string // for memory; Dovecot sessions are PREAUTH and need none
	// Delim is the server's hierarchy delimiter ('/' unless a Start
	// function says otherwise), and Prefix its personal namespace's
	// prefix (RFC 2342): "INBOX." on a hosting-style server, else "".
	// Mailbox names given to the methods below are the server's own,
	// levels joined with Delim.
	Delim  rune
	Prefix string

	t         testing.TB
	clientTLS *tls.Config    // non-nil when the server speaks implicit TLS
	logPath   string         // Dovecot's log; "" for memory
	dovecot   *dovecotServer // nil for memory

	mu     sync.Mutex
	client *imapclient.Client
	// examined says the mailbox client has selected was opened with
	// EXAMINE (read-only).
	examined bool
}

// Message is one message as stored on a server: what Append takes, what
// Messages returns and what Corpus generates.
type Message struct {
	UID   uint32    // set by Messages; 0 in a Corpus, ignored by AppendMany
	Flags []string  // sorted, nil when none; \Recent is never included
	Date  time.Time // INTERNALDATE; servers keep whole seconds
	Body  []byte    // the full message, CRLF line endings
}

func newServer(t testing.TB, kind string, addr *net.TCPAddr) *Server {
	return &Server{
		Kind:  kind,
		Addr:  addr.String(),
		Host:  addr.IP.String(),
		Port:  addr.Port,
		Delim: '/',
		t:     t,
	}
}

// Dial returns a new raw TCP connection to the server, for the code under
// test. For StartMemoryTLS the caller does the TLS handshake.
func (s *Server) Dial() (net.Conn, error) {
	return net.DialTimeout("tcp", s.Addr, 10*time.Second)
}

// DovecotLog returns what Dovecot logged so far (its stderr, and bridge
// errors), for debugging failures; "" for the memory server. A failed test
// prints its tail automatically.
func (s *Server) DovecotLog() string {
	if s.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", s.logPath, err)
	}
	return string(b)
}

// Capabilities sends CAPABILITY and returns what the server advertises in
// the authenticated state, as the code under test will see it.
func (s *Server) Capabilities() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	caps, err := s.conn().Capability().Wait()
	if err != nil {
		s.t.Fatalf("imaptest: capability: %v", err)
	}
	var out []string
	for c := range caps {
		out = append(out, string(c))
	}
	slices.Sort(out)
	return out
}

// conn returns the harness's own IMAP connection, dialing and logging in
// when there is none or the server closed it (Dovecot closes a session
// whose selected mailbox another session deleted). The caller holds s.mu.
func (s *Server) conn() *imapclient.Client {
	if s.client != nil {
		select {
		case <-s.client.Closed():
			s.client.Close()
			s.client = nil
		default:
			return s.client
		}
	}
	nc, err := s.Dial()
	if err != nil {
		s.t.Fatalf("imaptest: dial %s server: %v", s.Kind, err)
	}
	if s.clientTLS != nil {
		nc = tls.Client(nc, s.clientTLS)
	}
	c := imapclient.New(nc, nil)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		s.t.Fatalf("imaptest: %s greeting: %v", s.Kind, err)
	}
	switch c.State() {
	case imap.ConnStateAuthenticated:
	case imap.ConnStateNotAuthenticated:
		if s.Password == "" {
			c.Close()
			s.t.Fatalf("imaptest: %s server did not greet with PREAUTH and has no password", s.Kind)
		}
		if err := c.Login(s.User, s.Password).Wait(); err != nil {
			c.Close()
			s.t.Fatalf("imaptest: login as %q: %v", s.User, err)
		}
	default:
		c.Close()
		s.t.Fatalf("imaptest: %s server connection in state %v after greeting", s.Kind, c.State())
	}
	s.client = c
	return c
}

func (s *Server) closeClient() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return
	}
	// LOGOUT lets Dovecot log a clean "Logged out"; its error is
	// irrelevant because the connection is closed either way.
	s.client.Logout().Wait()
	s.client.Close()
	s.client = nil
}

// CreateMailbox creates name and each missing parent ("Work/Projects/X"
// creates "Work", "Work/Projects" and "Work/Projects/X"; levels split at
// Server.Delim), so parents are
// selectable mailboxes on both servers: Dovecot would otherwise leave them
// \Noselect and the memory server would not create them at all. Existing
// mailboxes are left alone.
func (s *Server) CreateMailbox(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conn()
	delim := string(s.Delim)
	parts := strings.Split(name, delim)
	for i := range parts {
		mbox := strings.Join(parts[:i+1], delim)
		if s.Prefix != "" && strings.EqualFold(mbox+delim, s.Prefix) {
			continue // the namespace's own root ("INBOX" of "INBOX.")
		}
		if strings.EqualFold(mbox, "INBOX") {
			continue
		}
		err := c.Create(mbox, nil).Wait()
		var imapErr *imap.Error
		if errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeAlreadyExists {
			continue
		}
		// ALREADYEXISTS is optional (RFC 5530 §3); Courier refuses an
		// existing name with a plain NO, so LIST decides.
		if errors.As(err, &imapErr) && s.selectable(c, mbox) {
			continue
		}
		if err != nil {
			s.t.Fatalf("imaptest: create %q: %v", mbox, err)
		}
	}
}

// selectable says whether LIST shows mbox as a mailbox that can be
// selected. The caller holds s.mu.
func (s *Server) selectable(c *imapclient.Client, mbox string) bool {
	list, err := c.List("", mbox, nil).Collect()
	if err != nil {
		s.t.Fatalf("imaptest: list %q: %v", mbox, err)
	}
	for _, l := range list {
		if l.Mailbox == mbox && !slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) && !slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			return true
		}
	}
	return false
}

// RenameMailbox renames a mailbox, and those below it, as another client
// would. The harness's connection leaves the mailbox it had selected
// first: servers refuse to rename the mailbox in use.
func (s *Server) RenameMailbox(from, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.leave()
	if err := c.Rename(from, to, nil).Wait(); err != nil {
		s.t.Fatalf("imaptest: rename %q to %q: %v", from, to, err)
	}
}

// DeleteMailbox deletes a mailbox as another client would; one with
// mailboxes below it stays as a \Noselect level.
func (s *Server) DeleteMailbox(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.leave()
	if err := c.Delete(name).Wait(); err != nil {
		s.t.Fatalf("imaptest: delete %q: %v", name, err)
	}
}

// leave returns the harness's connection with no mailbox selected. The
// caller holds s.mu.
func (s *Server) leave() *imapclient.Client {
	c := s.conn()
	mbox := c.Mailbox()
	if mbox == nil {
		return c
	}
	if c.Caps().Has(imap.CapUnselect) {
		if err := c.Unselect().Wait(); err != nil {
			s.t.Fatalf("imaptest: unselect: %v", err)
		}
		return c
	}
	// Without UNSELECT (RFC 3691), CLOSE leaves the mailbox, but expunges
	// \Deleted messages unless it was opened with EXAMINE (RFC 3501
	// §6.4.2), so it is examined again first. Courier has no UNSELECT.
	if _, err := c.Select(mbox.Name, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		s.t.Fatalf("imaptest: examine %q: %v", mbox.Name, err)
	}
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		s.t.Fatalf("imaptest: close %q: %v", mbox.Name, err)
	}
	return c
}

// writable returns the harness's connection ready for a command that
// writes to a mailbox other than by selecting it (APPEND): Courier refuses
// APPEND to the mailbox the connection has EXAMINEd ("NO Current box is
// selected READ-ONLY"), so an examined mailbox is left first. A mailbox
// selected read-write stays selected. The caller holds s.mu.
func (s *Server) writable() *imapclient.Client {
	c := s.conn()
	if s.examined && c.Mailbox() != nil {
		return s.leave()
	}
	return c
}

// Mailboxes returns the selectable mailboxes (LIST "" "*" without
// \Noselect and \NonExistent ones), decoded to UTF-8, sorted.
func (s *Server) Mailboxes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.conn().List("", "*", nil).Collect()
	if err != nil {
		s.t.Fatalf("imaptest: list: %v", err)
	}
	var names []string
	for _, l := range list {
		if slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		names = append(names, l.Mailbox)
	}
	slices.Sort(names)
	return names
}

// UIDValidity returns the mailbox's UIDVALIDITY (from STATUS).
func (s *Server) UIDValidity(mailbox string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.conn().Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		s.t.Fatalf("imaptest: status %q: %v", mailbox, err)
	}
	return st.UIDValidity
}

// Append stores one message and returns its UID. A zero date lets the
// server pick the time.
func (s *Server) Append(mailbox string, body []byte, flags []string, date time.Time) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendPipelined(mailbox, []Message{{Flags: flags, Date: date, Body: body}})[0]
}

// AppendMany stores msgs (their UID is ignored) in order and returns their
// UIDs in the same order. It is the fast path for seeding thousands of
// messages: Dovecot gets them by MULTIAPPEND (see multiAppend), the memory
// server by pipelined APPENDs.
func (s *Server) AppendMany(mailbox string, msgs []Message) []uint32 {
	if len(msgs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dovecot != nil {
		uids, err := s.multiAppend(mailbox, msgs)
		if err != nil {
			s.t.Fatalf("imaptest: append %d messages to %q: %v", len(msgs), mailbox, err)
		}
		return uids
	}
	return s.appendPipelined(mailbox, msgs)
}

// appendWindow is how many APPENDs appendPipelined keeps in flight. Enough
// to hide the round trips; bounded so a failing server does not receive
// thousands of doomed commands.
const appendWindow = 64

// appendPipelined APPENDs msgs one command each, sending up to appendWindow
// before awaiting the first response. The caller holds s.mu.
//
// UIDs come from APPENDUID (RFC 4315 §3). A server that does not send it
// is bracketed with STATUS UIDNEXT: commands on one connection are executed
// in order, so the messages got consecutive UIDs starting at the old
// UIDNEXT, provided nothing else appended meanwhile; if UIDNEXT moved by
// more than len(msgs), the test fails rather than guess.
func (s *Server) appendPipelined(mailbox string, msgs []Message) []uint32 {
	c := s.writable()
	uidPlus := c.Caps().Has(imap.CapUIDPlus)
	var before imap.UID
	if !uidPlus {
		before = s.uidNext(c, mailbox)
	}

	uids := make([]uint32, len(msgs))
	missing := false
	var inflight []*imapclient.AppendCommand
	var first int // index in msgs of inflight[0]
	wait := func() {
		cmd := inflight[0]
		inflight = inflight[1:]
		data, err := cmd.Wait()
		if err != nil {
			s.t.Fatalf("imaptest: append message %d of %d to %q: %v", first+1, len(msgs), mailbox, err)
		}
		uids[first] = uint32(data.UID)
		if data.UID == 0 {
			missing = true
		}
		first++
	}
	window := appendWindow
	if s.Kind == "cyrus" {
		// Cyrus writes each tagged response as it finishes the APPEND,
		// with Nagle's algorithm on: the second response waits for the
		// client's ACK of the first, which the client delays (40 ms on
		// Linux) while it has nothing left to send. One APPEND at a time
		// lets the next command carry the ACK: about 3 ms a message
		// instead of 40.
		window = 1
	}
	for _, m := range msgs {
		if len(inflight) == window {
			wait()
		}
		cmd := c.Append(mailbox, int64(len(m.Body)), &imap.AppendOptions{Flags: toFlags(m.Flags), Time: m.Date})
		_, werr := cmd.Write(m.Body)
		cerr := cmd.Close()
		inflight = append(inflight, cmd)
		if werr != nil || cerr != nil {
			// The command's own error says more; Wait reports it.
			for len(inflight) > 0 {
				wait()
			}
			s.t.Fatalf("imaptest: append to %q: write: %v", mailbox, errors.Join(werr, cerr))
		}
	}
	for len(inflight) > 0 {
		wait()
	}
	if !missing {
		return uids
	}

	if uidPlus {
		s.t.Fatalf("imaptest: %s server advertises UIDPLUS but sent no APPENDUID for %q", s.Kind, mailbox)
	}
	after := s.uidNext(c, mailbox)
	if int64(after)-int64(before) != int64(len(msgs)) {
		s.t.Fatalf("imaptest: append to %q without APPENDUID: UIDNEXT went from %d to %d for %d messages; another session appended meanwhile", mailbox, before, after, len(msgs))
	}
	for i := range uids {
		uids[i] = uint32(before) + uint32(i)
	}
	return uids
}

func (s *Server) uidNext(c *imapclient.Client, mailbox string) imap.UID {
	st, err := c.Status(mailbox, &imap.StatusOptions{UIDNext: true}).Wait()
	if err != nil {
		s.t.Fatalf("imaptest: status %q: %v", mailbox, err)
	}
	return st.UIDNext
}

// SetFlags replaces the message's flags (UID STORE FLAGS.SILENT).
func (s *Server) SetFlags(mailbox string, uid uint32, flags ...string) {
	s.store(mailbox, uid, imap.StoreFlagsSet, flags)
}

// AddFlags adds flags to the message (UID STORE +FLAGS.SILENT).
func (s *Server) AddFlags(mailbox string, uid uint32, flags ...string) {
	s.store(mailbox, uid, imap.StoreFlagsAdd, flags)
}

func (s *Server) store(mailbox string, uid uint32, op imap.StoreFlagsOp, flags []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _ := s.selectMailbox(mailbox, false)
	if err := storeFlags(c, imap.UIDSetNum(imap.UID(uid)), op, toFlags(flags)); err != nil {
		s.t.Fatalf("imaptest: store flags on UID %d in %q: %v", uid, mailbox, err)
	}
}

func storeFlags(c *imapclient.Client, uids imap.UIDSet, op imap.StoreFlagsOp, flags []imap.Flag) error {
	return c.Store(uids, &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close()
}

// Expunge removes the messages: \Deleted, then UID EXPUNGE (RFC 4315 §2.1).
// Without UIDPLUS, plain EXPUNGE would also remove other messages marked
// \Deleted, so their \Deleted is cleared for the EXPUNGE and set again
// afterwards.
func (s *Server) Expunge(mailbox string, uids ...uint32) {
	if len(uids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _ := s.selectMailbox(mailbox, false)
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	deleted := []imap.Flag{imap.FlagDeleted}

	if c.Caps().Has(imap.CapUIDPlus) {
		if err := storeFlags(c, set, imap.StoreFlagsAdd, deleted); err != nil {
			s.t.Fatalf("imaptest: mark %v deleted in %q: %v", set, mailbox, err)
		}
		if err := c.UIDExpunge(set).Close(); err != nil {
			s.t.Fatalf("imaptest: uid expunge %v in %q: %v", set, mailbox, err)
		}
		return
	}

	found, err := c.UIDSearch(&imap.SearchCriteria{Flag: deleted}, nil).Wait()
	if err != nil {
		s.t.Fatalf("imaptest: search deleted in %q: %v", mailbox, err)
	}
	var others imap.UIDSet
	for _, u := range found.AllUIDs() {
		if !set.Contains(u) {
			others.AddNum(u)
		}
	}
	if len(others) > 0 {
		if err := storeFlags(c, others, imap.StoreFlagsDel, deleted); err != nil {
			s.t.Fatalf("imaptest: unmark %v deleted in %q: %v", others, mailbox, err)
		}
	}
	if err := storeFlags(c, set, imap.StoreFlagsAdd, deleted); err != nil {
		s.t.Fatalf("imaptest: mark %v deleted in %q: %v", set, mailbox, err)
	}
	if err := c.Expunge().Close(); err != nil {
		s.t.Fatalf("imaptest: expunge in %q: %v", mailbox, err)
	}
	if len(others) > 0 {
		if err := storeFlags(c, others, imap.StoreFlagsAdd, deleted); err != nil {
			s.t.Fatalf("imaptest: re-mark %v deleted in %q: %v", others, mailbox, err)
		}
	}
}

// Messages returns every message in the mailbox in UID order: UID, flags
// (without \Recent), INTERNALDATE and the full BODY[]. The mailbox is opened
// with EXAMINE so inspecting it changes nothing, not even \Recent.
func (s *Server) Messages(mailbox string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, sel := s.selectMailbox(mailbox, true)
	if sel.NumMessages == 0 {
		return nil
	}
	bodySection := &imap.FetchItemBodySection{Peek: true}
	bufs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID:          true,
		Flags:        true,
		InternalDate: true,
		BodySection:  []*imap.FetchItemBodySection{bodySection},
	}).Collect()
	if err != nil {
		s.t.Fatalf("imaptest: fetch %q: %v", mailbox, err)
	}
	msgs := make([]Message, 0, len(bufs))
	for _, b := range bufs {
		body := b.FindBodySection(bodySection)
		if body == nil {
			s.t.Fatalf("imaptest: fetch %q: no BODY[] for UID %d", mailbox, b.UID)
		}
		msgs = append(msgs, Message{
			UID:   uint32(b.UID),
			Flags: fromFlags(b.Flags),
			Date:  b.InternalDate,
			Body:  body,
		})
	}
	slices.SortFunc(msgs, func(a, b Message) int { return cmp.Compare(a.UID, b.UID) })
	return msgs
}

// selectMailbox SELECTs (or EXAMINEs) mailbox. The caller holds s.mu.
//
// The returned data is the command's own: go-imap updates
// Client.Mailbox() only after Wait has returned, so reading it right away
// races.
func (s *Server) selectMailbox(mailbox string, readOnly bool) (*imapclient.Client, *imap.SelectData) {
	c := s.conn()
	data, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: readOnly}).Wait()
	if err != nil {
		s.t.Fatalf("imaptest: select %q: %v", mailbox, err)
	}
	s.examined = readOnly
	return c, data
}

func toFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}

// fromFlags converts and sorts flags (nil when none), dropping \Recent: it is session
// state (RFC 3501 §2.3.2), not something a sync can observe or set.
func fromFlags(flags []imap.Flag) []string {
	var out []string
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		out = append(out, string(f))
	}
	slices.Sort(out)
	return out
}

// String describes the server for test logs, e.g. "dovecot 127.0.0.1:40123".
func (s *Server) String() string {
	return s.Kind + " " + s.Host + ":" + strconv.Itoa(s.Port)
}
