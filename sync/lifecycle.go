package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// A mailbox's life as a whole: the index knows a mailbox that one side no
// longer has. Before anything is learned, a run
//
//  1. follows renames. On the server, a listed mailbox new to the index
//     that a known mailbox gone from the listing became: the same
//     MAILBOXID, a path below a renamed mailbox, or the same messages
//     (see renames.go; neither the name nor UIDVALIDITY survives a
//     RENAME on every server). Its folder is moved. Locally, a new folder
//     that holds every file the index records for a known mailbox whose
//     folder is gone is that folder renamed: the mailbox is renamed on
//     the server (a refused RENAME changes nothing on either side), and
//     the mailboxes the server moved along with it keep their rows.
//     Either way the index keeps its rows and no message moves over the
//     network.
//  2. decides about deletions. A mailbox gone from the server (confirmed
//     by STATUS: a listing that missed it must not delete anything; one
//     whose mail a new mailbox holds is held back as likely renamed) or a
//     folder gone locally is, with Options.RemoveFolders false, re-created
//     on the deleting side with its mail. With RemoveFolders true the
//     messages the deleting side had are deleted on the other side as
//     individual deletions are (sync.expunge, sync.max_delete, the trash,
//     the conflict rules: a message changed meanwhile comes back); if
//     nothing is left there, the mailbox or folder is deleted too,
//     otherwise it is re-created on the deleting side with what is left.
//
// A mailbox gone from both sides is forgotten. INBOX is never deleted. A
// selection by name (Options.Only) leaves all of this to a full run.

// FolderChange is what a run found of a mailbox as a whole.
type FolderChange string

const (
	RenamedOnServer FolderChange = "renamed-on-server"
	RenamedLocally  FolderChange = "renamed-locally"
	DeletedOnServer FolderChange = "deleted-on-server"
	DeletedLocally  FolderChange = "deleted-locally"
	DeletedOnBoth   FolderChange = "deleted-on-both"
)

// FolderAction is what the run did about it.
type FolderAction string

const (
	// FolderRenamed: renamed on the other side too.
	FolderRenamed FolderAction = "renamed"
	// FolderRecreated: re-created on the deleting side, with its mail.
	FolderRecreated FolderAction = "re-created"
	// FolderDeleted: deleted on the other side too.
	FolderDeleted FolderAction = "deleted"
	// FolderKept: kept on the other side only (a direction that may not
	// change the deleting side).
	FolderKept FolderAction = "kept"
	// FolderHeld: a safety guard held the deletion back; nothing changed.
	FolderHeld FolderAction = "held"
	// FolderForgotten: gone from both sides; the index forgot it.
	FolderForgotten FolderAction = "forgotten"
	// FolderPlanned: decided only once the mailbox's messages are
	// synced, which this run did not do (a dry run, or a failure).
	FolderPlanned FolderAction = "planned"
)

// FolderEvent is what became of a mailbox as a whole.
type FolderEvent struct {
	Change FolderChange
	Action FolderAction
	// From is the mailbox's name before a rename.
	From string
	// Detail says what happened and why in a sentence.
	Detail string
}

func (e *FolderEvent) String() string { return e.Detail }

// folderView is what a run knows of both sides' mailboxes as a whole.
type folderView struct {
	// known holds the index's mailboxes the configuration covers:
	// UIDVALIDITY 0 marks one never synced, or reset to be re-created.
	known []mail.Mailbox
	all   []mail.Mailbox // every mailbox of the index
	list  []mail.RemoteMailbox
	// folders lists the Maildir's folders, by path; local indexes them.
	folders []LocalFolder
	byName  map[string]mail.Mailbox
	listed  map[string]mail.RemoteMailbox // selectable, by name
	entry   map[string]int                // index in entries, by name
	local   map[string]LocalFolder        // by lower-cased path
	delim   rune
	// held are folders (lower-cased) that must not become mailboxes in
	// this run: the new name of a folder whose RENAME was refused.
	held map[string]bool
}

func (r *runner) folderView(ctx context.Context, list []mail.RemoteMailbox, entries []mailboxEntry) (*folderView, error) {
	v := &folderView{list: list, byName: map[string]mail.Mailbox{}, listed: map[string]mail.RemoteMailbox{}, entry: map[string]int{},
		local: map[string]LocalFolder{}, held: map[string]bool{}}
	for _, m := range list {
		if m.Delim != 0 && v.delim == 0 {
			v.delim = m.Delim
		}
		if !m.NoSelect {
			v.listed[canonMailbox(m.Name)] = m
		}
	}
	for i, e := range entries {
		v.entry[canonMailbox(e.Name)] = i
	}
	var err error
	if v.folders, err = r.deps.LocalFolders(); err != nil {
		return nil, err
	}
	for _, f := range v.folders {
		v.local[strings.ToLower(f.Rel)] = f
	}
	all, err := r.deps.Index.Mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	v.all = all
	include, _ := compileGlobs(r.opts.Include)
	exclude, _ := compileGlobs(r.opts.Exclude)
	for _, mb := range all {
		v.byName[canonMailbox(mb.Name)] = mb
		if i, ok := v.entry[canonMailbox(mb.Name)]; ok {
			// Listed and selected: covered if the configuration still
			// places it where it was synced (learn explains otherwise).
			if entries[i].err == nil && entries[i].rel == mb.LocalPath {
				v.known = append(v.known, mb)
			}
			continue
		}
		if _, ok := v.listed[canonMailbox(mb.Name)]; ok {
			continue // listed, and excluded by the configuration
		}
		m := mail.RemoteMailbox{Name: mb.Name, Delim: v.delim}
		if !matchAny(include, m) || matchAny(exclude, m) || r.names.isForeign(mb.Name) && !named(include, m) {
			// Left out by the configuration (another user's or a shared
			// mailbox an earlier version synced among them): not this
			// run's to call deleted.
			continue
		}
		if rel, err := r.folderOf(m); err != nil || rel != mb.LocalPath {
			// Placed elsewhere now: the configuration changed, and what
			// became of the old folder is not this run's to decide.
			continue
		}
		v.known = append(v.known, mb)
	}
	return v, nil
}

func (v *folderView) onServer(mb mail.Mailbox) bool {
	_, ok := v.listed[canonMailbox(mb.Name)]
	return ok
}

func (v *folderView) onLocal(rel string) bool {
	_, ok := v.local[strings.ToLower(rel)]
	return ok
}

// lifecycle follows renames and deletions of whole mailboxes (see the
// comment at the top of this file). It returns the listing and entries
// to sync (re-read after renames), and the results of mailboxes it
// settled on its own.
//
// The view of both sides it returns (nil when it did nothing: no folder
// listing, or a selection by name) is the one createLocalFolders reads:
// the Maildir is walked once per run, or again after a rename.
func (r *runner) lifecycle(ctx context.Context, remote Remote, list []mail.RemoteMailbox, entries []mailboxEntry) ([]mail.RemoteMailbox, []mailboxEntry, []*MailboxResult, *folderView, error) {
	if r.deps.LocalFolders == nil || len(r.opts.Only) > 0 {
		return list, entries, nil, nil, nil
	}
	events := map[string]*FolderEvent{}
	var skip []string // dry run: names a rename would change
	// failed holds the mailboxes a refused RENAME leaves as they are, by
	// canonical name of both names: neither is deleted nor created.
	failed := map[string]*MailboxResult{}
	finder := &renameFinder{r: r, remote: remote, ids: map[string]map[identity]int{}, known: map[int64]map[identity]int{}}
	v, err := r.folderView(ctx, list, entries)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if err := r.recordMailboxIDs(ctx, v); err != nil {
		return nil, nil, nil, nil, err
	}
	for round := 1; ; round++ {
		n, s, err := r.followRenames(ctx, remote, finder, v, entries, events, failed)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		skip = append(skip, s...)
		if n == 0 || r.opts.DryRun {
			break
		}
		// The server renamed what was below a renamed mailbox too; the
		// next round sees those as renamed on the server.
		if list, err = remote.ListStatus(ctx); err != nil {
			return nil, nil, nil, nil, err
		}
		if entries, err = r.selectMailboxes(list); err != nil {
			return nil, nil, nil, nil, err
		}
		if v, err = r.folderView(ctx, list, entries); err != nil {
			return nil, nil, nil, nil, err
		}
		if err := r.loadOwners(ctx); err != nil {
			return nil, nil, nil, nil, err
		}
		if round == 3 {
			break
		}
	}
	entries, results, err := r.followDeletions(ctx, remote, finder, v, entries, failed)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if len(failed) > 0 {
		entries = slices.DeleteFunc(entries, func(e mailboxEntry) bool { return failed[canonMailbox(e.Name)] != nil })
		seen := map[*MailboxResult]bool{}
		for _, res := range failed {
			if !seen[res] {
				seen[res] = true
				results = append(results, res)
				v.held[strings.ToLower(res.Local)] = true
			}
		}
	}
	for i := range entries {
		if ev, ok := events[canonMailbox(entries[i].Name)]; ok {
			entries[i].event = ev
		}
	}
	if len(skip) > 0 {
		entries = slices.DeleteFunc(entries, func(e mailboxEntry) bool { return slices.Contains(skip, canonMailbox(e.Name)) })
		for _, name := range skip {
			if ev, ok := events[name]; ok {
				results = append(results, &MailboxResult{Name: name, Folder: ev})
			}
		}
	}
	return list, entries, results, v, nil
}

// recordMailboxIDs keeps, for each listed mailbox the index knows, the
// MAILBOXID the listing carries (RFC 8474), by which a later run knows
// it under a new name. Written only when it changed: once per mailbox.
func (r *runner) recordMailboxIDs(ctx context.Context, v *folderView) error {
	if r.opts.DryRun {
		return nil
	}
	var changed []mail.Mailbox
	for _, mb := range v.all {
		m, ok := v.listed[canonMailbox(mb.Name)]
		if ok && m.Status != nil && m.Status.MailboxID != "" && m.Status.MailboxID != mb.MailboxID && mb.UIDValidity != 0 {
			mb.MailboxID = m.Status.MailboxID
			changed = append(changed, mb)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	return r.deps.Index.SaveMailboxes(ctx, changed)
}

// followRenames renames on one side what was renamed on the other and
// reports how many it renamed; a dry run renames nothing and returns the
// names it would change instead.
func (r *runner) followRenames(ctx context.Context, remote Remote, f *renameFinder, v *folderView, entries []mailboxEntry, events map[string]*FolderEvent, failed map[string]*MailboxResult) (int, []string, error) {
	ix := r.deps.Index
	done := 0
	var skip []string
	used := map[string]bool{}
	if r.opts.pulls() {
		// Renamed on the server: see renames.go.
		pairs, err := r.serverRenames(ctx, f, v, entries, used)
		if err != nil {
			return done, skip, err
		}
		for _, mb := range v.known {
			to, ok := pairs[mb.Name]
			if !ok {
				continue
			}
			if v.onLocal(mb.LocalPath) && v.onLocal(to.rel) && !strings.EqualFold(mb.LocalPath, to.rel) {
				r.log.Warn("mailbox renamed on the server, but a folder is already where it goes: taken as deleted and created", "mailbox", mb.Name, "to", to.Name, "folder", to.rel)
				continue
			}
			used[to.Name] = true
			ev := &FolderEvent{Change: RenamedOnServer, Action: FolderRenamed, From: mb.Name,
				Detail: fmt.Sprintf("renamed on the server from %q; folder %s moved to %s", mb.Name, mb.LocalPath, to.rel)}
			events[canonMailbox(to.Name)] = ev
			if r.opts.DryRun {
				ev.Detail = fmt.Sprintf("renamed on the server from %q; a sync moves folder %s to %s", mb.Name, mb.LocalPath, to.rel)
				skip = append(skip, canonMailbox(to.Name))
				continue
			}
			if mb.LocalPath != to.rel && (v.onLocal(mb.LocalPath) || v.onLocal(to.rel)) {
				if err := r.deps.RenameFolder(mb.LocalPath, to.rel); err != nil {
					return done, skip, err
				}
			}
			if err := ix.RenameMailbox(ctx, mb.ID, to.Name, to.rel); err != nil {
				return done, skip, err
			}
			r.log.Info("mailbox renamed on the server; folder moved", "from", mb.Name, "to", to.Name, "folder", to.rel)
			done++
		}
	}
	if !r.opts.pushes() {
		return done, skip, nil
	}
	// Renamed locally: a new folder holding a vanished one's files.
	taken := r.takenFolders(v.list, entries, v.all)
	scans := map[string]map[string]mail.Flags{}
	var renamed [][2]string
	for _, mb := range v.known {
		if mb.UIDValidity == 0 || !v.onServer(mb) || v.onLocal(mb.LocalPath) || canonMailbox(mb.Name) == "INBOX" {
			continue
		}
		keys, err := r.localKeys(ctx, mb)
		if err != nil {
			return done, skip, err
		}
		if len(keys) == 0 {
			continue
		}
		var cands []LocalFolder
		for _, f := range v.local {
			if taken[strings.ToLower(f.Rel)] || used[f.Rel] {
				continue
			}
			files, ok := scans[f.Rel]
			if !ok {
				if files, err = r.deps.Folder(f.Rel).ScanShared(nil); err != nil {
					return done, skip, err
				}
				scans[f.Rel] = files
			}
			if !slices.ContainsFunc(keys, func(k string) bool { _, ok := files[k]; return !ok }) {
				cands = append(cands, f)
			}
		}
		if len(cands) != 1 {
			continue
		}
		f := cands[0]
		name, err := r.names.remoteName(f.Levels, v.delim)
		if err != nil {
			continue // created (or refused) as a new folder
		}
		to := mail.RemoteMailbox{Name: name, Delim: v.delim}
		if !matchAny(mustGlobs(r.opts.Include), to) || matchAny(mustGlobs(r.opts.Exclude), to) {
			continue
		}
		if slices.ContainsFunc(renamed, func(rn [2]string) bool { return v.delim != 0 && strings.HasPrefix(mb.Name, rn[0]+string(v.delim)) }) {
			// Below a mailbox renamed in this round: RENAME took it
			// along (RFC 9051 §6.3.6) or not, depending on the server;
			// the next round, on a fresh listing, tells.
			continue
		}
		used[f.Rel] = true
		ev := &FolderEvent{Change: RenamedLocally, Action: FolderRenamed, From: mb.Name,
			Detail: fmt.Sprintf("folder renamed locally from %s to %s; mailbox %q renamed to %q on the server", mb.LocalPath, f.Rel, mb.Name, to.Name)}
		events[canonMailbox(to.Name)] = ev
		if r.opts.DryRun {
			ev.Detail = fmt.Sprintf("folder renamed locally from %s to %s; a sync renames mailbox %q to %q on the server", mb.LocalPath, f.Rel, mb.Name, to.Name)
			skip = append(skip, canonMailbox(to.Name), canonMailbox(mb.Name))
			continue
		}
		if err := remote.Rename(ctx, mb.Name, to.Name); err != nil {
			if ctx.Err() != nil {
				return done, skip, err
			}
			// Refused: both names stay as they are for this run, and
			// nothing is deleted or created for either.
			ev.Action = FolderKept
			ev.Detail = fmt.Sprintf("folder renamed locally from %s to %s; the server refused to rename mailbox %q to %q: nothing changed", mb.LocalPath, f.Rel, mb.Name, to.Name)
			res := &MailboxResult{Name: mb.Name, Local: f.Rel, Folder: ev, Err: err}
			failed[canonMailbox(mb.Name)], failed[canonMailbox(to.Name)] = res, res
			r.log.Error("mailbox not renamed on the server", "from", mb.Name, "to", to.Name, "err", err)
			continue
		}
		renamed = append(renamed, [2]string{mb.Name, to.Name})
		if err := ix.RenameMailbox(ctx, mb.ID, to.Name, f.Rel); err != nil {
			return done, skip, err
		}
		r.log.Info("folder renamed locally; mailbox renamed on the server", "from", mb.Name, "to", to.Name, "folder", f.Rel)
		done++
		n, err := r.followInferiors(ctx, remote, v, mb, to.Name, f.Rel, events)
		if err != nil {
			return done, skip, err
		}
		done += n
	}
	return done, skip, nil
}

// followInferiors keeps the index's mailboxes below one satchel renamed
// on the server (from → to) with the mailboxes the server moved along:
// RFC 9051 §6.3.6 has RENAME rename the inferiors too, though not every
// server does (go-imap's memory server keeps them). Left to the next
// round, a moved inferior would be a mailbox gone from the server whose
// folder is gone too (it moved with its parent's), and be forgotten with
// its rows, though nothing of it was deleted. One the server kept where
// it was is left alone; its folder, if it moved, is a local rename the
// next round finds. Each is asked for by STATUS under both names.
func (r *runner) followInferiors(ctx context.Context, remote Remote, v *folderView, from mail.Mailbox, to, toRel string, events map[string]*FolderEvent) (int, error) {
	if v.delim == 0 {
		return 0, nil
	}
	done := 0
	for _, mb := range v.known {
		rest, ok := strings.CutPrefix(mb.Name, from.Name+string(v.delim))
		if !ok || mb.UIDValidity == 0 {
			continue
		}
		name := to + string(v.delim) + rest
		if _, err := remote.Status(ctx, mb.Name); err == nil || !errors.Is(err, mail.ErrNoMailbox) {
			if ctx.Err() != nil {
				return done, ctx.Err()
			}
			continue // kept by the server, or not known: the next round sees
		}
		if _, err := remote.Status(ctx, name); err != nil {
			if ctx.Err() != nil {
				return done, ctx.Err()
			}
			continue
		}
		rel, err := r.folderOf(mail.RemoteMailbox{Name: name, Delim: v.delim})
		if err != nil {
			continue
		}
		if mb.LocalPath != rel && v.onLocal(mb.LocalPath) && !v.onLocal(rel) {
			// Its folder stayed where it was (a flat layout, where each
			// folder moves on its own): it follows the mailbox.
			if err := r.deps.RenameFolder(mb.LocalPath, rel); err != nil {
				return done, err
			}
		}
		if err := r.deps.Index.RenameMailbox(ctx, mb.ID, name, rel); err != nil {
			return done, err
		}
		events[canonMailbox(name)] = &FolderEvent{Change: RenamedLocally, Action: FolderRenamed, From: mb.Name,
			Detail: fmt.Sprintf("below folder %s, renamed locally to %s; mailbox %q renamed to %q on the server with it", from.LocalPath, toRel, mb.Name, name)}
		r.log.Info("mailbox below one renamed on the server moved with it", "from", mb.Name, "to", name, "folder", rel)
		done++
	}
	return done, nil
}

// localKeys returns the keys of the files the index records for a
// mailbox's folder.
func (r *runner) localKeys(ctx context.Context, mb mail.Mailbox) ([]string, error) {
	var keys []string
	for _, uidv := range []mail.UIDValidity{mb.UIDValidity, limbo} {
		rows, err := r.deps.Index.Messages(ctx, mb.ID, uidv)
		if err != nil {
			return nil, err
		}
		for _, m := range rows {
			if m.State.OnLocal() {
				keys = append(keys, m.Key)
			}
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// takenFolders returns the folders (lower-cased paths) that belong to a
// mailbox already: a listed one, one the index knows, one mailboxes.map
// names.
func (r *runner) takenFolders(list []mail.RemoteMailbox, entries []mailboxEntry, known []mail.Mailbox) map[string]bool {
	taken := map[string]bool{}
	for _, m := range list {
		if rel, err := r.folderOf(m); err == nil {
			taken[strings.ToLower(rel)] = true
		}
	}
	for _, e := range entries {
		taken[strings.ToLower(e.rel)] = true
	}
	for _, local := range r.opts.Map {
		if rel, err := r.deps.LocalPath(strings.Split(local, "/")); err == nil {
			taken[strings.ToLower(rel)] = true
		}
	}
	for _, mb := range known {
		taken[strings.ToLower(mb.LocalPath)] = true
	}
	return taken
}

// followDeletions decides about the known mailboxes one side no longer
// has. It returns the entries to sync, with those it re-created, reset
// or marked, and the results of those it settled on its own.
func (r *runner) followDeletions(ctx context.Context, remote Remote, f *renameFinder, v *folderView, entries []mailboxEntry, failed map[string]*MailboxResult) ([]mailboxEntry, []*MailboxResult, error) {
	ix := r.deps.Index
	var results []*MailboxResult
	settled := func(mb mail.Mailbox, ev *FolderEvent) {
		results = append(results, &MailboxResult{Name: mb.Name, Local: mb.LocalPath, Folder: ev})
	}
	drop := map[string]bool{}
	// Every known folder gone at once looks like a Maildir emptied by
	// mistake (the identity file survives "rm -rf Mail/*"): that deletes
	// nothing on the server without --force.
	goneLocally := 0
	synced := 0
	for _, mb := range v.known {
		if mb.UIDValidity == 0 {
			continue
		}
		synced++
		if !v.onLocal(mb.LocalPath) {
			goneLocally++
		}
	}
	allGone := goneLocally >= 2 && goneLocally == synced
	for _, mb := range v.known {
		name := canonMailbox(mb.Name)
		if failed[name] != nil {
			continue
		}
		switch {
		case mb.UIDValidity == 0:
			// Never synced, or reset to be re-created on the server and
			// cut short before CREATE: its folder is created there.
			if v.onServer(mb) || !v.onLocal(mb.LocalPath) || !r.opts.pushes() || r.opts.DryRun {
				continue
			}
			if err := createSubscribed(ctx, remote, mb.Name); err != nil {
				results = append(results, &MailboxResult{Name: mb.Name, Local: mb.LocalPath, Err: err})
				continue
			}
			entries = append(entries, mailboxEntry{RemoteMailbox: mail.RemoteMailbox{Name: mb.Name, Delim: v.delim},
				rel: mb.LocalPath, created: true, recreated: !mb.LastSync.IsZero()})

		case !v.onServer(mb):
			if _, err := remote.Status(ctx, mb.Name); err == nil {
				// The listing missed a mailbox that is there: nothing is
				// decided on a listing's word alone.
				r.log.Warn("mailbox missing from the listing but there on the server; left for the next run", "mailbox", mb.Name)
				continue
			} else if !errors.Is(err, mail.ErrNoMailbox) {
				results = append(results, &MailboxResult{Name: mb.Name, Local: mb.LocalPath, Err: err})
				continue
			}
			if !v.onLocal(mb.LocalPath) {
				ev := &FolderEvent{Change: DeletedOnBoth, Action: FolderForgotten, Detail: "deleted on the server and locally; forgotten"}
				if !r.opts.DryRun {
					// What a removal cut short left (cur/ goes first,
					// and with it the folder) goes now.
					if err := r.deps.RemoveFolder(mb.LocalPath); err != nil {
						r.log.Warn("cannot remove what is left of a deleted folder", "folder", mb.LocalPath, "err", err)
					}
					if err := ix.ForgetMailbox(ctx, mb.ID); err != nil {
						return nil, nil, err
					}
				}
				settled(mb, ev)
				continue
			}
			if !r.opts.Force {
				// A rename not proven must not turn into a second copy
				// of the mail (re-created) or a deletion.
				to, ok, err := f.likelyRenamed(ctx, mb, v, entries)
				if err != nil {
					results = append(results, &MailboxResult{Name: mb.Name, Local: mb.LocalPath, Err: err})
					continue
				}
				if ok {
					res := heldAsRenamed(mb, to, "re-creates it on the server with its mail (or deletes it, with sync.remove_folders)")
					r.log.Warn("mailbox gone from the server may have been renamed; held back", "mailbox", mb.Name, "to", to.Name)
					results = append(results, res)
					// The new mailbox waits too: downloaded now, its mail
					// would be in the Maildir twice, and the folder could
					// no longer be moved where it goes, as the result
					// advises.
					drop[canonMailbox(to.Name)] = true
					continue
				}
			}
			e := mailboxEntry{RemoteMailbox: mail.RemoteMailbox{Name: mb.Name, Delim: v.delim}, rel: mb.LocalPath}
			if r.opts.RemoveFolders && r.opts.pulls() {
				// Its messages count as deleted on the server; settle
				// decides about the folder once they are removed.
				e.vanished = true
				e.event = &FolderEvent{Change: DeletedOnServer, Action: FolderPlanned,
					Detail: "deleted on the server; a sync removes the files the server had, then the folder if nothing is left in it (else re-creates the mailbox with what is left)"}
				entries = append(entries, e)
				continue
			}
			if !r.opts.pushes() {
				settled(mb, &FolderEvent{Change: DeletedOnServer, Action: FolderKept,
					Detail: "deleted on the server; the folder is kept (direction pull never changes the server)"})
				continue
			}
			why := "sync.remove_folders is false"
			if r.opts.RemoveFolders {
				why = "direction push never changes the Maildir"
			}
			ev := &FolderEvent{Change: DeletedOnServer, Action: FolderRecreated,
				Detail: fmt.Sprintf("deleted on the server; re-created there with the folder's mail (%s)", why)}
			if r.opts.DryRun {
				ev.Detail = fmt.Sprintf("deleted on the server; a sync re-creates it there with the folder's mail (%s)", why)
				settled(mb, ev)
				continue
			}
			if err := r.recreateOnServer(ctx, remote, mb); err != nil {
				results = append(results, &MailboxResult{Name: mb.Name, Local: mb.LocalPath, Err: err, Folder: ev})
				continue
			}
			e.created, e.recreated, e.event = true, true, ev
			entries = append(entries, e)

		case !v.onLocal(mb.LocalPath):
			if allGone && r.opts.RemoveFolders && r.opts.pushes() && !r.opts.Force {
				drop[name] = true
				results = append(results, &MailboxResult{Name: mb.Name, Local: mb.LocalPath,
					Folder: &FolderEvent{Change: DeletedLocally, Action: FolderHeld, Detail: "folder deleted locally, as every other folder: nothing is deleted on the server"},
					Safety: fmt.Errorf("%w: every folder of the account is gone from the Maildir; nothing is deleted on the server. Check the Maildir (emptied by mistake?); if the folders were deleted on purpose, run satchel sync --force", ErrTooManyDeletions)})
				continue
			}
			i := v.entry[name]
			if r.opts.RemoveFolders && r.opts.pushes() && name != "INBOX" {
				entries[i].folderGone = true
				entries[i].event = &FolderEvent{Change: DeletedLocally, Action: FolderPlanned,
					Detail: "folder deleted locally; a sync deletes the messages it had on the server, then the mailbox if nothing is left in it (else re-creates the folder with what is left)"}
				continue
			}
			if !r.opts.pulls() {
				drop[name] = true
				settled(mb, &FolderEvent{Change: DeletedLocally, Action: FolderKept,
					Detail: "folder deleted locally; the mailbox is kept on the server (direction push never changes the Maildir)"})
				continue
			}
			why := "sync.remove_folders is false"
			switch {
			case name == "INBOX":
				why = "INBOX is never deleted"
			case r.opts.RemoveFolders:
				why = "direction pull never changes the server"
			}
			ev := &FolderEvent{Change: DeletedLocally, Action: FolderRecreated,
				Detail: fmt.Sprintf("folder deleted locally; re-created with the mailbox's mail from the server (%s)", why)}
			if r.opts.DryRun {
				ev.Detail = fmt.Sprintf("folder deleted locally; a sync re-creates it with the mailbox's mail from the server (%s)", why)
				drop[name] = true
				settled(mb, ev)
				continue
			}
			if err := ix.ResetMailbox(ctx, mb.ID); err != nil {
				return nil, nil, err
			}
			entries[i].event = ev
		}
	}
	entries = slices.DeleteFunc(entries, func(e mailboxEntry) bool { return drop[canonMailbox(e.Name)] })
	return entries, results, nil
}

// recreateOnServer creates a mailbox deleted on the server again, empty,
// and resets its index row: the next learn takes it as a first sync and
// uploads the folder's files.
//
// The row is reset first: a crash before CREATE leaves a row that was
// never synced and a folder, which the next run creates on the server
// (see followDeletions); a crash after CREATE with the old row kept would
// take the new mailbox for the old one renumbered, and keep the folder's
// mail in limbo instead of uploading it.
func (r *runner) recreateOnServer(ctx context.Context, remote Remote, mb mail.Mailbox) error {
	if err := r.deps.Index.ResetMailbox(ctx, mb.ID); err != nil {
		return err
	}
	return createSubscribed(ctx, remote, mb.Name)
}

// learnVanished reads a mailbox deleted on the server as a server that
// expunged every message: its plan removes the files the server had, as
// the conflict rules and sync.expunge allow, and follows messages moved
// to other mailboxes before the deletion.
func (r *runner) learnVanished(ctx context.Context, b *box) error {
	if !r.opts.DryRun {
		mb, ok, err := r.deps.Index.Mailbox(ctx, b.Name)
		if err != nil {
			return err
		}
		if ok {
			b.mb, b.folder = mb, r.deps.Folder(b.rel)
			if err := r.recoverVanished(ctx, b); err != nil {
				return err
			}
		}
	}
	// What the index and the folder say, as for a mailbox whose server
	// side failed; the server side is that every message is gone.
	if err := r.learnLocal(ctx, b); err != nil {
		return err
	}
	mb := b.mb
	b.mode = mb.Mode
	b.st = mail.MailboxStatus{UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext, HighestModSeq: mb.HighestModSeq}
	var err error
	if b.limbo, err = loadRows(ctx, r.deps.Index, mb.ID, limbo); err != nil {
		return err
	}
	b.changed, b.gone = nil, map[mail.UID]bool{}
	for m := range b.known.all() {
		if m.State.OnServer() {
			b.gone[m.UID] = true
		}
	}
	return nil
}

// recoverVanished settles the steps a crash left pending in a mailbox
// the server no longer has, as recover does with the server's help: a
// download or adoption whose file is in the folder is recorded (the
// server's deletion then removes it like any other), one whose file is
// not is forgotten with its half-written file in tmp/; an upload or a
// move into the mailbox went with it. tmp/ is cleaned as at every learn,
// so that the folder can be removed.
func (r *runner) recoverVanished(ctx context.Context, b *box) error {
	ix := r.deps.Index
	ins, err := ix.Intents(ctx, b.mb.ID)
	if err != nil {
		return err
	}
	present, err := interruptedFiles(b.folder, ins)
	if err != nil {
		return err
	}
	var own []string
	for _, in := range ins {
		if in.Kind == mail.IntentDownload || in.Kind == mail.IntentAdopt {
			if _, ok := present[in.Key]; ok && in.Row.UIDValidity == b.mb.UIDValidity {
				if err := ix.CompleteIntent(ctx, in.ID, []mail.RowChange{{MailboxID: b.mb.ID, Row: in.Row}}); err != nil {
					return err
				}
				continue
			}
			own = append(own, in.Key)
		}
		if err := ix.DropIntent(ctx, in.ID); err != nil {
			return err
		}
	}
	return b.folder.CleanTmp(own, time.Now())
}

// settleVanished decides about the folder of a mailbox deleted on the
// server, once its plan is applied: removed if nothing is left in it,
// else the mailbox is re-created on the server and synced again in this
// run (returned as the entry to sync).
func (r *runner) settleVanished(ctx context.Context, remote Remote, b *box) (*mailboxEntry, error) {
	ev := b.res.Folder
	if b.res.Safety != nil {
		ev.Action = FolderHeld
		ev.Detail = "deleted on the server; removing its files was held back, nothing changed: satchel sync --force removes the folder, sync.remove_folders: false re-creates the mailbox"
		return nil, nil
	}
	n, err := b.folder.Count()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		if err := r.deps.RemoveFolder(b.rel); err != nil {
			return nil, err
		}
		if err := r.deps.Index.ForgetMailbox(ctx, b.mb.ID); err != nil {
			return nil, err
		}
		ev.Action, ev.Detail = FolderDeleted, fmt.Sprintf("deleted on the server; folder %s removed", b.rel)
		return nil, nil
	}
	ev.Action = FolderRecreated
	ev.Detail = fmt.Sprintf("deleted on the server, but folder %s holds %d messages the server did not have (new, changed, or kept by sync.expunge); re-created there with them", b.rel, n)
	if err := r.recreateOnServer(ctx, remote, b.mb); err != nil {
		return nil, err
	}
	e := b.mailboxEntry
	e.vanished, e.created, e.recreated, e.res = false, true, true, b.res
	return &e, nil
}

// settleFolderGone decides about a mailbox whose folder was deleted
// locally, once its plan is applied: deleted on the server if nothing is
// left there, else its folder is re-created. It reports whether the
// mailbox is still synced (its state is then recorded as usual).
func (r *runner) settleFolderGone(ctx context.Context, remote Remote, b *box) (bool, error) {
	ev := b.res.Folder
	if b.res.Safety != nil {
		ev.Action = FolderHeld
		ev.Detail = "folder deleted locally; deleting its messages on the server was held back, nothing changed: satchel sync --force deletes the mailbox, sync.remove_folders: false re-creates the folder"
		return false, nil
	}
	st, err := remote.Status(ctx, b.Name)
	if err != nil {
		return false, err
	}
	n, err := b.folder.Count()
	if err != nil {
		return false, err
	}
	if st.Messages == 0 && n == 0 {
		if err := remote.Delete(ctx, b.Name); err != nil {
			return false, err
		}
		if err := r.deps.RemoveFolder(b.rel); err != nil {
			return false, err
		}
		if err := r.deps.Index.ForgetMailbox(ctx, b.mb.ID); err != nil {
			return false, err
		}
		ev.Action, ev.Detail = FolderDeleted, "folder deleted locally; mailbox deleted on the server"
		return false, nil
	}
	if err := b.folder.Init(); err != nil {
		return false, err
	}
	ev.Action = FolderRecreated
	ev.Detail = fmt.Sprintf("folder deleted locally, but the server has %d messages that were not deleted (new, changed, or kept by sync.expunge); folder re-created with them", st.Messages)
	return true, nil
}
