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
}
