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
)
