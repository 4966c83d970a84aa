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
	// ErrOverQuota: the server refuses every command because the account
	// is over a limit of its own: Gmail's "[OVERQUOTA] Account exceeded
	// command or bandwidth limits" (about 2.5 GB downloaded a day), or
	// RFC 5530 §3's [OVERQUOTA]. Not transient: a new connection meets it
	// too, until the limit resets (for Gmail, within a day). The engine
	// stops the account.
	ErrOverQuota = errors.New("the account is over its quota or its bandwidth or command limit")
	// ErrTooManyConnections: the server refused a login because the
	// account has as many connections open as it allows (Gmail: "Too many
	// simultaneous connections", 15). Transient: a connection closing
	// makes room; the engine goes on with the ones it has.
	ErrTooManyConnections = errors.New("too many simultaneous connections")
	// ErrNoMailbox: the server says the mailbox does not exist
	// ([NONEXISTENT], RFC 5530 §3).
	ErrNoMailbox = errors.New("no such mailbox on the server")
)
