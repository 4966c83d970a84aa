package sync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Migrating an index to folder names without the namespace prefix (see
// namespace.go): an index made before satchel left the prefix out keeps
// "INBOX.Archive" in folder INBOX/Archive until MigrateFolderNames moves
// it to Archive. Only folders move and only index rows change: nothing is
// downloaded or uploaded, and the server is only asked for NAMESPACE and
// LIST.
//
// Each step may be repeated after a crash: a folder already at its new
// place is not moved again (Deps.RenameFolder), a row already naming it
// is left alone, and the index is marked as leaving the prefix out
// (folderNamesPersonal) only once every folder has moved. Until then a
// sync names folders as before, and the mailboxes already moved fail in
// it with ErrFolderMoved rather than being read as empty.

// ErrFolderTaken: a folder cannot move to its new place, because another
// folder is there already, or another mailbox's.
var ErrFolderTaken = errors.New("that folder exists already")

// FolderMove is one mailbox's folder moving to its name without the
// prefix.
type FolderMove struct {
	Mailbox  string
	From, To string
	// Done: the folder is at To and the index records it there. Never
	// set in a dry run.
	Done bool
	// Err says why the folder was not moved (it names both folders of a
	// collision); the rest of the account is migrated all the same.
	Err error
	id  int64
}

// MigrateResult is what MigrateFolderNames did for one account.
type MigrateResult struct {
	Account string
	// Prefix is the personal namespace's prefix left out of folder names.
	Prefix string
	// Nothing, when set, says why there was nothing to do: the index
	// leaves the prefix out already, or the server has none.
	Nothing string
	// Moves are the folders to move, parents before their children.
	Moves []FolderMove
	// Migrated: the index now leaves the prefix out, from this run on.
	Migrated bool
}

// Failed reports how many folders could not be moved.
func (r MigrateResult) Failed() int {
	n := 0
	for _, m := range r.Moves {
		if m.Err != nil {
			n++
		}
	}
	return n
}

// MigrateFolderNames moves the folders of an index made with the whole
// server names (folderNamesFull) to where a sync without the prefix puts
// them, records each in the index, and then marks the index as leaving
// the prefix out. Of Options it reads Account, Prefix, Map, DryRun and
// Logger; of Deps Connect, Index, Folder, LocalPath, RenameFolder and
// RemoveFolder. A folder that cannot move fails alone (FolderMove.Err):
// the index then keeps naming folders as before, and a later run carries
// on. With DryRun it computes the moves and changes nothing. The error is
// for the account as a whole: no connection, no listing, no index.
func MigrateFolderNames(ctx context.Context, opts Options, deps Deps) (MigrateResult, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	res := MigrateResult{Account: opts.Account}
	r := &runner{opts: opts, deps: deps, log: opts.Logger.With("account", opts.Account)}
	ix := deps.Index
	mbs, err := ix.Mailboxes(ctx)
	if err != nil {
		return res, err
	}
	mode, ok, err := ix.Meta(ctx, metaFolderNames)
	if err != nil {
		return res, err
	}
	if !ok && len(mbs) > 0 {
		// Written before the meta key existed: as loadNaming reads it.
		mode = folderNamesFull
	}
	if mode != folderNamesFull {
		res.Nothing = "the index leaves the namespace prefix out of folder names already"
		return res, nil
	}
	remote, err := r.connect(ctx)
	if err != nil {
		return res, err
	}
	// The server is asked only for the listing and the namespaces; the
	// moves are local.
	list, err := remote.List(ctx)
	var ns mail.Namespaces
	if err == nil {
		ns, err = remote.Namespaces(ctx)
	}
	remote.Close()
	if err != nil {
		return res, fmt.Errorf("list mailboxes and namespaces: %w", err)
	}
	r.names = namingFrom(ns, opts.Prefix, listDelim(list))
	res.Prefix = r.names.personal.Prefix
	if res.Prefix == "" {
		res.Nothing = "the server puts no prefix before the account's mailboxes: folder names are the same either way"
		return res, nil
	}
	res.Moves = r.planMoves(list, mbs)
	if opts.DryRun {
		return res, nil
	}
	r.applyMoves(ctx, res.Moves, mbs)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.Failed() > 0 {
		return res, nil
	}
	if err := ix.SetMeta(ctx, metaFolderNames, folderNamesPersonal); err != nil {
		return res, err
	}
	res.Migrated = true
	r.log.Info("folder names now leave the namespace prefix out", "prefix", res.Prefix)
	return res, nil
}

// planMoves lists the folders of the index's mailboxes whose place
// changes without the prefix, parents first (a nested layout keeps
// children inside their parent's folder: they move with it). A folder
// whose new place is taken, and the folders inside it, fail in the plan.
// INBOX never moves; mailboxes.map entries and other users' and shared
// mailboxes keep their folders.
func (r *runner) planMoves(list []mail.RemoteMailbox, mbs []mail.Mailbox) []FolderMove {
	delim := listDelim(list)
	listed := map[string]mail.RemoteMailbox{}
	for _, m := range list {
		listed[canonMailbox(m.Name)] = m
	}
	old := &runner{opts: r.opts, deps: r.deps, names: new(naming)}
	*old.names = *r.names
	old.names.full = true
	owner := map[string]string{}
	for _, mb := range mbs {
		owner[strings.ToLower(mb.LocalPath)] = mb.Name
	}
	var moves []FolderMove
	for _, mb := range mbs {
		if canonMailbox(mb.Name) == "INBOX" || r.names.isForeign(mb.Name) {
			continue
		}
		m, ok := listed[canonMailbox(mb.Name)]
		if !ok {
			// Gone from the server: a sync decides what becomes of it,
			// in its new place.
			m = mail.RemoteMailbox{Name: mb.Name, Delim: delim}
		}
		mv := FolderMove{Mailbox: mb.Name, From: mb.LocalPath, id: mb.ID}
		to, err := r.folderOf(m)
		if err != nil {
			mv.Err = fmt.Errorf("mailbox %q: %w", mb.Name, err)
			moves = append(moves, mv)
			continue
		}
		if to == mb.LocalPath {
			continue // not under the prefix, mapped, or moved already
		}
		mv.To = to
		if was, err := old.folderOf(m); err != nil || was != mb.LocalPath {
			mv.Err = fmt.Errorf("%w: %q was synced into folder %s, the configuration places it in %s (with the prefix) or %s (without); restore the layout or mailboxes.map it was synced with, sync, and run satchel migrate-folders again",
				ErrFolderMoved, mb.Name, mb.LocalPath, was, to)
		}
		moves = append(moves, mv)
	}
	slices.SortFunc(moves, func(a, b FolderMove) int {
		if d := strings.Count(a.From, "/") - strings.Count(b.From, "/"); d != 0 {
			return d
		}
		return strings.Compare(a.From, b.From)
	})
	claimed := map[string]string{}
	for i := range moves {
		mv := &moves[i]
		if mv.Err != nil {
			continue
		}
		if err := r.insideFailed(moves[:i], mv); err != nil {
			mv.Err = err
			continue
		}
		key := strings.ToLower(mv.To)
		switch {
		case owner[key] != "" && owner[key] != mv.Mailbox:
			mv.Err = fmt.Errorf("folder %s (mailbox %q) cannot move to %s: %w, mailbox %q syncs with it; give one of them another folder in mailboxes.map, then run satchel migrate-folders again",
				mv.From, mv.Mailbox, mv.To, ErrFolderTaken, owner[key])
		case claimed[key] != "":
			mv.Err = fmt.Errorf("folder %s (mailbox %q) cannot move to %s: %w, folder %s (mailbox %q) moves there; give one of them another folder in mailboxes.map, then run satchel migrate-folders again",
				mv.From, mv.Mailbox, mv.To, ErrFolderTaken, claimed[key], owner[strings.ToLower(claimed[key])])
		case r.isFolder(mv.From) && r.isFolder(mv.To):
			mv.Err = r.taken(mv)
		}
		if mv.Err == nil {
			claimed[key] = mv.From
		}
	}
	return moves
}

// applyMoves moves each planned folder and records it in the index, in
// the plan's order; a parent's failure fails the folders inside it. Then
// it removes the plain directories emptied by the moves.
func (r *runner) applyMoves(ctx context.Context, moves []FolderMove, mbs []mail.Mailbox) {
	for i := range moves {
		mv := &moves[i]
		if ctx.Err() != nil {
			return
		}
		if mv.Err != nil {
			r.log.Info("folder not moved", "mailbox", mv.Mailbox, "folder", mv.From, "err", mv.Err)
			continue
		}
		if err := r.insideFailed(moves[:i], mv); err != nil {
			mv.Err = err
			continue
		}
		// A folder at neither place (deleted locally) has nothing to
		// move: the index follows, and a sync deals with it there. One
		// at the new place only was moved by an earlier run, or with its
		// parent: RenameFolder says so without an error.
		if r.isFolder(mv.From) || r.isFolder(mv.To) {
			if err := r.deps.RenameFolder(mv.From, mv.To); err != nil {
				if errors.Is(err, fs.ErrExist) {
					mv.Err = r.taken(mv)
				} else {
					mv.Err = fmt.Errorf("mailbox %q: %w", mv.Mailbox, err)
				}
				r.log.Info("folder not moved", "mailbox", mv.Mailbox, "folder", mv.From, "err", mv.Err)
				continue
			}
		}
		if err := r.deps.Index.RenameMailbox(ctx, mv.id, mv.Mailbox, mv.To); err != nil {
			mv.Err = fmt.Errorf("mailbox %q: record its folder %s: %w", mv.Mailbox, mv.To, err)
			continue
		}
		mv.Done = true
		r.log.Info("moved folder", "mailbox", mv.Mailbox, "from", mv.From, "to", mv.To)
	}
	r.removeEmptied(moves, mbs)
}

// insideFailed fails a folder inside one that could not move: moving it
// alone would split the mailbox from its parent.
func (r *runner) insideFailed(before []FolderMove, mv *FolderMove) error {
	for _, p := range before {
		if p.Err != nil && strings.HasPrefix(strings.ToLower(mv.From), strings.ToLower(p.From)+"/") {
			return fmt.Errorf("folder %s (mailbox %q) not moved: it is inside folder %s, which was not", mv.From, mv.Mailbox, p.From)
		}
	}
	return nil
}

// taken is the error of a folder whose new place holds another folder.
func (r *runner) taken(mv *FolderMove) error {
	return fmt.Errorf("folder %s (mailbox %q) cannot move to %s: %w; move %s elsewhere (or merge the two), then run satchel migrate-folders again",
		mv.From, mv.Mailbox, mv.To, ErrFolderTaken, mv.To)
}

// removeEmptied removes the directories that held moved folders and are
// no folders themselves (\Noselect levels of a nested layout), when
// nothing is left in them. Folders and what the index knows stay.
func (r *runner) removeEmptied(moves []FolderMove, mbs []mail.Mailbox) {
	if r.deps.RemoveFolder == nil {
		return
	}
	known := map[string]bool{}
	for _, mb := range mbs {
		known[strings.ToLower(mb.LocalPath)] = true
	}
	for _, mv := range moves {
		if mv.To != "" {
			known[strings.ToLower(mv.To)] = true
		}
	}
	seen := map[string]bool{}
	var dirs []string
	for _, mv := range moves {
		if !mv.Done {
			continue
		}
		for d := path.Dir(mv.From); d != "." && d != "/" && d != ""; d = path.Dir(d) {
			if !seen[d] && !known[strings.ToLower(d)] {
				seen[d] = true
				dirs = append(dirs, d)
			}
		}
	}
	// Deepest first: a parent is empty only once its children are gone.
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range dirs {
		if r.isFolder(d) {
			continue
		}
		if err := r.deps.RemoveFolder(d); err != nil {
			r.log.Warn("cannot remove a directory the moves emptied", "dir", d, "err", err)
		}
	}
}

// isFolder reports whether a folder (with cur/ and new/) is at rel.
func (r *runner) isFolder(rel string) bool {
	stamp, _, err := r.deps.Folder(rel).Stamp()
	return err != nil || stamp != ""
}
