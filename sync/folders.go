package sync

import (
	"context"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
)

// LocalFolder is a folder found below the Maildir root, with the levels
// of the mailbox name its path decodes to.
type LocalFolder struct {
	Rel    string
	Levels []string
}

// createLocalFolders creates on the server, with CREATE and SUBSCRIBE
// (RFC 9051 §6.3.4, §6.3.7), the mailboxes of local folders that the
// server does not list and the index does not know: folders the user
// made. Folders the configuration leaves out (include, exclude, a name
// mailboxes.map gives another mailbox) are left alone. It returns the new
// mailboxes' entries, to be synced in this run (their files are then
// uploaded). A dry run, push-less direction or a selection by name
// creates nothing.
func (r *runner) createLocalFolders(ctx context.Context, remote Remote, list []mail.RemoteMailbox, entries []mailboxEntry) ([]mailboxEntry, error) {
	if r.deps.LocalFolders == nil || r.opts.DryRun || !r.opts.pushes() || len(r.opts.Only) > 0 {
		return nil, nil
	}
	folders, err := r.deps.LocalFolders()
	if err != nil {
		return nil, err
	}
	known, err := r.deps.Index.Mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	taken := r.takenFolders(list, entries, known)
	var delim rune
	for _, m := range list {
		if m.Delim != 0 {
			delim = m.Delim
			break
		}
	}
	var out []mailboxEntry
	for _, f := range folders {
		if taken[strings.ToLower(f.Rel)] {
			continue
		}
		if len(f.Levels) > 1 && delim == 0 || slices.ContainsFunc(f.Levels, func(l string) bool { return delim != 0 && strings.ContainsRune(l, delim) }) {
			r.log.Warn("local folder cannot be a mailbox on this server: its name holds the hierarchy delimiter", "folder", f.Rel)
			continue
		}
		m := mail.RemoteMailbox{Name: strings.Join(f.Levels, string(delim)), Delim: delim}
		if !matchAny(mustGlobs(r.opts.Include), m) || matchAny(mustGlobs(r.opts.Exclude), m) {
			continue
		}
		if err := remote.Create(ctx, m.Name); err != nil {
			return out, err
		}
		if err := remote.Subscribe(ctx, m.Name); err != nil {
			return out, err
		}
		r.log.Info("created mailbox on the server for a local folder", "mailbox", m.Name, "folder", f.Rel)
		taken[strings.ToLower(f.Rel)] = true
		out = append(out, mailboxEntry{RemoteMailbox: m, rel: f.Rel, created: true})
	}
	return out, nil
}

// mustGlobs wraps patterns already checked by selectMailboxes.
func mustGlobs(pats []string) []glob {
	gs, err := compileGlobs(pats)
	if err != nil {
		return nil
	}
	return gs
}
