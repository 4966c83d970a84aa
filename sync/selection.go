package sync

import (
	"errors"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Selection is a listed mailbox that a sync with some Options covers,
// with its local folder or the reason it cannot have one.
type Selection struct {
	mail.RemoteMailbox
	// Local is the mailbox's folder, relative to the Maildir root.
	Local string
	// Err says why the mailbox has no folder (its name maps to a path
	// that is too long); that mailbox fails on its own.
	Err error
}

// SelectMailboxes decides, as Account does, which of a server's mailboxes
// a sync with opts covers (Include, Exclude, Only) and maps each to its
// folder with localPath, for commands that read an account without
// syncing it. It fails, as Account does, on two mailboxes that would share
// a folder (ErrNameCollision) and on a name in Only that the listing
// lacks. The result is sorted by name; \Noselect entries are kept, marked.
func SelectMailboxes(list []mail.RemoteMailbox, opts Options, localPath func(levels []string) (string, error)) ([]Selection, error) {
	r := &runner{opts: opts, deps: Deps{LocalPath: localPath}}
	entries, err := r.selectMailboxes(list)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if errors.Is(e.err, ErrNameCollision) {
			return nil, e.err
		}
	}
	out := make([]Selection, len(entries))
	for i, e := range entries {
		out[i] = Selection{RemoteMailbox: e.RemoteMailbox, Local: e.rel, Err: e.err}
	}
	return out, nil
}

// SameMailbox reports whether two mailbox names name the same mailbox:
// equal, or both INBOX in any case (RFC 9051 §5.1).
func SameMailbox(a, b string) bool { return sameMailbox(a, b) }

// CanonMailbox is a mailbox name as a key: INBOX in any case is INBOX
// (RFC 9051 §5.1).
func CanonMailbox(name string) string { return canonMailbox(name) }
