package sync

import (
	"context"
	"errors"

	"github.com/satchel-mail/satchel/sync/mail"
)

// A delta sync that changed its folder (downloads, removals, flags) used
// to leave no stamp of it: its own writes moved the folder's modification
// times, and another program (a mail reader marking a message read) may
// have changed the folder in the same moments. The next run then compared
// the whole folder with every index row: cron syncs that each bring new
// mail paid a cost that follows the mailbox, not the changes (a quarter
// of a second of CPU at 100,000 messages).
//
// Where the run can watch folders (Deps.Watcher: inotify on Linux), the
// folder is followed from before deltaReady takes its stamp. At the end of
// the pass the watch names every message whose file was added, removed or
// renamed since, by this run or anyone; each is checked against its index
// row as folderAgrees would, and the folder's stamp is kept when all agree
// and the stamp did not move during the check. What the watch cannot tell
// (its events overflowed, a directory moved, a name that is no message's)
// keeps no stamp, and the next run compares as before.

// watchFolder starts following the folder at rel, or returns nil when the
// run cannot watch (no Deps.Watcher, or it failed once).
func (r *runner) watchFolder(rel string) FolderWatch {
	r.mu.Lock()
	if !r.watchTried {
		r.watchTried = true
		if r.deps.Watcher != nil {
			w, err := r.deps.Watcher()
			if err != nil {
				r.log.Debug("folders not watched", "err", err)
			} else {
				r.watcher = w
			}
		}
	}
	w := r.watcher
	r.mu.Unlock()
	if w == nil {
		return nil
	}
	fw, err := w.Watch(rel)
	if err != nil {
		r.log.Debug("folder not watched", "folder", rel, "err", err)
		return nil
	}
	return fw
}

// closeWatcher ends every watch of the run.
func (r *runner) closeWatcher() {
	r.mu.Lock()
	w := r.watcher
	r.watcher = nil
	r.mu.Unlock()
	if w != nil {
		if err := w.Close(); err != nil {
			r.log.Debug("close the folder watcher", "err", err)
		}
	}
}

// watchedStamp returns the stamp of a delta-synced box's folder if every
// message the watch names is as the index records it (keysAgree), "" if
// not or if that cannot be told. Like agreedStamp, it takes no stamp too
// recent to trust, and none that moved while it checked.
func (r *runner) watchedStamp(ctx context.Context, b *box) string {
	if b.watch == nil {
		return ""
	}
	before, latest, err := b.folder.Stamp()
	if err != nil || before == "" || stampWait(latest) > 0 {
		return ""
	}
	changed, ok := b.watch.Changed()
	if !ok || !r.keysAgree(ctx, b, changed) {
		return ""
	}
	if after, _, err := b.folder.Stamp(); err != nil || after != before {
		return ""
	}
	return before
}

// keysAgree reports whether the files the watch found for the changed
// keys of b's folder are what the index records, by the rules of
// folderAgrees: a row with a local file has it, with the recorded flags if
// synced; no other file is there; a row a safety check held back never
// agrees. A key the watch left without a file is taken as having none: it
// had one before the watch only if its row said so then, and then its
// removal is among the changes (the folder agreed with the index when the
// watch began), or the row still wants the file and the check fails.
func (r *runner) keysAgree(ctx context.Context, b *box, changed map[string]*mail.Flags) bool {
	if len(changed) == 0 {
		return true
	}
	keys := make([]string, 0, len(changed))
	for k := range changed {
		keys = append(keys, k)
	}
	rows, err := r.deps.Index.MessagesByKey(ctx, b.mb.ID, keys)
	if err != nil {
		return false
	}
	for k, f := range changed {
		if ctx.Err() != nil {
			return false
		}
		var flags mail.Flags
		found := f != nil
		if found {
			flags = *f
		}
		m, ok := rows[k]
		if ok && m.UIDValidity != b.mb.UIDValidity && m.UIDValidity != limbo {
			// Rows of an older numbering are not the folder's
			// (folderAgrees reads the current and limbo ones only).
			ok = false
		}
		if err := keyAgrees(m, ok, flags, found); err != nil {
			r.log.Debug("folder changed beside the sync", "folder", b.rel, "key", k, "err", err)
			return false
		}
	}
	return true
}

// keyAgrees compares one key's file (found, with flags) with its row (ok),
// by the rules of folderAgrees, which compares every row with it.
func keyAgrees(m mail.Message, ok bool, flags mail.Flags, found bool) error {
	switch {
	case !ok:
		if found {
			return errors.New("a file without a row")
		}
	case !m.State.OnLocal():
		if found {
			return errors.New("a file the index has as gone")
		}
	case m.State == mail.StateHeld, !found, m.State == mail.StateSynced && !flags.System().Equal(m.Flags.System()):
		return errDisagree
	}
	return nil
}
