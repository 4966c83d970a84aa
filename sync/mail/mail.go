// Package mail holds the value types that every layer of satchel shares:
// UIDs, UIDVALIDITY, MODSEQ, flag sets and mailbox state.
//
// It is a leaf: it imports nothing from satchel and nothing from go-imap.
// The IMAP adapter converts go-imap's types to these, so that the engine,
// the index and the Maildir layer never see protocol types or sequence
// numbers.
package mail

import (
	"slices"
	"sort"
	"strings"
	gosync "sync"
	"time"
	"unicode"
)

// UID is an IMAP message UID (RFC 9051 §2.3.1.1). Zero is never a valid UID.
type UID uint32

// UIDValidity is a mailbox's UIDVALIDITY. A UID only names a message
// together with the UIDVALIDITY it was issued under.
type UIDValidity uint32

// ModSeq is a CONDSTORE modification sequence (RFC 7162 §3). Zero means
// "unknown": the server has no CONDSTORE, or reported NOMODSEQ.
type ModSeq uint64

// System flags as IMAP spells them (RFC 9051 §2.3.2), plus the $Forwarded
// keyword, which Maildir can store (as "P").
const (
	FlagSeen      = `\Seen`
	FlagAnswered  = `\Answered`
	FlagFlagged   = `\Flagged`
	FlagDeleted   = `\Deleted`
	FlagDraft     = `\Draft`
	FlagForwarded = `$Forwarded`
	// FlagRecent is session state, never synced (RFC 3501 §2.3.2).
	FlagRecent = `\Recent`
)

var systemFlags = map[string]string{
	`\seen`:      FlagSeen,
	`\answered`:  FlagAnswered,
	`\flagged`:   FlagFlagged,
	`\deleted`:   FlagDeleted,
	`\draft`:     FlagDraft,
	`$forwarded`: FlagForwarded,
}

// Flags is a set of IMAP flags: system flags (canonical case) and keywords.
// The zero value is an empty set. Flags values are immutable once built:
// methods that change the set return a new one.
//
// A set is a pointer to a sorted slice, and equal sets share one: an
// account of 100,000 messages holds a handful of distinct flag sets, so
// its flags cost one word per message.
type Flags struct {
	set *flagSet // nil: the empty set
}

// flagSet is one distinct set of flags, shared by every Flags that holds
// it: never written once made.
type flagSet struct {
	list []string // sorted, distinct, canonical
	str  string   // list joined by spaces: String and the interning key
}

// l returns the flags of s, sorted.
func (s Flags) l() []string {
	if s.set == nil {
		return nil
	}
	return s.set.list
}

// canonical returns the canonical spelling of a flag: system flags are
// case-insensitive in IMAP and get their standard case; keywords are kept
// as they are (RFC 9051 §2.3.2: keywords are case-insensitive too, but
// servers echo them as stored, and satchel never changes a server's
// spelling).
func canonical(f string) string {
	if c, ok := systemFlags[strings.ToLower(f)]; ok {
		return c
	}
	return f
}

// interned holds one *flagSet per distinct flag set, keyed by its String.
var interned gosync.Map

// NewFlags returns the set of the given flags, without \Recent.
func NewFlags(flags ...string) Flags {
	l := make([]string, 0, len(flags))
	for _, f := range flags {
		if f == "" || strings.EqualFold(f, FlagRecent) {
			continue
		}
		l = append(l, canonical(f))
	}
	return fromList(l)
}

// fromList makes a set of canonical flags, which it may reorder.
func fromList(l []string) Flags {
	if len(l) == 0 {
		return Flags{}
	}
	sort.Strings(l)
	l = slices.Compact(l)
	key := strings.Join(l, " ")
	if v, ok := interned.Load(key); ok {
		return Flags{set: v.(*flagSet)}
	}
	v, _ := interned.LoadOrStore(key, &flagSet{list: slices.Clip(l), str: key})
	return Flags{set: v.(*flagSet)}
}

// ParseFlags reads the form String writes.
func ParseFlags(s string) Flags {
	if s == "" {
		return Flags{}
	}
	// The index stores the canonical form: a set seen before is found
	// without splitting s again, unless s has spaces other than ' ',
	// which Fields would split at too.
	if strings.IndexFunc(s, func(r rune) bool { return r != ' ' && unicode.IsSpace(r) }) < 0 {
		if v, ok := interned.Load(s); ok {
			return Flags{set: v.(*flagSet)}
		}
	}
	return NewFlags(strings.Fields(s)...)
}

// Has reports whether f is in the set.
func (s Flags) Has(f string) bool {
	_, ok := slices.BinarySearch(s.l(), canonical(f))
	return ok
}

// Len is the number of flags in the set.
func (s Flags) Len() int { return len(s.l()) }

// List returns the flags in canonical order: sorted by byte value.
func (s Flags) List() []string { return slices.Clone(s.l()) }

// String is the canonical, space-separated form, as stored in the index.
func (s Flags) String() string {
	if s.set == nil {
		return ""
	}
	return s.set.str
}

// Equal reports whether both sets hold the same flags.
func (s Flags) Equal(o Flags) bool { return s.set == o.set || slices.Equal(s.l(), o.l()) }

// With returns the set with f added or removed.
func (s Flags) With(f string, on bool) Flags {
	f = canonical(f)
	if s.Has(f) == on || f == "" || strings.EqualFold(f, FlagRecent) {
		return s
	}
	if on {
		return fromList(append(slices.Clone(s.l()), f))
	}
	return fromList(slices.DeleteFunc(slices.Clone(s.l()), func(x string) bool { return x == f }))
}

// Union returns the flags in s or o.
func (s Flags) Union(o Flags) Flags {
	if len(o.l()) == 0 {
		return s
	}
	if len(s.l()) == 0 {
		return o
	}
	return fromList(append(slices.Clone(s.l()), o.l()...))
}

// Minus returns the flags in s that are not in o.
func (s Flags) Minus(o Flags) Flags {
	return s.keep(func(f string) bool { return !o.Has(f) })
}

// System returns the flags a Maildir file name can carry (IsSystem).
func (s Flags) System() Flags { return s.keep(IsSystem) }

// Keywords returns the other flags, which live only in the index and on
// the server.
func (s Flags) Keywords() Flags {
	return s.keep(func(f string) bool { return !IsSystem(f) })
}

func (s Flags) keep(pred func(string) bool) Flags {
	var l []string
	for _, f := range s.l() {
		if pred(f) {
			l = append(l, f)
		}
	}
	if len(l) == len(s.l()) {
		return s
	}
	return fromList(l)
}

// IsSystem reports whether f is one of the flags a Maildir file name can
// carry. Other keywords live only in the index and on the server.
func IsSystem(f string) bool {
	_, ok := systemFlags[strings.ToLower(f)]
	return ok
}

// SyncMode is how the changes of a mailbox are learned from the server.
type SyncMode string

const (
	// ModeQResync: RFC 7162 QRESYNC, the server sends the whole delta.
	ModeQResync SyncMode = "qresync"
	// ModeCondStore: RFC 7162 CONDSTORE, changed flags by MODSEQ,
	// expunges found by UID search when the message count says so.
	ModeCondStore SyncMode = "condstore"
	// ModeFull: a UID and FLAGS scan of every message.
	ModeFull SyncMode = "full"
)

// RemoteMailbox is one entry of the server's mailbox list.
type RemoteMailbox struct {
	// Name is the mailbox name, decoded from modified UTF-7 to UTF-8.
	Name string
	// Delim is the hierarchy delimiter, 0 when the server has none.
	Delim rune
	// NoSelect is true for \Noselect and \NonExistent entries: a level of
	// the hierarchy that holds no messages.
	NoSelect bool
	// Attrs are the mailbox's attributes as LIST returned them, among
	// them its special use (RFC 6154 §2: \Sent, \Drafts, \Trash, \Junk,
	// \Archive, \All, \Flagged), in the RFC's case.
	Attrs []string
	// Status, when the listing carried it (LIST-STATUS, or STATUS), is
	// the mailbox's state without selecting it: UIDVALIDITY, UIDNEXT,
	// MESSAGES and HIGHESTMODSEQ. PermanentFlags are not known from it.
	Status *MailboxStatus
}

// HasAttr reports whether the mailbox has the attribute, in any case
// (RFC 9051 §7.3.1: attributes are case-insensitive).
func (m RemoteMailbox) HasAttr(attr string) bool {
	for _, a := range m.Attrs {
		if strings.EqualFold(a, attr) {
			return true
		}
	}
	return false
}

// Path splits the name into its hierarchy levels.
func (m RemoteMailbox) Path() []string {
	if m.Delim == 0 {
		return []string{m.Name}
	}
	return strings.Split(m.Name, string(m.Delim))
}

// MailboxStatus is what the server reports when a mailbox is selected.
type MailboxStatus struct {
	UIDValidity   UIDValidity
	UIDNext       UID
	HighestModSeq ModSeq // 0 without CONDSTORE or with NOMODSEQ
	Messages      uint32
	// PermanentFlags lists the flags the server stores; CanCreateKeywords
	// is true when it also lists \*.
	PermanentFlags    Flags
	CanCreateKeywords bool
	// MailboxID is the mailbox's MAILBOXID (RFC 8474 §4), "" where the
	// server has no OBJECTID. Unlike the name and UIDVALIDITY, it is
	// kept across RENAME by definition (RFC 8474 §4.1).
	MailboxID string
}

// Namespace is one namespace of RFC 2342: the prefix its mailbox names
// start with ("INBOX.", "" or "Other Users/") and its hierarchy
// delimiter (0: none).
type Namespace struct {
	Prefix string
	Delim  rune
}

// Namespaces is what NAMESPACE reports (RFC 2342 §5): the user's own
// mailboxes, other users', and shared ones. Known is false where the
// server has no NAMESPACE.
type Namespaces struct {
	Known                   bool
	Personal, Other, Shared []Namespace
}

// RemoteMessage is what satchel knows of a message on the server.
type RemoteMessage struct {
	UID          UID
	Flags        Flags
	ModSeq       ModSeq
	Size         int64 // RFC822.SIZE, in the server's CRLF form
	InternalDate time.Time
	// MessageID is filled only by the calls that ask for it.
	MessageID string
}

// FlagChange is one message's flag update on the server. A non-zero
// UnchangedSince makes it conditional (RFC 7162 §3.1.3): the server
// refuses it if the message changed since that MODSEQ.
type FlagChange struct {
	UID            UID
	Add, Remove    Flags
	UnchangedSince ModSeq
}
