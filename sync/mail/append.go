package mail

import (
	"io"
	"time"
)

// Outgoing is a message to append: its flags, INTERNALDATE and exact
// size, and its body (CRLF line endings), opened when it is sent.
type Outgoing struct {
	Flags Flags
	Date  time.Time
	Size  int64
	Open  func() (io.ReadCloser, error)
}

// Appended is what became of an Outgoing message. Done: the server took
// it; UIDValidity and UID are from APPENDUID, zero when the server does
// not say. Err: it was not appended (the server refused it, or its body
// could not be read). Neither: the connection failed before the server
// answered, and whether it took the message is not known.
type Appended struct {
	UIDValidity UIDValidity
	UID         UID
	Done        bool
	Err         error
}
