package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Folder names and namespaces (RFC 2342). A server may put the user's own
// mailboxes under a prefix: hosting panels set Dovecot up with "INBOX."
// and ".", Courier always has it, and so has Cyrus without altnamespace.
// The prefix is left out of local folder names and put back for the
// server, as mbsync does: INBOX.Archive is the folder Archive, and a
// folder Projekte made locally becomes INBOX.Projekte. INBOX stays INBOX.
//
// A name belongs to the namespace with the longest prefix it starts with
// (Cyrus without altnamespace has personal "INBOX." and shared ""). Other
// users' and shared mailboxes are synced only when an include pattern
// names them (see named), never through a pattern that starts with a
// wildcard.
//
// An index made before satchel left prefixes out keeps its folders where
// they are (folderNamesFull) until `satchel migrate-folders` moves them:
// mail readers' paths change with it.

// ErrFolderName: a local folder cannot be a mailbox on this server as it
// is named (a level holds the server's hierarchy delimiter, the index keeps
// prefixed names), or two names meet in one folder or one mailbox.
var ErrFolderName = errors.New("folder cannot be a mailbox on this server")

// The index's meta key for how folder names are made, and its values.
const (
	metaFolderNames = "folder_names"
	// folderNamesPersonal: the personal namespace's prefix is left out.
	folderNamesPersonal = "personal"
	// folderNamesFull: folders carry the whole server name (an index
	// made before prefixes were left out).
	folderNamesFull = "full"
)

// naming translates between server mailbox names and local folder levels.
type naming struct {
	personal mail.Namespace
	// full: folder names keep the personal prefix (see folderNamesFull).
	full bool
	// foreign are other users' and shared namespaces.
	foreign []mail.Namespace
}

// loadNaming reads the namespaces (Options.Prefix overrides the
// personal one; a server without NAMESPACE has none) and the index's way
// of naming folders, recording it for a new index. delim is the
// listing's delimiter, for a prefix given without a NAMESPACE answer.
func (r *runner) loadNaming(ctx context.Context, remote Remote, delim rune) error {
	ns, err := remote.Namespaces(ctx)
	if err != nil {
		return err
	}
	r.names = namingFrom(ns, r.opts.Prefix, delim)
	_, recorded, err := r.deps.Index.Meta(ctx, metaFolderNames)
	if err != nil {
		return err
	}
	if r.names.full, err = FullFolderNames(ctx, r.deps.Index); err != nil {
		return err
	}
	if !recorded && !r.opts.DryRun {
		mode := folderNamesPersonal
		if r.names.full {
			mode = folderNamesFull
		}
		if err := r.deps.Index.SetMeta(ctx, metaFolderNames, mode); err != nil {
			return err
		}
	}
	if r.names.full && r.names.personal.Prefix != "" {
		r.log.Warn("folder names keep the server's namespace prefix, as this index was made; satchel migrate-folders leaves it out", "prefix", r.names.personal.Prefix)
	}
	return nil
}

// namingFrom builds a naming from NAMESPACE's answer; prefix, when set,
// replaces the personal namespace's prefix.
func namingFrom(ns mail.Namespaces, prefix *string, delim rune) *naming {
	n := &naming{personal: mail.Namespace{Delim: delim}}
	if len(ns.Personal) > 0 {
		n.personal = ns.Personal[0]
		if n.personal.Delim == 0 {
			n.personal.Delim = delim
		}
	}
	if prefix != nil {
		n.personal.Prefix = *prefix
	}
	n.foreign = append(slices.Clone(ns.Other), ns.Shared...)
	return n
}

// canonPrefix writes a name's leading INBOX level in upper case, the
// only part of a name that is case-insensitive (RFC 9051 §5.1).
func canonPrefix(name string) string {
	if len(name) >= 5 && strings.EqualFold(name[:5], "INBOX") && (len(name) == 5 || !isNameChar(name[5])) {
		return "INBOX" + name[5:]
	}
	return name
}

// isNameChar reports whether c continues a level name rather than
// separating levels: letters, digits and the like.
func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c >= 0x80
}

// isForeign reports whether a name belongs to another user's or a shared
// namespace: its longest matching prefix is one of theirs.
func (n *naming) isForeign(name string) bool {
	if n == nil || canonMailbox(name) == "INBOX" {
		return false
	}
	c := canonPrefix(name)
	best, foreign := -1, false
	if strings.HasPrefix(c, canonPrefix(n.personal.Prefix)) {
		best = len(n.personal.Prefix)
	}
	for _, ns := range n.foreign {
		if strings.HasPrefix(c, canonPrefix(ns.Prefix)) && len(ns.Prefix) > best {
			best, foreign = len(ns.Prefix), true
		}
	}
	return foreign
}

// levels are the folder levels of a listed mailbox: INBOX as one, the
// personal prefix left out (unless the index keeps full names).
func (n *naming) levels(m mail.RemoteMailbox) []string {
	if m.Name == "INBOX" {
		return []string{"INBOX"}
	}
	if n != nil && !n.full && n.personal.Prefix != "" && !n.isForeign(m.Name) {
		c, p := canonPrefix(m.Name), canonPrefix(n.personal.Prefix)
		if rest, ok := strings.CutPrefix(c, p); ok && rest != "" {
			m.Name = rest
		}
	}
	return m.Path()
}

// remoteName is the server name of a folder's levels: under the personal
// namespace, levels joined with its delimiter. A folder whose first level
// is INBOX is taken as already carrying an INBOX prefix.
func (n *naming) remoteName(levels []string, delim rune) (string, error) {
	if len(levels) == 1 && strings.EqualFold(levels[0], "INBOX") {
		return "INBOX", nil
	}
	prefix := ""
	if n != nil {
		prefix = n.personal.Prefix
		if n.personal.Delim != 0 {
			delim = n.personal.Delim
		}
	}
	if len(levels) > 1 && delim == 0 {
		return "", fmt.Errorf("%w: it has levels, and the server has no hierarchy", ErrFolderName)
	}
	for _, l := range levels {
		if delim != 0 && strings.ContainsRune(l, delim) {
			return "", fmt.Errorf("%w: %q holds the server's hierarchy delimiter %q", ErrFolderName, l, delim)
		}
	}
	name := strings.Join(levels, string(delim))
	underInbox := strings.EqualFold(levels[0], "INBOX") && strings.EqualFold(prefix, "INBOX"+string(delim))
	switch {
	case prefix == "", underInbox:
		return canonPrefix(name), nil
	case n.full:
		return "", fmt.Errorf("%w: this index keeps the namespace prefix %q in folder names, and the folder is outside it: make it below INBOX, or run satchel migrate-folders to leave the prefix out", ErrFolderName, prefix)
	}
	return prefix + name, nil
}

// named reports whether an include pattern names a mailbox of another
// user's or a shared namespace: it matches it and does not start with a
// wildcard, so "*" alone never syncs other people's mail.
func named(include []glob, m mail.RemoteMailbox) bool {
	for _, g := range include {
		if g.pattern == "" || strings.ContainsRune("*%?", rune(g.pattern[0])) {
			continue
		}
		if matchAny([]glob{g}, m) {
			return true
		}
	}
	return false
}

// migratedAlready reports whether an index that keeps full names has a
// mailbox in the folder a migration to prefix-free names gives it:
// satchel migrate-folders moved it, and was cut short.
func (r *runner) migratedAlready(m mail.RemoteMailbox, rel string) bool {
	if r.names == nil || !r.names.full || r.names.personal.Prefix == "" || r.opts.Map[m.Name] != "" {
		return false
	}
	personal := *r.names
	personal.full = false
	want, err := r.deps.LocalPath(personal.levels(m))
	return err == nil && want == rel
}
