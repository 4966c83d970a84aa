package mail

import "time"

// Mailbox is what the index keeps of one mailbox.
type Mailbox struct {
	ID            int64
	Name          string // remote name, UTF-8
	LocalPath     string // relative to the Maildir root, "/"-separated
	UIDValidity   UIDValidity
	UIDNext       UID
	HighestModSeq ModSeq
	Messages      uint32 // the server's message count at the last sync
	Mode          SyncMode
	LastSync      time.Time // zero: never synced
	// LocalStamp identifies the state of the local folder when both
	// sides were last known to agree ("" when unknown).
	LocalStamp string
	// MailboxID is the server's MAILBOXID for the mailbox (RFC 8474),
	// "" where the server has none or it is not known yet.
	MailboxID string
}

// Message is what the index keeps of one synced message: the state both
// sides agreed on at the last sync (the base of three-way merges).
type Message struct {
	UIDValidity  UIDValidity
	UID          UID
	Key          string // Maildir key: the file name before ":2,"
	Flags        Flags  // last synced flags, keywords included
	ModSeq       ModSeq
	Size         int64 // RFC822.SIZE
	InternalDate time.Time
	MessageID    string
	State        State
	// LocalOnlyFlags are flags set locally that the server cannot store
	// (not in its PERMANENTFLAGS): part of the local base only, so they
	// are neither sent again nor taken as removed on the server.
	LocalOnlyFlags Flags
	// GmailID is Gmail's X-GM-MSGID, 0 where unknown. Writing a row with
	// 0 keeps the one recorded: only the rows of downloads set it.
	GmailID uint64
}

// GmailCopy is a recorded message with a local file and a given
// X-GM-MSGID.
type GmailCopy struct {
	MailboxID int64
	Row       Message
}

// State says which side holds a message the index knows, and why.
type State string

const (
	// StateSynced: on both sides.
	StateSynced State = ""
	// StateLocalOnly: kept in the Maildir though expunged on the server,
	// because sync.expunge does not let the local side lose messages. It
	// is never uploaded again.
	StateLocalOnly State = "local-only"
	// StateRemoteOnly: kept on the server though deleted locally (by
	// sync.expunge, or direction: pull). It is never downloaded again.
	StateRemoteOnly State = "remote-only"
	// StateSkipped: on the server, not downloaded because of a limit
	// (since, max_size, max_messages).
	StateSkipped State = "skipped"
	// StateHeld: expunged on the server, its local file kept because a
	// safety guard (sync.max_delete) held back the removal. Every run
	// decides the removal again, as for a synced message the server
	// expunged; the file is never uploaded as new mail.
	StateHeld State = "held"
)

// OnServer reports whether a message in this state exists on the server.
func (s State) OnServer() bool { return s != StateLocalOnly && s != StateHeld }

// OnLocal reports whether a message in this state has a local file.
func (s State) OnLocal() bool { return s == StateSynced || s == StateLocalOnly || s == StateHeld }

// LocalInfo describes a local message as the server would see it.
type LocalInfo struct {
	MessageID  string
	Size       int64    // with CRLF line endings: RFC822.SIZE once uploaded
	HeaderHash [32]byte // SHA-256 of the CRLF header, empty line included
	ModTime    time.Time
	Flags      Flags
}

// Intent kinds.
const (
	IntentDownload = "download"
	IntentUpload   = "upload"
	IntentMove     = "move"
	IntentAdopt    = "adopt"
)

// Intent is a step that changes two places, recorded before it starts so
// that the next run can complete or undo it after a crash.
type Intent struct {
	ID        int64
	MailboxID int64 // the mailbox the step's result belongs to
	Kind      string
	UID       UID    // the message's UID, when known
	Key       string // the local file's key
	// UIDNext, Size and HeaderHash say where and how to find a message an
	// upload or a move created on the server: at or above the target's
	// UIDNEXT from before the step, with this size and header.
	UIDNext    UID
	Size       int64
	HeaderHash [32]byte
	// Row is the index row the step will record.
	Row Message
	// From names the row the step replaces, removed when it completes:
	// the source of a move or an adoption, or the expunged message an
	// upload restores. From is 0 for none.
	From            int64
	FromUIDValidity UIDValidity
	FromUID         UID
	// FromFolder is the folder an adoption moves the file out of: after
	// a crash a stale copy may be left there, which recovery removes.
	FromFolder string
}

// RowChange is one index row to write or delete when an intent completes.
type RowChange struct {
	MailboxID int64
	Row       Message
	Delete    bool // delete Row.UIDValidity/Row.UID instead of writing Row
}

// GmailLabeled is one message's X-GM-LABELS, as read from Gmail.
type GmailLabeled struct {
	UID    UID
	MsgID  uint64 // X-GM-MSGID
	ModSeq ModSeq // 0 when not read
	Labels []string
	// Flags, when HasFlags, are the message's flags read with them.
	Flags    Flags
	HasFlags bool
}
