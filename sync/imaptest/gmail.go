package imaptest

import (
	"bufio"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// The Gmail emulation: an IMAP server of satchel's own that behaves the way
// Gmail does over IMAP, so that the engine meets labels-as-folders in every
// test run. One store of messages (each with an X-GM-MSGID, an X-GM-THRID,
// flags, an INTERNALDATE and a set of labels) is shown through one mailbox
// per label; a message with three labels is in three mailboxes (and in
// "[Gmail]/All Mail") with one X-GM-MSGID and a UID of each mailbox's own
// numbering.
//
// go-imap's server has no hook for FETCH, STORE or SEARCH items it does not
// know, and no CONDSTORE, so this is a server of its own: gmail_proto.go
// frames and parses commands, gmail_session.go runs a connection,
// gmail_fetch.go answers the selected-state commands and gmail_store.go
// keeps the messages and applies Gmail's rules.
//
// What it rests on, cited where each rule is made:
//   - Google's IMAP extension documentation,
//     https://developers.google.com/gmail/imap/imap-extensions (X-GM-EXT-1:
//     X-GM-MSGID, X-GM-THRID, X-GM-LABELS, X-GM-RAW, special-use LIST);
//   - Gmail Help "How actions sync in IMAP",
//     https://support.google.com/mail/answer/77657 (which deletion does
//     what), and "Too many simultaneous connections",
//     https://support.google.com/mail/answer/97150 (15 connections);
//   - the Gmail API's ImapSettings, https://developers.google.com/gmail/api/reference/rest/v1/ImapSettings
//     (autoExpunge, expungeBehavior: archive, trash, deleteForever), whose
//     defaults the Gmail settings page names: Auto-Expunge on, Archive;
//   - what users report of Gmail's wire format where Google documents none;
//     each such rule says so and where it was reported.

// GmailExpunge is what an expunge from "[Gmail]/All Mail", the last
// folder a message is visible in, does to it: the Gmail setting "When a
// message is marked as deleted and expunged from the last visible IMAP
// folder" (ImapSettings.expungeBehavior).
type GmailExpunge int

const (
	// GmailExpungeArchive is Gmail's default: the message is archived,
	// which for a message in All Mail means it stays there, with its
	// labels and its UID; only its \Deleted mark goes. Google documents
	// the setting, not what All Mail shows afterwards; this is the
	// reading under which "archive" changes nothing that was not already
	// true of a message in All Mail.
	GmailExpungeArchive GmailExpunge = iota
	// GmailExpungeTrash moves the message to the Trash.
	GmailExpungeTrash
	// GmailExpungeDeleteForever deletes the message for good.
	GmailExpungeDeleteForever
)

// GmailOptions shapes StartGmail's server. The zero value is Gmail with
// its default settings.
type GmailOptions struct {
	// LabelsKeepModSeq makes label changes leave MODSEQ alone, for a
	// Gmail that raises a message's MODSEQ only for flag changes. By
	// default (false) a label change raises it like a flag change does,
	// visible in every mailbox the message is in. Google documents
	// neither; the engine must survive both. A message entering or
	// leaving a mailbox raises that mailbox's HIGHESTMODSEQ either way.
	LabelsKeepModSeq bool
	// QuotedSystemLabels makes FETCH X-GM-LABELS write system labels as
	// quoted strings with an escaped backslash ("\\Inbox"), as Gmail
	// does in the responses users report (ruby/net-imap#272,
	// eclipse-ee4j/angus-mail#165); by default they are atoms (\Inbox),
	// as in Google's documentation.
	QuotedSystemLabels bool
	// AutoExpungeOff is Gmail's "Auto-Expunge off - Wait for the client
	// to update the server": \Deleted stays until EXPUNGE. By default
	// (false, Gmail's default "Auto-Expunge on") STORE \Deleted expunges
	// the message from that mailbox at once.
	AutoExpungeOff bool
	// Expunge is what an expunge from All Mail does; the zero value is
	// Gmail's default, GmailExpungeArchive.
	Expunge GmailExpunge
	// LiteralPlus advertises LITERAL+, as Google's documentation shows
	// Gmail did; by default LITERAL- (RFC 7888) is advertised, as Gmail
	// does now in the capability lists users report (jstedfast/MailKit#1396).
	// Non-synchronizing literals of any size are accepted either way.
	LiteralPlus bool
	// Token, when set, is the OAuth 2.0 access token that AUTHENTICATE
	// XOAUTH2 and OAUTHBEARER accept for Server.User, besides LOGIN with
	// Server.Password.
	Token string
	// Limits makes the server answer as Gmail does once an account is
	// over its limits.
	Limits GmailLimits
}

// GmailLimits are the points at which StartGmail's server answers with
// Gmail's limit responses. Commands and bytes are counted over the whole
// account (every connection, the harness's own included), as Gmail
// counts them per account.
type GmailLimits struct {
	// MaxConnections is how many authenticated connections may be open at
	// once; the next LOGIN or AUTHENTICATE is answered "NO [ALERT] Too
	// many simultaneous connections. (Failure)" (the text users report:
	// zone-eu/wildduck#35, jstedfast/MailKit#377). 0 means Gmail's 15
	// (support.google.com/mail/answer/97150); negative means no cap.
	MaxConnections int
	// ThrottleAfter, if not 0, appends " [THROTTLED]" to the text of every
	// tagged OK from the ThrottleAfter-th command on. Gmail signals
	// throttling this way, after the text of an OK rather than as a
	// response code (mscdex/node-imap#593: "A2 OK Success [THROTTLED]";
	// jstedfast/MailKit#1396), and then answers slowly; the emulation
	// does not slow down.
	ThrottleAfter int
	// OverQuotaAfterCommands and OverQuotaAfterBytes, if not 0, answer
	// every command after that many commands, or once that many bytes of
	// FETCH responses were sent, with "NO [OVERQUOTA] Account exceeded
	// command or bandwidth limits. (Failure)" (the text users report:
	// ljmerza/ha-email-sensor#16). LOGOUT still works.
	OverQuotaAfterCommands int
	OverQuotaAfterBytes    int64
	// SessionExpiresAfter, if not 0, ends each connection at its
	// SessionExpiresAfter-th command after authentication with "* BYE
	// Session expired, please login again." (what Gmail sends when a
	// session ends, as users report: Flying-Toast/yugo#38,
	// emailjs/emailjs-imap-client#142). Server.GmailExpireSessions does
	// it to every open connection at once.
	SessionExpiresAfter int
}

const (
	gmailUser     = "satchel@gmail.com"
	gmailPassword = "satchel-test-password"
	// gmailMaxConnections is Gmail's cap on simultaneous IMAP
	// connections per account (support.google.com/mail/answer/97150).
	gmailMaxConnections = 15
)

// StartGmail starts the Gmail emulation on 127.0.0.1:0 with one account
// (Server.User, Server.Password) holding Gmail's system mailboxes: INBOX,
// "[Gmail]" (not selectable) and "[Gmail]/All Mail", "/Drafts",
// "/Important", "/Sent Mail", "/Spam", "/Starred" and "/Trash". Its
// Server.Kind is "gmail". It stops in t.Cleanup.
//
// The generic Server methods work on it through IMAP like on any server
// (and follow Gmail's rules: Expunge in a label mailbox removes the label);
// the Gmail* methods seed and inspect the store directly.
func StartGmail(t testing.TB, opts GmailOptions) *Server {
	t.Helper()
	st := newGmailStore(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("imaptest: listen: %v", err)
	}
	g := &gmailServer{store: st, ln: ln, conns: make(map[net.Conn]struct{})}
	g.wg.Add(1)
	go g.accept()

	s := newServer(t, "gmail", ln.Addr().(*net.TCPAddr))
	s.User = gmailUser
	s.Password = gmailPassword
	gmailServers.Store(s, g)
	t.Cleanup(func() {
		s.closeClient()
		if err := g.stop(stopTimeout); err != nil {
			t.Errorf("imaptest: stop gmail server: %v", err)
		}
		gmailServers.Delete(s)
	})
	return s
}

// gmailServers maps each Server started by StartGmail to its state.
var gmailServers sync.Map // *Server -> *gmailServer

// gmailServer is one running emulation: its listener, its connections and
// the store they share.
type gmailServer struct {
	store *gmailStore
	ln    net.Listener
	wg    sync.WaitGroup

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool
}

func (g *gmailServer) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		if g.closing || len(g.conns) >= maxScriptConns {
			g.mu.Unlock()
			c.Close()
			continue
		}
		g.conns[c] = struct{}{}
		g.wg.Add(1)
		g.mu.Unlock()
		go func() {
			defer g.wg.Done()
			defer func() {
				c.Close()
				g.mu.Lock()
				delete(g.conns, c)
				g.mu.Unlock()
			}()
			sess := &gmSession{
				store: g.store,
				c:     c,
				br:    bufio.NewReaderSize(c, 64<<10),
				bw:    bufio.NewWriter(c),
			}
			sess.serve()
		}()
	}
}

// stop closes the listener and every connection, and waits for their
// goroutines.
func (g *gmailServer) stop(timeout time.Duration) error {
	g.mu.Lock()
	g.closing = true
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.ln.Close()
	g.store.wake()
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return errors.New("a connection goroutine did not finish")
	}
}

// GmailMessage is a message to seed with Server.GmailAdd.
type GmailMessage struct {
	Body []byte // the full message, CRLF line endings
	// Labels as X-GM-LABELS spells them: system labels (\Inbox, \Sent,
	// \Draft, \Important, \Starred, \Trash, \Spam) and user labels
	// ("Work/Projects", UTF-8). A user label's mailbox is created when
	// missing. No labels: the message is only in All Mail (archived).
	Labels []string
	Flags  []string  // \Flagged is the \Starred label
	Date   time.Time // INTERNALDATE; zero means now
	// Thread is the X-GM-THRID; 0 makes one: that of the message this one
	// replies to (In-Reply-To, References), else its own X-GM-MSGID.
	Thread uint64
}

// gmail returns the emulation behind s, failing the test when s is not
// one.
func (s *Server) gmail() *gmailStore {
	v, ok := gmailServers.Load(s)
	if !ok {
		s.t.Fatalf("imaptest: %s is not a Gmail emulation (StartGmail)", s)
	}
	return v.(*gmailServer).store
}

// GmailAdd stores a message as mail delivered to the account would be,
// with no Message-ID check, and returns its X-GM-MSGID.
func (s *Server) GmailAdd(m GmailMessage) uint64 {
	st := s.gmail()
	st.mu.Lock()
	defer st.mu.Unlock()
	var labels []string
	for _, l := range m.Labels {
		c, ok := canonLabel(l)
		if !ok {
			s.t.Fatalf("imaptest: GmailAdd: unknown system label %q", l)
		}
		labels = append(labels, c)
	}
	msg := st.newMessageLocked(m.Body, m.Flags, m.Date, m.Thread)
	for _, l := range labels {
		st.addLabelLocked(msg, l)
	}
	st.touchLocked(msg, true)
	return msg.id
}

// GmailLabels returns the labels of the message with X-GM-MSGID id as the
// store keeps them (\Starred for \Flagged, \Trash and \Spam included),
// sorted; ok is false when no such message exists (or it was deleted for
// good).
func (s *Server) GmailLabels(id uint64) (labels []string, ok bool) {
	st := s.gmail()
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.byID[id]
	if m == nil || m.gone {
		return nil, false
	}
	return m.allLabels(), true
}

// GmailMailboxesOf returns the mailboxes that show the message with
// X-GM-MSGID id, sorted: one IMAP copy each.
func (s *Server) GmailMailboxesOf(id uint64) []string {
	st := s.gmail()
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []string
	for _, b := range st.boxes {
		if b.entryOf(st.byID[id]) != nil {
			out = append(out, b.name)
		}
	}
	slices.Sort(out)
	return out
}

// GmailCopies is how many mailboxes show the message with X-GM-MSGID id:
// the copies a client that syncs every mailbox sees.
func (s *Server) GmailCopies(id uint64) int {
	return len(s.GmailMailboxesOf(id))
}

// GmailUID returns the message's UID in mailbox, 0 when it is not there.
func (s *Server) GmailUID(mailbox string, id uint64) uint32 {
	st := s.gmail()
	st.mu.Lock()
	defer st.mu.Unlock()
	b := st.boxLocked(mailbox)
	if b == nil {
		s.t.Fatalf("imaptest: GmailUID: no mailbox %q", mailbox)
	}
	if e := b.entryOf(st.byID[id]); e != nil {
		return e.uid
	}
	return 0
}

// GmailModSeq returns the message's MODSEQ.
func (s *Server) GmailModSeq(id uint64) uint64 {
	st := s.gmail()
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.byID[id]
	if m == nil {
		s.t.Fatalf("imaptest: GmailModSeq: no message %d", id)
	}
	return m.modseq
}

// GmailMessageCount is how many messages the account holds (deleted for
// good ones aside), whatever mailboxes show them.
func (s *Server) GmailMessageCount() int {
	st := s.gmail()
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, m := range st.msgs {
		if !m.gone {
			n++
		}
	}
	return n
}

// GmailExpireSessions ends every open connection with "* BYE Session
// expired, please login again.", as Gmail does when a session's
// authorization runs out: a connection in IDLE at once, the others at
// their next command.
func (s *Server) GmailExpireSessions() {
	st := s.gmail()
	st.mu.Lock()
	st.expireGen++
	st.mu.Unlock()
	st.wake()
}

// GmailSetLimits replaces the account's limits and counts its commands
// and fetched bytes afresh from now on, as Gmail's daily allowance comes
// back: a test runs into a limit, then lifts it ("the next day") with
// GmailSetLimits(GmailLimits{}). Open connections keep the number of
// commands they have sent (for SessionExpiresAfter).
func (s *Server) GmailSetLimits(l GmailLimits) {
	st := s.gmail()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.opts.Limits = l
	st.commands, st.fetched = 0, 0
}

// GmailPeakConnections is the most connections the account had
// authenticated at once since the server started.
func (s *Server) GmailPeakConnections() int {
	st := s.gmail()
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.peak
}

// GmailLogins counts the successful LOGINs and AUTHENTICATEs.
func (s *Server) GmailLogins() int {
	st := s.gmail()
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.logins
}

// GmailRelabel adds and removes labels of the message with X-GM-MSGID id,
// as the web interface does (archiving is removing \Inbox): the message
// enters and leaves the labels' mailboxes, and its MODSEQ rises unless
// GmailOptions.LabelsKeepModSeq.
func (s *Server) GmailRelabel(id uint64, add, remove []string) {
	st := s.gmail()
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.byID[id]
	if m == nil || m.gone {
		s.t.Fatalf("imaptest: GmailRelabel: no message %d", id)
	}
	for i, list := range [][]string{add, remove} {
		for _, l := range list {
			c, ok := canonLabel(l)
			if !ok {
				s.t.Fatalf("imaptest: GmailRelabel: unknown system label %q", l)
			}
			if i == 0 {
				st.addLabelLocked(m, c)
			} else {
				st.removeLabelLocked(m, c)
			}
		}
	}
	st.touchLocked(m, st.labelsBump())
}

// GmailRenumber gives mailbox a new UIDVALIDITY and numbers its messages
// again from 1, as Gmail does now and then (users report it after
// Google's maintenance): a client must take every UID it knew there for
// unknown. Call it with no session of the client under test open: one
// with the mailbox selected would go on with the old numbers.
func (s *Server) GmailRenumber(mailbox string) {
	st := s.gmail()
	st.mu.Lock()
	defer st.mu.Unlock()
	b := st.boxLocked(mailbox)
	if b == nil || b.noSelect {
		s.t.Fatalf("imaptest: GmailRenumber: no mailbox %q", mailbox)
	}
	st.uidv += 7
	b.uidValidity = st.uidv
	for i, e := range b.entries {
		e.uid = uint32(i + 1)
	}
	b.uidNext = uint32(len(b.entries) + 1)
	st.signalLocked()
}
