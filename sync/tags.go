package sync

import (
	"context"
	"fmt"
	"slices"
	"strings"
	gosync "sync"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Tags: notmuch tags and IMAP keywords as one set of labels, synced both
// ways per message (notmuch.enabled). A sync with tags on runs, after
// every mailbox is applied (so downloads and renames are done): notmuch
// new, a read of the tags changed since the revision recorded, a
// three-way merge per label with the keywords the index holds, and the
// writes, tags with notmuch tag --batch and keywords with STORE on the
// engine's connections. See tagsync.go for the run, tagplan.go for the
// plan, tagmerge.go for the merge rule, tagstore.go for the STOREs,
// tagverify.go for verify, and package tagmap for the names.

// TagDB is a tag database that indexes the Maildir: notmuch, through
// package sync/notmuch. Its methods are called by one goroutine at a
// time per account; the engine holds a lock per database root around
// Index and Tag (one writer per database in this process; notmuch locks
// against other processes). dir is a directory relative to the root,
// "/"-separated ("" for the whole root); a revision of 0 means "from the
// start".
type TagDB interface {
	// Root is the directory the database indexes, absolute.
	Root(ctx context.Context) (string, error)
	// State reports the database's UUID and revision, and how many
	// messages with a file under dir changed after revision since.
	State(ctx context.Context, dir string, since uint64) (TagState, error)
	// Index indexes new, renamed and removed files, running no hook.
	Index(ctx context.Context) error
	// Changed lists the messages with a file under dir changed after
	// revision since, with all their files and tags.
	Changed(ctx context.Context, dir string, since uint64) ([]TaggedMessage, error)
	// Messages lists the messages with these ids; unknown ids are absent.
	Messages(ctx context.Context, ids []string) ([]TaggedMessage, error)
	// Tag adds and removes tags, per message id. It is idempotent.
	Tag(ctx context.Context, changes []TagChange) error
}

// TagState, TaggedMessage and TagChange are the tag database's values,
// shared with its adapter through package mail.
type (
	TagState      = mail.TagState
	TaggedMessage = mail.TaggedMessage
	TagChange     = mail.TagChange
)

// TagIndex is the index's record of the tag sync (store.Index): each
// message's tag base, and the keywords each mailbox refused.
type TagIndex interface {
	TagMessagesByKey(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, keys []string) (map[string]mail.Message, error)
	TagMessagesByUID(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, uids []mail.UID) (map[mail.UID]mail.Message, error)
	TagBases(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, uids []mail.UID) (map[mail.UID]mail.TagBase, error)
	// SaveTagBases records bases in one transaction, skipping those
	// whose message has no row.
	SaveTagBases(ctx context.Context, bases []mail.TagBase) error
	RefusedKeywords(ctx context.Context, mailboxID int64) ([]string, error)
	AddRefusedKeywords(ctx context.Context, mailboxID int64, labels []string) error
}

// TagOptions turn the tag sync on for an account (notmuch.enabled).
type TagOptions struct {
	// Maildir is the account's Maildir root, absolute (maildir.path):
	// the database's root must be it or a directory above it, and the
	// account reads and writes only messages with a file below it.
	Maildir string
	// Keywords pairs keywords with tags (notmuch.keywords, keyword: tag);
	// nil is tagmap.DefaultKeywords ($Junk: spam).
	Keywords map[string]string
	// Local are the tags that never leave the machine
	// (notmuch.local_tags); nil is tagmap.DefaultLocal.
	Local []string
}

// TagResult is what the tag sync did for an account.
type TagResult struct {
	// TagsAdded and TagsRemoved count tags written in notmuch;
	// KeywordsAdded and KeywordsRemoved keywords stored on the server.
	TagsAdded, TagsRemoved, KeywordsAdded, KeywordsRemoved int
	// Changes lists each change, per side: what --dry-run prints.
	Changes []LabelChange
	// Full: every message was compared (first sync with tags on, or the
	// database has a new UUID).
	Full bool
	// Refused maps a mailbox to the keywords it refused in this run:
	// their tags stay local.
	Refused map[string][]string
	// Err: the tag sync failed, or failed in some mailboxes (joined);
	// what it did is counted above, the rest is tried again next time.
	Err error
}

// LabelChange is one message's change on one side.
type LabelChange struct {
	// Side is "notmuch" (tags of ID) or "server" (keywords of UID in
	// Mailbox).
	Side    string
	Mailbox string
	UID     mail.UID
	ID      string
	Add     []string
	Remove  []string
}

func (c LabelChange) String() string {
	var ops []string
	for _, a := range c.Add {
		ops = append(ops, "+"+a)
	}
	for _, r := range c.Remove {
		ops = append(ops, "-"+r)
	}
	if c.Side == "notmuch" {
		return fmt.Sprintf("notmuch tag %s -- id:%s", strings.Join(ops, " "), c.ID)
	}
	return fmt.Sprintf("server %s UID %d keywords %s", c.Mailbox, c.UID, strings.Join(ops, " "))
}

// String is the tag changes as --dry-run prints them.
func (t *TagResult) String() string {
	if t == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tags: %d to add and %d to remove in notmuch, %d keywords to add and %d to remove on the server\n",
		t.TagsAdded, t.TagsRemoved, t.KeywordsAdded, t.KeywordsRemoved)
	for _, c := range t.Changes {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	for _, mb := range slices.Sorted(mapKeys(t.Refused)) {
		fmt.Fprintf(&b, "  %s refused keywords %s: their tags stay local\n", mb, strings.Join(t.Refused[mb], " "))
	}
	return b.String()
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// tagLocks holds one mutex per database root: notmuch has one writer at
// a time, and accounts sharing a database sync concurrently.
var tagLocks gosync.Map

func lockTags(root string) func() {
	v, _ := tagLocks.LoadOrStore(root, &gosync.Mutex{})
	mu := v.(*gosync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// rowKey names one index row.
type rowKey struct {
	mailbox int64
	uidv    mail.UIDValidity
	uid     mail.UID
}

// writtenIndex is the engine's Index, noting the rows a sync writes: the
// messages whose keywords may have changed on the server, or that are
// new, are among them. The tag sync reads only those (the delta the
// engine learned), not every row.
type writtenIndex struct {
	Index
	mu   gosync.Mutex
	rows map[rowKey]bool
	// uploads are the ids of upload intents, and uploaded the rows they
	// wrote: new local mail, whose tags are news for the server.
	uploads  map[int64]bool
	uploaded map[rowKey]bool
}

func (w *writtenIndex) AddIntents(ctx context.Context, ins []mail.Intent) ([]int64, error) {
	ids, err := w.Index.AddIntents(ctx, ins)
	if err == nil {
		w.mu.Lock()
		for i, in := range ins {
			if in.Kind == mail.IntentUpload && i < len(ids) {
				if w.uploads == nil {
					w.uploads = map[int64]bool{}
				}
				w.uploads[ids[i]] = true
			}
		}
		w.mu.Unlock()
	}
	return ids, err
}

// noteUploads notes the rows written by completing upload intents.
func (w *writtenIndex) noteUploads(ids []int64, changes []mail.RowChange) {
	w.mu.Lock()
	defer w.mu.Unlock()
	up := false
	for _, id := range ids {
		up = up || w.uploads[id]
	}
	if !up {
		return
	}
	if w.uploaded == nil {
		w.uploaded = map[rowKey]bool{}
	}
	for _, c := range changes {
		if !c.Delete {
			w.uploaded[rowKey{c.MailboxID, c.Row.UIDValidity, c.Row.UID}] = true
		}
	}
}

// wasUploaded reports whether the run uploaded the row's message.
func (w *writtenIndex) wasUploaded(k rowKey) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.uploaded[k]
}

func (w *writtenIndex) unwrapIndex() Index { return w.Index }

func (w *writtenIndex) note(mailboxID int64, rows ...mail.Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range rows {
		if m.State == mail.StateSynced && m.UIDValidity != limbo {
			w.rows[rowKey{mailboxID, m.UIDValidity, m.UID}] = true
		}
	}
}

func (w *writtenIndex) noteChanges(changes []mail.RowChange) {
	for _, c := range changes {
		if !c.Delete {
			w.note(c.MailboxID, c.Row)
		}
	}
}

func (w *writtenIndex) PutMessages(ctx context.Context, mailboxID int64, msgs []mail.Message) error {
	err := w.Index.PutMessages(ctx, mailboxID, msgs)
	if err == nil {
		w.note(mailboxID, msgs...)
	}
	return err
}

func (w *writtenIndex) CompleteIntent(ctx context.Context, id int64, changes []mail.RowChange) error {
	err := w.Index.CompleteIntent(ctx, id, changes)
	if err == nil {
		w.noteChanges(changes)
		w.noteUploads([]int64{id}, changes)
	}
	return err
}

func (w *writtenIndex) CompleteIntents(ctx context.Context, ids []int64, changes []mail.RowChange) error {
	err := w.Index.CompleteIntents(ctx, ids, changes)
	if err == nil {
		w.noteChanges(changes)
		w.noteUploads(ids, changes)
	}
	return err
}

func (w *writtenIndex) Apply(ctx context.Context, changes []mail.RowChange) error {
	err := w.Index.Apply(ctx, changes)
	if err == nil {
		w.noteChanges(changes)
	}
	return err
}

// written returns the rows noted so far.
func (w *writtenIndex) written() []rowKey {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]rowKey, 0, len(w.rows))
	for k := range w.rows {
		out = append(out, k)
	}
	return out
}
