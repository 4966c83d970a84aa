package sync

import (
	"context"
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
	if opts.Namespaces != nil || opts.Prefix != nil {
		r.names = namingFrom(ptrOr(opts.Namespaces), opts.Prefix, listDelim(list))
		r.names.full = opts.FullNames
	}
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

func ptrOr[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// FullFolderNames reports whether an index keeps whole server names in
// folder names (it was made before satchel left the personal namespace's
// prefix out; see namespace.go): as recorded, or, where nothing is
// recorded yet, whether it knows any mailbox.
func FullFolderNames(ctx context.Context, ix interface {
	Meta(ctx context.Context, key string) (string, bool, error)
	Mailboxes(ctx context.Context) ([]mail.Mailbox, error)
}) (bool, error) {
	mode, ok, err := ix.Meta(ctx, metaFolderNames)
	if err != nil || ok {
		return mode == folderNamesFull, err
	}
	mbs, err := ix.Mailboxes(ctx)
	return len(mbs) > 0, err
}

// MailboxOfFolder is the mailbox a sync with opts makes of a local
// folder's levels: under the personal namespace (opts.Namespaces,
// opts.Prefix, opts.FullNames; see namespace.go), levels joined with
// delim. A folder the server cannot take as it is named fails with
// ErrFolderName.
func MailboxOfFolder(levels []string, delim rune, opts Options) (string, error) {
	n := namingFrom(ptrOr(opts.Namespaces), opts.Prefix, delim)
	n.full = opts.FullNames
	return n.remoteName(levels, delim)
}

// SameMailbox reports whether two mailbox names name the same mailbox:
// equal, or both INBOX in any case (RFC 9051 §5.1).
func SameMailbox(a, b string) bool { return sameMailbox(a, b) }

// CanonMailbox is a mailbox name as a key: INBOX in any case is INBOX
// (RFC 9051 §5.1).
func CanonMailbox(name string) string { return canonMailbox(name) }
