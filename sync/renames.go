package sync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Recognising a mailbox renamed on the server. No RFC promises that a
// RENAME keeps UIDVALIDITY (Courier gives the new name a new one), nor
// that UIDVALIDITY is unique in an account (servers that take it from the
// clock, Cyrus and Courier, give mailboxes made in the same second the
// same one). Only MAILBOXID (RFC 8474 §4.1) survives a RENAME by
// definition. So a known mailbox gone from the listing is the same
// mailbox as a listed one new to the index when
//
//  1. both have the same MAILBOXID (the listing carries it where the
//     server has OBJECTID: no SELECT is needed), or
//  2. it lay below a mailbox found renamed, at the same path relative to
//     it (RFC 9051 §6.3.6: inferiors are renamed too), or
//  3. it is the only new mailbox whose messages, matched as a renumbered
//     mailbox's are (Message-ID, size, INTERNALDATE), cover at least
//     renameCover of the vanished mailbox's and of its own; mailboxes
//     with fewer than renameMinMessages messages are never matched so.
//
// INBOX is never renamed: RENAME of INBOX moves its messages to a new
// mailbox and leaves INBOX empty (RFC 9051 §6.3.6), which is a move of
// messages, not of a mailbox.
//
// The renamed mailbox keeps its index rows and its folder moves with it;
// where the numbering changed too, learn re-associates the rows by the
// same identity (rebase): nothing is downloaded or uploaded again.

const (
	renameCover       = 0.95
	renameMinMessages = 5
	// likelyRenamedShare is the share of a vanished mailbox's messages a
	// new mailbox must hold for its re-creation to be held back.
	likelyRenamedShare = 0.5
)

// ErrLikelyRenamed: a mailbox gone from the server looks renamed (a
// mailbox new to the index holds much of its mail) without proof enough
// to follow it; it is neither re-created nor deleted without --force.
var ErrLikelyRenamed = errors.New("mailbox gone from the server may have been renamed")

// renameFinder holds the messages' identities it reads while renames are
// looked for, each once: those of the listed mailboxes new to the index
// (a SELECT and a FETCH of every message's size, date and Message-ID),
// and those the index records on the server for the vanished ones.
type renameFinder struct {
	r      *runner
	remote Remote
	ids    map[string]map[identity]int // listed, by mailbox name
	known  map[int64]map[identity]int  // in the index, by mailbox ID
}

// serverRenames pairs the vanished known mailboxes with the listed ones
// new to the index that they became, by the rules above. It returns the
// pairs, vanished mailbox name → entry.
func (r *runner) serverRenames(ctx context.Context, f *renameFinder, v *folderView, entries []mailboxEntry, used map[string]bool) (map[string]mailboxEntry, error) {
	var gone []mail.Mailbox
	for _, mb := range v.known {
		if mb.UIDValidity != 0 && !v.onServer(mb) && canonMailbox(mb.Name) != "INBOX" {
			gone = append(gone, mb)
		}
	}
	fresh := map[string]mailboxEntry{}
	for _, e := range entries {
		if _, known := v.byName[canonMailbox(e.Name)]; known || e.err != nil || e.NoSelect || used[e.Name] || e.Name == "INBOX" {
			continue
		}
		fresh[e.Name] = e
	}
	pairs := map[string]mailboxEntry{}
	take := func(mb mail.Mailbox, e mailboxEntry) {
		pairs[mb.Name] = e
		delete(fresh, e.Name)
	}
	// 1. MAILBOXID.
	for _, mb := range gone {
		if mb.MailboxID == "" {
			continue
		}
		for _, e := range fresh {
			if e.Status != nil && e.Status.MailboxID == mb.MailboxID {
				take(mb, e)
				break
			}
		}
	}
	for {
		// 2. Below a renamed mailbox.
		for progress := true; progress; {
			progress = false
			for _, mb := range gone {
				if _, ok := pairs[mb.Name]; ok {
					continue
				}
				if name, ok := belowRenamed(mb.Name, pairs, v.delim); ok {
					if e, ok := fresh[name]; ok {
						take(mb, e)
						progress = true
					}
				}
			}
		}
		// 3. By content, one pair at a time: each pair found may place
		// others by path.
		found := false
		for _, mb := range gone {
			if _, ok := pairs[mb.Name]; ok {
				continue
			}
			e, ok, err := f.byContent(ctx, mb, fresh, gone, pairs)
			if err != nil {
				return pairs, err
			}
			if ok {
				take(mb, e)
				found = true
				break
			}
		}
		if !found {
			return pairs, nil
		}
	}
}

// belowRenamed returns the new name of a mailbox below one of the renamed
// ones (old name → entry), at the same relative path.
func belowRenamed(name string, pairs map[string]mailboxEntry, delim rune) (string, bool) {
	if delim == 0 {
		return "", false
	}
	for from, e := range pairs {
		if rest, ok := strings.CutPrefix(name, from+string(delim)); ok {
			return e.Name + string(delim) + rest, true
		}
	}
	return "", false
}

// serverIdentities returns (once) the identities of the messages the
// index records on the server for mb, and how many there are.
func (f *renameFinder) serverIdentities(ctx context.Context, mb mail.Mailbox) (map[identity]int, int, error) {
	if ids, ok := f.known[mb.ID]; ok {
		return ids, countOf(ids), nil
	}
	ids := map[identity]int{}
	err := f.r.deps.Index.EachMessage(ctx, mb.ID, mb.UIDValidity, func(m mail.Message) error {
		if m.State.OnServer() {
			ids[identity{m.MessageID, m.Size, m.InternalDate.Unix()}]++
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	f.known[mb.ID] = ids
	return ids, countOf(ids), nil
}

// identities reads (once) the identities of a listed mailbox's messages.
func (f *renameFinder) identities(ctx context.Context, name string) (map[identity]int, error) {
	if ids, ok := f.ids[name]; ok {
		return ids, nil
	}
	if _, err := f.remote.Select(ctx, name); err != nil {
		return nil, err
	}
	msgs, err := f.remote.Identify(ctx)
	if err != nil {
		return nil, err
	}
	ids := map[identity]int{}
	for _, m := range msgs {
		ids[identity{m.MessageID, m.Size, m.InternalDate.Unix()}]++
	}
	f.ids[name] = ids
	return ids, nil
}

// overlap counts the messages two multisets of identities share.
func overlap(a, b map[identity]int) int {
	n := 0
	for k, c := range a {
		n += min(c, b[k])
	}
	return n
}

func countOf(ids map[identity]int) int {
	n := 0
	for _, c := range ids {
		n += c
	}
	return n
}

// covers reports whether shared messages are at least renameCover of n.
func covers(shared, n int) bool { return float64(shared) >= renameCover*float64(n) }

// byContent finds the one new mailbox whose messages are mb's (rule 3).
// A mailbox that matches another vanished mailbox as well is no one's.
func (f *renameFinder) byContent(ctx context.Context, mb mail.Mailbox, fresh map[string]mailboxEntry, gone []mail.Mailbox, pairs map[string]mailboxEntry) (mailboxEntry, bool, error) {
	mine, n, err := f.serverIdentities(ctx, mb)
	if err != nil || n < renameMinMessages {
		return mailboxEntry{}, false, err
	}
	var cands []mailboxEntry
	for _, name := range slices.Sorted(maps.Keys(fresh)) {
		e := fresh[name]
		// The counts alone rule most out without a SELECT.
		if e.Status != nil && (!covers(int(e.Status.Messages), n) || !covers(n, int(e.Status.Messages)) || e.Status.Messages < renameMinMessages) {
			continue
		}
		theirs, err := f.identities(ctx, name)
		if err != nil {
			return mailboxEntry{}, false, err
		}
		shared := overlap(mine, theirs)
		if covers(shared, n) && covers(shared, countOf(theirs)) && countOf(theirs) >= renameMinMessages {
			cands = append(cands, e)
		}
	}
	if len(cands) != 1 {
		if len(cands) > 1 {
			f.r.log.Warn("mailbox gone from the server matches several new mailboxes; not taken for renamed", "mailbox", mb.Name)
		}
		return mailboxEntry{}, false, nil
	}
	theirs := f.ids[cands[0].Name]
	for _, other := range gone {
		if _, ok := pairs[other.Name]; ok || other.Name == mb.Name {
			continue
		}
		ids, n2, err := f.serverIdentities(ctx, other)
		if err != nil {
			return mailboxEntry{}, false, err
		}
		if n2 >= renameMinMessages && covers(overlap(ids, theirs), n2) {
			f.r.log.Warn("new mailbox matches several mailboxes gone from the server; not taken for renamed", "mailbox", cands[0].Name)
			return mailboxEntry{}, false, nil
		}
	}
	return cands[0], true, nil
}

// likelyRenamed names a mailbox new to the index that holds at least
// likelyRenamedShare of the messages the index records for mb on the
// server: mb's deletion there may be a rename not proven (rule 3 failed).
// Trash and other mailboxes the index knows are never this mailbox.
func (f *renameFinder) likelyRenamed(ctx context.Context, mb mail.Mailbox, v *folderView, entries []mailboxEntry) (mailboxEntry, bool, error) {
	mine, n, err := f.serverIdentities(ctx, mb)
	if err != nil || n == 0 {
		return mailboxEntry{}, false, err
	}
	for _, e := range entries {
		if _, known := v.byName[canonMailbox(e.Name)]; known || e.err != nil || e.NoSelect || e.created || e.Name == "INBOX" {
			continue
		}
		if e.Status != nil && float64(e.Status.Messages) < likelyRenamedShare*float64(n) {
			continue
		}
		theirs, err := f.identities(ctx, e.Name)
		if err != nil {
			return mailboxEntry{}, false, err
		}
		if float64(overlap(mine, theirs)) >= likelyRenamedShare*float64(n) {
			return e, true, nil
		}
	}
	return mailboxEntry{}, false, nil
}

// heldAsRenamed is the result of a vanished mailbox held back because it
// looks renamed to another. The other is held back with it (see
// followDeletions), so that moving the folder, as the result advises,
// pairs the folder's files with its messages.
func heldAsRenamed(mb mail.Mailbox, to mailboxEntry, force string) *MailboxResult {
	return &MailboxResult{Name: mb.Name, Local: mb.LocalPath,
		Folder: &FolderEvent{Change: DeletedOnServer, Action: FolderHeld,
			Detail: fmt.Sprintf("gone from the server; new mailbox %q holds much of its mail (renamed?): nothing changed, and %q is not synced until this is settled", to.Name, to.Name)},
		Safety: fmt.Errorf("%w: %q is gone and new mailbox %q holds much of its mail; neither is synced. If it was renamed, move folder %s to %s and sync again: its files are paired with the server's messages, nothing is transferred twice. Otherwise satchel sync --force %s",
			ErrLikelyRenamed, mb.Name, to.Name, mb.LocalPath, to.rel, force)}
}
