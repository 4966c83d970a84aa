package sync

import (
	"context"
	"fmt"
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
// made, under the personal namespace (see namespace.go). Folders the
// configuration leaves out (include, exclude, a name mailboxes.map gives
// another mailbox) are left alone. It returns the new mailboxes' entries,
// to be synced in this run (their files are then uploaded), and the
// results of the folders that cannot be created: a refused CREATE, a name
// the server cannot take, a mailbox another folder syncs with already.
// Each fails alone, and none is recorded in the index, so the next run
// tries again. The folders and the index's mailboxes are lifecycle's view
// (v); without one (no folder listing, a selection by name), as in a dry
// run or a push-less direction, nothing is created.
func (r *runner) createLocalFolders(ctx context.Context, remote Remote, list []mail.RemoteMailbox, entries []mailboxEntry, v *folderView) ([]mailboxEntry, []*MailboxResult) {
	if v == nil || r.opts.DryRun || !r.opts.pushes() {
		return nil, nil
	}
	taken := r.takenFolders(list, entries, v.all)
	delim := listDelim(list)
	// The folder each existing mailbox syncs with, by canonical name.
	folderOfName := map[string]string{}
	for _, mb := range v.all {
		folderOfName[canonMailbox(mb.Name)] = mb.LocalPath
	}
	for _, m := range list {
		if rel, err := r.folderOf(m); err == nil {
			folderOfName[canonMailbox(m.Name)] = rel
		}
	}
	type want struct {
		f    LocalFolder
		name string
	}
	var wants []want
	var failed []*MailboxResult
	fail := func(name, rel string, err error) {
		r.log.Error("local folder not created on the server", "folder", rel, "mailbox", name, "err", err)
		failed = append(failed, &MailboxResult{Name: name, Local: rel, Err: err})
	}
	byName := map[string][]string{}
	for _, f := range v.folders {
		if taken[strings.ToLower(f.Rel)] || v.held[strings.ToLower(f.Rel)] {
			continue
		}
		name, err := r.names.remoteName(f.Levels, delim)
		if err == nil {
			// The mailbox must come back to this folder, or the next
			// run takes the folder for another's (INBOX/Todo is
			// INBOX.Todo where the prefix is INBOX., whose folder is
			// Todo).
			if rel, ferr := r.folderOf(mail.RemoteMailbox{Name: name, Delim: delim}); ferr == nil && !strings.EqualFold(rel, f.Rel) {
				err = fmt.Errorf("%w: it would be mailbox %q, whose folder is %s; move it there", ErrFolderName, name, rel)
			}
		}
		if err != nil {
			fail(name, f.Rel, fmt.Errorf("folder %s: %w", f.Rel, err))
			continue
		}
		m := mail.RemoteMailbox{Name: name, Delim: delim}
		if !matchAny(mustGlobs(r.opts.Include), m) || matchAny(mustGlobs(r.opts.Exclude), m) {
			continue
		}
		if other, ok := folderOfName[canonMailbox(name)]; ok {
			fail(name, f.Rel, fmt.Errorf("%w: folder %s and folder %s both map to mailbox %q, which syncs with %s; rename or remove folder %s", ErrNameCollision, f.Rel, other, name, other, f.Rel))
			continue
		}
		byName[canonMailbox(name)] = append(byName[canonMailbox(name)], f.Rel)
		wants = append(wants, want{f, name})
	}
	var out []mailboxEntry
	for _, w := range wants {
		if rels := byName[canonMailbox(w.name)]; len(rels) > 1 {
			fail(w.name, w.f.Rel, fmt.Errorf("%w: folders %s all map to mailbox %q; rename all but one", ErrNameCollision, strings.Join(rels, ", "), w.name))
			continue
		}
		if err := createSubscribed(ctx, remote, w.name); err != nil {
			if ctx.Err() != nil {
				break
			}
			fail(w.name, w.f.Rel, err)
			continue
		}
		r.log.Info("created mailbox on the server for a local folder", "mailbox", w.name, "folder", w.f.Rel)
		taken[strings.ToLower(w.f.Rel)] = true
		out = append(out, mailboxEntry{RemoteMailbox: mail.RemoteMailbox{Name: w.name, Delim: delim}, rel: w.f.Rel, created: true})
	}
	return out, failed
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
