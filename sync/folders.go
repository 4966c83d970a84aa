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
// uploaded). The folders and the index's mailboxes are lifecycle's view
// (v); without one (no folder listing, a selection by name), as in a dry
// run or a push-less direction, nothing is created.
func (r *runner) createLocalFolders(ctx context.Context, remote Remote, list []mail.RemoteMailbox, entries []mailboxEntry, v *folderView) ([]mailboxEntry, error) {
	if v == nil || r.opts.DryRun || !r.opts.pushes() {
		return nil, nil
	}
	folders := v.folders
	taken := r.takenFolders(list, entries, v.all)
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
		if err := createSubscribed(ctx, remote, m.Name); err != nil {
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

// createSubscribed creates a mailbox on the server and subscribes to it
// (RFC 9051 §6.3.4, §6.3.7), so that mail readers that show subscribed
// mailboxes show it. Both steps may be repeated after a crash.
func createSubscribed(ctx context.Context, remote Remote, name string) error {
	if err := remote.Create(ctx, name); err != nil {
		return err
	}
	return remote.Subscribe(ctx, name)
}
