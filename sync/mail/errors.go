package mail

import "errors"

// Errors that the IMAP adapter returns and the engine branches on.
var (
	// ErrNoMove: the server has no MOVE (RFC 6851); nothing was sent.
	ErrNoMove = errors.New("the server has no MOVE")
	// ErrExpungeDeferred: the messages were flagged \Deleted but not
	// expunged, because the server has no UIDPLUS and a plain EXPUNGE
	// would also remove other messages flagged \Deleted.
	ErrExpungeDeferred = errors.New(`left flagged \Deleted: other messages in the mailbox are flagged \Deleted and the server has no UIDPLUS`)
	// ErrTransient marks (through errors.Is) a failure that a new
	// connection may not meet: the connection was reset or closed, the
	// server stopped answering, greeted with BYE, or said [UNAVAILABLE]
	// (RFC 5530). A refusal of the credentials or of a command is never
	// transient.
	ErrTransient = errors.New("transient failure")
	// ErrNoMailbox: the server says the mailbox does not exist
	// ([NONEXISTENT], RFC 5530 §3).
	ErrNoMailbox = errors.New("no such mailbox on the server")
)
