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
	// StateHeld: a deletion held back by a safety guard.
	StateHeld State = "held"
)

// OnServer reports whether a message in this state exists on the server.
func (s State) OnServer() bool { return s != StateLocalOnly }

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
