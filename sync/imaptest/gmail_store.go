package imaptest

import (
	"bufio"
	"bytes"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"
)

// Gmail's system labels, as X-GM-LABELS spells them. \Starred is not kept
// as a label: it is the \Flagged flag (a star is a flag, Gmail Help
// answer 77657: "Flag a message: Apply a star to the message").
const (
	gmInbox     = `\Inbox`
	gmSent      = `\Sent`
	gmDraft     = `\Draft`
	gmImportant = `\Important`
	gmStarred   = `\Starred`
	gmTrash     = `\Trash`
	gmSpam      = `\Spam`
)

var gmSystemLabels = []string{gmInbox, gmSent, gmDraft, gmImportant, gmStarred, gmTrash, gmSpam}

// canonLabel maps a label as a client spells it to the store's: system
// labels in any case. Google's documentation shows the drafts label as
// \Drafts, the responses users report as \Draft (ruby/net-imap#272); both
// are taken, \Draft is written. A backslash name that is no system label
// is refused.
func canonLabel(l string) (string, bool) {
	if !strings.HasPrefix(l, `\`) {
		return l, l != ""
	}
	for _, s := range gmSystemLabels {
		if strings.EqualFold(l, s) {
			return s, true
		}
	}
	if strings.EqualFold(l, `\Drafts`) {
		return gmDraft, true
	}
	return "", false
}

// gmailAllMail is the mailbox of every message neither in Trash nor in
// Spam.
const gmailAllMail = "[Gmail]/All Mail"

// gmailSystemBoxes are the mailboxes every account has, with the label
// each shows and its special-use attribute (RFC 6154 §2; \Important is
// Gmail's own, listed in Google's documentation).
var gmailSystemBoxes = []struct{ name, label, special string }{
	{"INBOX", gmInbox, ""},
	{gmailAllMail, "", `\All`},
	{"[Gmail]/Drafts", gmDraft, `\Drafts`},
	{"[Gmail]/Important", gmImportant, `\Important`},
	{"[Gmail]/Sent Mail", gmSent, `\Sent`},
	{"[Gmail]/Spam", gmSpam, `\Junk`},
	{"[Gmail]/Starred", gmStarred, `\Flagged`},
	{"[Gmail]/Trash", gmTrash, `\Trash`},
}

// gmMsg is one message of the store: one X-GM-MSGID, whatever mailboxes
// show it.
type gmMsg struct {
	id, thrid uint64
	flags     []string        // sorted; never \Deleted (per mailbox) or \Recent
	labels    map[string]bool // system and user labels; never \Starred
	date      time.Time
	body      []byte
	msgID     string // the Message-ID header, for APPEND's duplicate check
	modseq    uint64
	gone      bool // deleted for good
}

func (m *gmMsg) hasFlag(f string) bool {
	return slices.ContainsFunc(m.flags, func(g string) bool { return strings.EqualFold(f, g) })
}

func (m *gmMsg) setFlag(f string, on bool) {
	i := slices.IndexFunc(m.flags, func(g string) bool { return strings.EqualFold(f, g) })
	switch {
	case on && i < 0:
		m.flags = append(m.flags, f)
		slices.Sort(m.flags)
	case !on && i >= 0:
		m.flags = slices.Delete(m.flags, i, i+1)
	}
}

// allLabels returns the message's labels with \Starred for \Flagged,
// sorted.
func (m *gmMsg) allLabels() []string {
	out := make([]string, 0, len(m.labels)+1)
	for l := range m.labels {
		out = append(out, l)
	}
	if m.hasFlag(`\Flagged`) {
		out = append(out, gmStarred)
	}
	slices.Sort(out)
	return out
}

// gmBox is one mailbox: a view of the messages carrying its label.
type gmBox struct {
	name     string // UTF-8, levels joined with "/"
	label    string // the label it shows; "" for All Mail and "[Gmail]"
	special  string // RFC 6154 attribute, "" for none
	noSelect bool   // "[Gmail]": a level, not a mailbox
	system   bool   // not created by the user: cannot be deleted or renamed

	uidValidity, uidNext uint32
	modseq               uint64 // HIGHESTMODSEQ
	entries              []*gmEntry
	byMsg                map[*gmMsg]*gmEntry
}

// gmEntry is a message as one mailbox shows it. \Deleted belongs to the
// entry, not the message: an expunge removes the message from one
// mailbox (one label), so the mark that asks for it is that mailbox's.
type gmEntry struct {
	uid     uint32
	msg     *gmMsg
	deleted bool
}

func (b *gmBox) entryOf(m *gmMsg) *gmEntry {
	if m == nil {
		return nil
	}
	return b.byMsg[m]
}

func (b *gmBox) entryByUID(uid uint32) *gmEntry {
	i, ok := slices.BinarySearchFunc(b.entries, uid, func(e *gmEntry, u uint32) int {
		switch {
		case e.uid < u:
			return -1
		case e.uid > u:
			return 1
		}
		return 0
	})
	if !ok {
		return nil
	}
	return b.entries[i]
}

// gmailStore is the account: its messages and mailboxes, and the counters
// the limits read. One mutex guards it all.
type gmailStore struct {
	opts GmailOptions

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	boxes   map[string]*gmBox
	msgs    []*gmMsg
	byID    map[uint64]*gmMsg
	nextID  uint64
	modseq  uint64
	uidv    uint32

	authed    int   // authenticated connections
	peak      int   // the most authenticated connections at once
	logins    int   // successful authentications
	commands  int   // commands received, all connections
	fetched   int64 // bytes of FETCH responses sent
	expireGen int   // GmailExpireSessions calls
}

// gmailFirstMsgID is the first X-GM-MSGID handed out: above 2^32 and 2^60,
// as Gmail's are, so that a client keeping them in 32 bits fails, and
// below 2^63, so that a signed 64-bit integer holds them.
const gmailFirstMsgID = 1_600_000_000_000_000_000

func newGmailStore(opts GmailOptions) *gmailStore {
	s := &gmailStore{
		opts:    opts,
		changed: make(chan struct{}),
		boxes:   make(map[string]*gmBox),
		byID:    make(map[uint64]*gmMsg),
		nextID:  gmailFirstMsgID,
		modseq:  1000,
		uidv:    600,
	}
	for _, b := range gmailSystemBoxes {
		nb := s.newBoxLocked(b.name, b.label)
		nb.special, nb.system = b.special, true
	}
	s.boxes["[Gmail]"] = &gmBox{name: "[Gmail]", noSelect: true, system: true}
	return s
}

func (s *gmailStore) newBoxLocked(name, label string) *gmBox {
	s.uidv += 7
	b := &gmBox{name: name, label: label, uidValidity: s.uidv, uidNext: 1, modseq: s.modseq, byMsg: make(map[*gmMsg]*gmEntry)}
	s.boxes[name] = b
	return b
}

// wake tells sessions in IDLE that something changed.
func (s *gmailStore) wake() {
	s.mu.Lock()
	s.signalLocked()
	s.mu.Unlock()
}

func (s *gmailStore) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// boxLocked returns the mailbox called name (INBOX in any case), nil if
// none.
func (s *gmailStore) boxLocked(name string) *gmBox {
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	return s.boxes[name]
}

// labelBoxLocked returns the mailbox of a label, creating a user label's
// mailbox (and its parents, which Gmail shows as labels too) when missing:
// Gmail creates a label that STORE or APPEND names.
func (s *gmailStore) labelBoxLocked(label string) *gmBox {
	for _, b := range s.boxes {
		if b.label == label && !b.noSelect {
			return b
		}
	}
	parts := strings.Split(label, "/")
	var b *gmBox
	for i := range parts {
		name := strings.Join(parts[:i+1], "/")
		if b = s.boxes[name]; b == nil {
			b = s.newBoxLocked(name, name)
		}
	}
	return b
}

func (s *gmailStore) sortedBoxesLocked() []*gmBox {
	out := make([]*gmBox, 0, len(s.boxes))
	for _, b := range s.boxes {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *gmBox) int {
		// INBOX first, as Gmail lists it.
		if (a.name == "INBOX") != (b.name == "INBOX") {
			if a.name == "INBOX" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

// newMessageLocked makes a message with no labels (archived: in All Mail
// only, once touched).
func (s *gmailStore) newMessageLocked(body []byte, flags []string, date time.Time, thread uint64) *gmMsg {
	if date.IsZero() {
		date = time.Now()
	}
	id := s.nextID
	s.nextID += 4099
	h := readHeader(body)
	m := &gmMsg{
		id:     id,
		thrid:  thread,
		labels: make(map[string]bool),
		date:   date.Truncate(time.Second),
		body:   bytes.Clone(body),
		msgID:  strings.TrimSpace(h.Get("Message-Id")),
	}
	for _, f := range flags {
		if strings.EqualFold(f, `\Deleted`) || strings.EqualFold(f, `\Recent`) {
			continue
		}
		m.setFlag(canonFlag(f), true)
	}
	if m.thrid == 0 {
		m.thrid = s.threadOfLocked(h)
	}
	if m.thrid == 0 {
		m.thrid = id
	}
	s.msgs = append(s.msgs, m)
	s.byID[id] = m
	return m
}

// threadOfLocked finds the X-GM-THRID of a message that h replies to: one
// whose Message-ID is its In-Reply-To or among its References. Gmail's
// threading also looks at subjects; this is the part a test can predict.
func (s *gmailStore) threadOfLocked(h textproto.MIMEHeader) uint64 {
	refs := strings.Fields(h.Get("In-Reply-To") + " " + h.Get("References"))
	for _, r := range refs {
		for _, m := range s.msgs {
			if m.msgID != "" && m.msgID == r {
				return m.thrid
			}
		}
	}
	return 0
}

func readHeader(body []byte) textproto.MIMEHeader {
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(body))).ReadMIMEHeader()
	return h
}

// canonFlag spells system flags as RFC 9051 §2.3.2 does.
func canonFlag(f string) string {
	for _, s := range []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`} {
		if strings.EqualFold(f, s) {
			return s
		}
	}
	return f
}

// belongs says whether mailbox b shows message m. Trash and Spam hold
// their messages alone: a message there is in no other mailbox, not even
// All Mail, but keeps its other labels for when it comes back (Gmail Help
// answer 77657: moving to [Gmail]/Trash moves the message to Trash; the
// web interface shows a trashed message only in Trash).
func belongs(b *gmBox, m *gmMsg) bool {
	switch {
	case m.gone || b.noSelect:
		return false
	case b.label == gmTrash:
		return m.labels[gmTrash]
	case b.label == gmSpam:
		return m.labels[gmSpam] && !m.labels[gmTrash]
	case m.labels[gmTrash] || m.labels[gmSpam]:
		return false
	case b.name == gmailAllMail:
		return true
	case b.label == gmStarred:
		return m.hasFlag(`\Flagged`)
	}
	return m.labels[b.label]
}

// touchLocked records a change to m: with bump, a new MODSEQ for the
// message (RFC 7162 §3.1: every change to its metadata), visible in every
// mailbox showing it; then m enters the mailboxes whose label it gained,
// with the next UID of each (RFC 9051 §2.3.1.1: UIDs are never reused),
// and leaves those whose label it lost. A mailbox a message leaves gets a
// new HIGHESTMODSEQ too (RFC 7162 §3.1.2.1 asks it to change on expunge).
func (s *gmailStore) touchLocked(m *gmMsg, bump bool) {
	if bump {
		s.modseq++
		m.modseq = s.modseq
	}
	for _, b := range s.sortedBoxesLocked() {
		e := b.entryOf(m)
		want := belongs(b, m)
		switch {
		case want && e == nil:
			e = &gmEntry{uid: b.uidNext, msg: m}
			b.uidNext++
			b.entries = append(b.entries, e)
			b.byMsg[m] = e
			b.modseq = max(b.modseq, m.modseq)
		case !want && e != nil:
			b.removeLocked(e)
			s.modseq++
			b.modseq = s.modseq
		case e != nil:
			b.modseq = max(b.modseq, m.modseq)
		}
	}
	s.signalLocked()
}

func (b *gmBox) removeLocked(e *gmEntry) {
	i := slices.Index(b.entries, e)
	b.entries = slices.Delete(b.entries, i, i+1)
	delete(b.byMsg, e.msg)
}

// labelsBump says whether a label change raises MODSEQ.
func (s *gmailStore) labelsBump() bool { return !s.opts.LabelsKeepModSeq }

// addLabelLocked gives m a label (canonical) without touching it.
// \Starred sets \Flagged; \Trash and \Spam exclude each other.
func (s *gmailStore) addLabelLocked(m *gmMsg, l string) {
	switch l {
	case gmStarred:
		m.setFlag(`\Flagged`, true)
		return
	case gmTrash:
		delete(m.labels, gmSpam)
	case gmSpam:
		delete(m.labels, gmTrash)
	}
	if !strings.HasPrefix(l, `\`) {
		s.labelBoxLocked(l)
	}
	m.labels[l] = true
}

func (s *gmailStore) removeLabelLocked(m *gmMsg, l string) {
	if l == gmStarred {
		m.setFlag(`\Flagged`, false)
		return
	}
	delete(m.labels, l)
}

// placeLocked puts m into mailbox b as COPY, MOVE and APPEND do (Gmail
// Help answer 77657): into a label's mailbox it gets the label, into
// Trash or Spam it is trashed or reported, into Starred it gets a star.
// Out of Trash or Spam, into any other mailbox, it comes back with the
// labels it kept. It returns m's entry in b.
func (s *gmailStore) placeLocked(m *gmMsg, b *gmBox) *gmEntry {
	switch {
	case b.label == gmTrash || b.label == gmSpam:
		s.addLabelLocked(m, b.label)
	default:
		delete(m.labels, gmTrash)
		delete(m.labels, gmSpam)
		if b.name != gmailAllMail {
			s.addLabelLocked(m, b.label)
		}
	}
	s.touchLocked(m, s.labelsBump() || b.label == gmStarred)
	return b.entryOf(m)
}

// expungeLocked expunges entry e from mailbox b by Gmail's rules (Gmail
// Help answer 77657 "How actions sync in IMAP"): from INBOX it removes
// \Inbox, from a label's mailbox that label ("Delete a message from a
// folder: Remove that label from the message"), from Starred the star;
// from Trash or Spam it deletes the message for good ("Delete the message
// permanently"); from All Mail, the last folder it is visible in, it does
// what GmailOptions.Expunge says (ImapSettings.expungeBehavior).
func (s *gmailStore) expungeLocked(b *gmBox, e *gmEntry) {
	m := e.msg
	if b.entryOf(m) != e {
		return // gone already
	}
	bump := s.labelsBump()
	switch {
	case b.label == gmTrash || b.label == gmSpam:
		m.gone = true
	case b.name == gmailAllMail:
		switch s.opts.Expunge {
		case GmailExpungeTrash:
			s.addLabelLocked(m, gmTrash)
		case GmailExpungeDeleteForever:
			m.gone = true
		default:
			e.deleted = false
			bump = true // only \Deleted changed
		}
	default:
		s.removeLabelLocked(m, b.label)
		bump = bump || b.label == gmStarred
	}
	s.touchLocked(m, bump)
}

// appendLocked stores an APPENDed message in b. Gmail keeps one copy of a
// message: an APPEND of one it already has (same Message-ID, same bytes)
// stores nothing new; the message it has gets b's label and the APPEND
// names its UID there; a trashed one comes back out of Trash. Google does
// not document this in its IMAP pages; it rests on reports: the
// maintainers of Google's own import tool say Gmail ignores the second
// copy and merges the labels, and that a missing Message-ID defeats it
// (google/import-mailbox-to-gmail#56); a re-upload of a trashed message
// un-trashes the first copy, old INTERNALDATE and all
// (rgladwell/imap-upload#22). Gmail's own test of "the same message" is
// not public; same Message-ID and same bytes is the part that is sure.
func (s *gmailStore) appendLocked(b *gmBox, body []byte, flags []string, date time.Time) *gmEntry {
	h := readHeader(body)
	if id := strings.TrimSpace(h.Get("Message-Id")); id != "" {
		for _, m := range s.msgs {
			if !m.gone && m.msgID == id && bytes.Equal(m.body, body) {
				return s.placeLocked(m, b)
			}
		}
	}
	m := s.newMessageLocked(body, flags, date, 0)
	e := s.placeLocked(m, b)
	if e != nil && slices.ContainsFunc(flags, func(f string) bool { return strings.EqualFold(f, `\Deleted`) }) {
		e.deleted = true
	}
	return e
}

// deleteBoxLocked deletes a user label: its messages lose it and stay
// wherever else they are (Gmail Help answer 77657: a folder is a label).
func (s *gmailStore) deleteBoxLocked(b *gmBox) {
	// Trashed messages lose it too: they are in no mailbox but Trash.
	for _, m := range s.msgs {
		if m.labels[b.label] {
			delete(m.labels, b.label)
			s.touchLocked(m, s.labelsBump())
		}
	}
	b.entries = nil
	delete(s.boxes, b.name)
	s.signalLocked()
}

// renameBoxLocked renames a user label and those below it; the mailboxes
// keep their UIDs and UIDVALIDITY.
func (s *gmailStore) renameBoxLocked(from, to string) {
	for _, b := range s.sortedBoxesLocked() {
		if b.system || (b.name != from && !strings.HasPrefix(b.name, from+"/")) {
			continue
		}
		old := b.name
		b.name = to + old[len(from):]
		b.label = b.name
		delete(s.boxes, old)
		s.boxes[b.name] = b
		// Trashed messages are renamed too, for when they come back.
		for _, m := range s.msgs {
			if !m.labels[old] {
				continue
			}
			delete(m.labels, old)
			m.labels[b.label] = true
			s.touchLocked(m, s.labelsBump())
		}
	}
	s.signalLocked()
}
