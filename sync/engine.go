// Package sync is satchel's engine: for each mailbox of an account it
// learns what changed on the server (package imapremote, through the
// Remote interface) and in the Maildir (through Folder), decides what to
// do as a plain-data Plan, and applies it, recording every step in the
// index.
//
// It depends on the conflict package and on the small interfaces below;
// the adapters (imapremote, store, maildir) satisfy them and never import
// this package. cmd/satchel wires them together.
package sync

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/satchel-mail/satchel/conflict"
	"github.com/satchel-mail/satchel/sync/mail"
)

// Remote is one IMAP connection, driven by one goroutine at a time. A
// method whose ctx ends closes the connection. Errors from a Remote leave
// the connection in an unknown state: the engine reconnects.
type Remote interface {
	Mode() mail.SyncMode
	List(ctx context.Context) ([]mail.RemoteMailbox, error)
	// ListStatus is List with each selectable mailbox's status where the
	// server can tell it without a SELECT (LIST-STATUS or STATUS).
	ListStatus(ctx context.Context) ([]mail.RemoteMailbox, error)
	// Namespaces reports the server's namespaces (RFC 2342); Known is
	// false where the server has no NAMESPACE.
	Namespaces(ctx context.Context) (mail.Namespaces, error)
	Select(ctx context.Context, name string) (mail.MailboxStatus, error)
	// StartSelect is Select in two halves: it sends the SELECT and
	// returns a function that waits for the answer, to be called exactly
	// once. Until then only AppendBatch may be called, which then rides
	// in the SELECT's round trip.
	StartSelect(ctx context.Context, name string) func() (mail.MailboxStatus, error)
	// Selected names the mailbox a Select or SelectChanges left open
	// read-write on this connection, "" when none: commands that follow
	// act on it without selecting it again.
	Selected() string
	// SelectChanges selects with QRESYNC (RFC 7162 §3.2.5), only in
	// ModeQResync: the server reports the messages changed since the
	// given MODSEQ (new ones included) and which of the known UIDs
	// vanished; with known nil, every UID below UIDNEXT it reports
	// expunged since that MODSEQ, known or not. A UIDVALIDITY other
	// than the one given makes it a plain SELECT: compare before
	// trusting an empty answer.
	SelectChanges(ctx context.Context, name string, uidValidity mail.UIDValidity, since mail.ModSeq, known []mail.UID) (mail.MailboxStatus, []mail.RemoteMessage, []mail.UID, error)
	// Changes: UID, FLAGS, MODSEQ, size and INTERNALDATE of messages
	// changed after since, new ones included. Only in ModeCondStore or
	// ModeQResync.
	Changes(ctx context.Context, since mail.ModSeq) ([]mail.RemoteMessage, error)
	// StatusChanges reports the status of name, which must be the
	// selected mailbox, and UID, FLAGS and MODSEQ of its messages changed
	// after since, new ones included: STATUS, then CHANGEDSINCE, in one
	// round trip and without selecting again. Every change up to the
	// HIGHESTMODSEQ reported is among those messages (RFC 7162 §3.1.4.1).
	// ok is false, with a nil error, when the answer cannot vouch for the
	// mailbox (no CONDSTORE, NOMODSEQ, a refused command): nothing of it
	// is to be trusted. Only in ModeCondStore or ModeQResync.
	StatusChanges(ctx context.Context, name string, since mail.ModSeq) (st mail.MailboxStatus, changed []mail.RemoteMessage, ok bool, err error)
	// StartStore and StartExpunge are Store and Expunge in two halves, so
	// that a mailbox's flag changes and its expunge's \Deleted STORE go
	// out in one round trip (the UID EXPUNGE, which waits for that STORE,
	// in the next): each sends its commands and returns a function that
	// waits for the last answers and returns what the whole call would. Both may be
	// started before either is waited for; each is waited for exactly
	// once, in the order started, and nothing else is called on the
	// Remote until both are. Nothing that reads the mailbox's state may
	// ride with them: a server may run such a command before the writes
	// sent ahead of it (Dovecot does, RFC 9051 §5.5).
	StartStore(ctx context.Context, changes []mail.FlagChange) func() (map[mail.UID]mail.RemoteMessage, error)
	StartExpunge(ctx context.Context, uids []mail.UID) func() error
	// FlagDeleted sends ahead the \Deleted STORE of a StartExpunge of
	// the same UIDs to come, where the connection can (see
	// imapremote.Client.FlagDeleted); it may do nothing.
	FlagDeleted(ctx context.Context, uids []mail.UID)
	// Scan: UID and FLAGS (and MODSEQ when known) of every message.
	Scan(ctx context.Context) ([]mail.RemoteMessage, error)
	// Meta: flags, MODSEQ, size and INTERNALDATE; messages that are gone
	// are absent.
	Meta(ctx context.Context, uids []mail.UID) ([]mail.RemoteMessage, error)
	// Since: full metadata of the messages with UID >= from.
	Since(ctx context.Context, from mail.UID) ([]mail.RemoteMessage, error)
	// Identify: UID, flags, size, INTERNALDATE and Message-ID of every
	// message, to match messages when UIDs cannot (renumbered mailbox,
	// adopted Maildir).
	Identify(ctx context.Context) ([]mail.RemoteMessage, error)
	// UIDs: every UID in the selected mailbox.
	UIDs(ctx context.Context) ([]mail.UID, error)
	// FetchBodies streams each message's BODY[] (CRLF) to fn without
	// setting \Seen; gone messages are skipped. Only UID and Size
	// (RFC822.SIZE, which decides how a message is fetched) of msgs are
	// read.
	FetchBodies(ctx context.Context, msgs []mail.RemoteMessage, fn func(uid mail.UID, size int64, body io.Reader) error) error

	// Store applies flag changes in the selected mailbox and returns the
	// flags and MODSEQ of each message the server confirmed; a missing
	// UID was refused (changed since UnchangedSince) or is gone.
	Store(ctx context.Context, changes []mail.FlagChange) (map[mail.UID]mail.RemoteMessage, error)
	// AppendBatch appends messages in order, pipelined where the server
	// allows, and says per message whether it was appended; an error
	// means the connection failed, and messages without an answer are in
	// doubt (see mail.Appended).
	AppendBatch(ctx context.Context, mailbox string, msgs []mail.Outgoing) ([]mail.Appended, error)
	// FindNew finds, in the selected mailbox, the lowest UID >= from not
	// in exclude whose size and header hash match; 0 if none.
	FindNew(ctx context.Context, from mail.UID, size int64, headerHash [32]byte, exclude map[mail.UID]bool) (mail.UID, error)
	// Move and Copy return old→new UIDs when the server reports them
	// (COPYUID). Move returns mail.ErrNoMove, sending nothing, without
	// the MOVE capability.
	Move(ctx context.Context, uids []mail.UID, dest string) (map[mail.UID]mail.UID, error)
	Copy(ctx context.Context, uids []mail.UID, dest string) (map[mail.UID]mail.UID, error)
	// Expunge removes exactly these messages, or leaves them flagged
	// \Deleted and returns mail.ErrExpungeDeferred.
	Expunge(ctx context.Context, uids []mail.UID) error
	// Create creates a mailbox (a name in UTF-8, levels joined with the
	// server's delimiter); one that exists already is not an error.
	Create(ctx context.Context, name string) error
	// Subscribe adds a mailbox to the subscriptions (RFC 9051 §6.3.7).
	Subscribe(ctx context.Context, name string) error
	// Status reports a mailbox's status without selecting it; a mailbox
	// the server says does not exist fails with mail.ErrNoMailbox.
	Status(ctx context.Context, name string) (mail.MailboxStatus, error)
	// Rename renames a mailbox and those below it, keeping their UIDs.
	Rename(ctx context.Context, from, to string) error
	// Delete deletes a mailbox; one that does not exist is not an error.
	Delete(ctx context.Context, name string) error
	// Settle ends a run's use of the connection where the server would
	// otherwise make its next session pay for this one's changes
	// (imapremote.Client.Settle); it reports whether it sent anything.
	Settle(ctx context.Context) (bool, error)
	Close() error
}

// Index is satchel's record of the last synced state. Each method that
// changes it is one transaction: after it returns nil the change survives
// a crash.
type Index interface {
	Mailboxes(ctx context.Context) ([]mail.Mailbox, error)
	Mailbox(ctx context.Context, name string) (mail.Mailbox, bool, error)
	EnsureMailbox(ctx context.Context, name, localPath string) (mail.Mailbox, error)
	SaveMailbox(ctx context.Context, m mail.Mailbox) error
	// SaveMailboxes is SaveMailbox for several mailboxes, in one
	// transaction.
	SaveMailboxes(ctx context.Context, ms []mail.Mailbox) error
	// Messages returns the messages recorded under uidvalidity.
	Messages(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity) (map[mail.UID]mail.Message, error)
	// EachMessage calls fn with each message recorded under uidvalidity,
	// by ascending UID, without holding them all; an error from fn stops
	// it and is returned. fn must not use the index.
	EachMessage(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, fn func(mail.Message) error) error
	// MessagesOf calls fn with the rows of the given UIDs recorded under
	// uidvalidity, by ascending UID, reading no other row; UIDs without
	// a row are skipped. fn must not use the index.
	MessagesOf(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, uids []mail.UID, fn func(mail.Message) error) error
	// CountRows counts the rows under uidvalidity of messages on the
	// server (mail.State.OnServer) and of those with a local file
	// (mail.State.OnLocal).
	CountRows(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity) (onServer, onLocal int, err error)
	// MessagesByKey returns the rows with these Maildir keys, under any
	// UIDVALIDITY, by key; keys without a row are absent.
	MessagesByKey(ctx context.Context, mailboxID int64, keys []string) (map[string]mail.Message, error)
	PutMessages(ctx context.Context, mailboxID int64, msgs []mail.Message) error
	DeleteMessages(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, uids []mail.UID) error

	// AddIntents records steps before they start; CompleteIntent records
	// a step's result and forgets its intent in one transaction;
	// DropIntent forgets a step that did not happen. Intents returns the
	// steps of a mailbox a crash left behind.
	AddIntents(ctx context.Context, ins []mail.Intent) ([]int64, error)
	Intents(ctx context.Context, mailboxID int64) ([]mail.Intent, error)
	CompleteIntent(ctx context.Context, id int64, changes []mail.RowChange) error
	// CompleteIntents is CompleteIntent for several steps at once.
	CompleteIntents(ctx context.Context, ids []int64, changes []mail.RowChange) error
	DropIntent(ctx context.Context, id int64) error
	// Apply writes and deletes rows in one transaction, deletions first.
	Apply(ctx context.Context, changes []mail.RowChange) error

	// RenameMailbox gives a mailbox's row a new name and folder, keeping
	// its messages. ResetMailbox forgets its last sync (messages,
	// numbering, stamp, intents; not its limbo rows nor its last sync
	// time): the next sync is a first one. ForgetMailbox removes it.
	RenameMailbox(ctx context.Context, id int64, name, localPath string) error
	// Meta reads a value the index keeps for the account (false: none);
	// SetMeta records one.
	Meta(ctx context.Context, key string) (string, bool, error)
	SetMeta(ctx context.Context, key, value string) error
	ResetMailbox(ctx context.Context, id int64) error
	ForgetMailbox(ctx context.Context, id int64) error
}

// Folder is one local Maildir folder. Every method that changes a file
// has made the change durable (file and directory fsynced) when it
// returns nil.
type Folder interface {
	// Init creates the folder if missing; it writes nothing otherwise.
	Init() error
	// NewKey returns a fresh message key for Deliver.
	NewKey() string
	// Deliver writes a message (CRLF read as LF) under key, into new/ or
	// cur/ by \Seen, mtime date. On error nothing is left behind.
	Deliver(ctx context.Context, key string, body io.Reader, flags mail.Flags, date time.Time) (messageID string, err error)
	// Stage is Deliver in two steps, without the directory fsync: it
	// writes the message under key into tmp/ and returns its Message-ID;
	// Commit (which may run on another goroutine) fsyncs it and moves it
	// into new/ or cur/, where its name is durable only after SyncDirs,
	// and nothing may record it before; Abort removes it. A download
	// reads the next message while the last one's fsync runs.
	Stage(ctx context.Context, key string, body io.Reader, flags mail.Flags, date time.Time) (staged interface {
		Commit() error
		Abort()
	}, messageID string, err error)
	// SyncDirs makes the entries of new/ and cur/ durable.
	SyncDirs() error
	// Find returns the flags of key's file, looking in both cur/ and new/.
	Find(key string) (flags mail.Flags, ok bool, err error)
	// FindAll finds the files of several keys, each first under the name
	// the given flags make (as Deliver names a file), listing the folder
	// at most twice for the others, and returns their flags by key.
	FindAll(want map[string]mail.Flags) (map[string]mail.Flags, error)
	// SetFlags renames key's file to carry flags (system flags only).
	SetFlags(key string, flags mail.Flags) error
	// Remove deletes key's file; an absent file is not an error.
	Remove(key string) error
	// SetFlagsLazy and RemoveLazy are SetFlags and Remove without the
	// directory fsyncs: the change is durable only after SyncDirs, and
	// nothing may record it before. seen is the flags the folder's
	// listing showed on the file: it is found by the name they give
	// without listing the folder again (a listing if it moved since).
	SetFlagsLazy(key string, seen, flags mail.Flags) error
	RemoveLazy(key string, seen mail.Flags) error
	// Count is the number of messages in the folder.
	Count() (int, error)
	// ScanShared lists the folder, key → flags, correct while a mail
	// reader renames files in it. same, if not nil, is given each key
	// found and returns the string the listing keeps for it, equal to
	// the key: the engine passes its index rows' copy, so that a large
	// folder's keys are not held twice.
	ScanShared(same func(key string) string) (map[string]mail.Flags, error)
	// EachFile calls fn with the key and flags of each message file, as a
	// listing finds them, without holding the list; a key found in both
	// new/ and cur/ is reported twice. A missing folder has no files.
	EachFile(fn func(key string, flags mail.Flags)) error
	// Info reads a message to describe it as the server would. seen is
	// the flags the folder's listing showed on the file: it is found by
	// the name they give, without listing the folder again (a listing if
	// it moved since).
	Info(key string, seen mail.Flags) (mail.LocalInfo, error)
	// OpenCRLF opens a message with CRLF line endings, for upload; seen
	// is as for Info.
	OpenCRLF(key string, seen mail.Flags) (io.ReadCloser, error)
	// Stamp identifies the state of the folder's message list (it
	// changes with every delivery, rename and removal); latest is when
	// it last changed. A missing folder has the empty stamp.
	Stamp() (stamp string, latest time.Time, err error)
	// CleanTmp removes from tmp/ the files of the given keys (this
	// program's interrupted deliveries) and files older than 36 hours,
	// nothing else.
	CleanTmp(own []string, now time.Time) error
}

// Errors callers branch on.
var (
	// ErrUIDValidityChanged: the server renumbered a mailbox; satchel
	// refuses to touch it rather than guess which local file is which.
	ErrUIDValidityChanged = errors.New("UIDVALIDITY changed")
	// ErrNameCollision: two remote mailboxes map to one local folder.
	ErrNameCollision = errors.New("two mailboxes map to the same local folder")
	// ErrFolderMoved: the index records a mailbox in another folder than
	// the configuration (layout, mailboxes.map) now gives it.
	ErrFolderMoved = errors.New("mailbox folder moved")
)

// Options are the per-account choices of a sync.
type Options struct {
	Account string
	// Include and Exclude are mailbox globs: "*" matches any run of
	// characters, "%" any run within one hierarchy level, "?" one
	// character. INBOX matches case-insensitively.
	Include, Exclude []string
	// Only, if non-empty, restricts the sync to these mailbox names.
	Only []string
	// DryRun computes and reports the plans and changes nothing.
	DryRun bool
	// Direction is "both" (default), "pull" (never change the server) or
	// "push" (never change the Maildir).
	Direction string
	// Expunge says which sides may lose messages: "both" (default),
	// "local", "remote" or "none".
	Expunge string
	// Trash, when set, is the remote mailbox that locally deleted mail is
	// moved to instead of being expunged.
	Trash string
	// Conflict decides the cases a per-flag merge cannot.
	Conflict conflict.Policy
	// MaxDelete caps what one run may delete in one mailbox
	// (sync.max_delete); nil: no cap. See guardPlans.
	MaxDelete *DeleteLimit
	// Force lets the run do what the safety guards would hold back: more
	// deletions than MaxDelete allows, the mass upload of a first sync.
	Force bool
	// Connections is how many IMAP connections the account may use at
	// once (imap.connections): mailboxes are learned and applied in
	// parallel over them. 0 means 1.
	Connections int
	// Reindex pairs local files with server messages as for a folder
	// synced for the first time, keeping unpaired files local (the index
	// was lost: they may be mail deleted on the server since).
	Reindex bool
	// RemoveFolders (sync.remove_folders): a mailbox deleted on one side
	// is deleted on the other when nothing would be lost there; otherwise,
	// and always when false, it is re-created on the deleting side with
	// its mail. See lifecycle.go.
	RemoveFolders bool
	// Prefix, when set (imap.prefix), is the personal namespace's
	// prefix, whatever NAMESPACE says; a server without NAMESPACE has
	// none unless it is set. See namespace.go.
	Prefix *string
	// Namespaces and FullNames tell SelectMailboxes how the account's
	// folders are named: the server's namespaces, and whether the index
	// keeps whole server names (see FullFolderNames). Account reads both
	// itself.
	Namespaces *mail.Namespaces
	FullNames  bool
	// Map gives mailboxes local names (mailboxes.map): keyed by remote
	// name, or by a special-use attribute (RFC 6154 §2, such as `\Sent`)
	// that applies to the mailbox the server marks with it; a remote name
	// wins over an attribute. A local name is a mailbox name with "/"
	// between its levels, placed by Deps.LocalPath.
	Map map[string]string
	// Since, MaxSize and MaxMessages limit what is downloaded (sync.since,
	// sync.max_size, sync.max_messages): messages received before Since,
	// larger than MaxSize bytes, or older than the MaxMessages newest of
	// their mailbox stay on the server only, recorded as
	// mail.StateSkipped, and are never taken for deletions. Zero values
	// are no limit. FetchSkipped downloads them all regardless.
	Since        time.Time
	MaxSize      int64
	MaxMessages  int
	FetchSkipped bool
	// Tags, when set, syncs notmuch tags with IMAP keywords
	// (notmuch.enabled), through Deps.TagDB and Deps.TagIndex; see
	// tags.go.
	Tags *TagOptions
	// GmailLabels, with Tags, syncs a Gmail account in label mode
	// (gmail.labels: tags; see gmaillabels.go): only the mailboxes of all
	// mail, the trash and spam, with each message's labels as tags.
	GmailLabels *GmailLabelOptions
	// Progress, if set, is told what is downloaded and uploaded.
	Progress Progress
	Logger   *slog.Logger
	Now      func() time.Time
}

// Deps are the adapters the engine drives.
type Deps struct {
	Connect func(ctx context.Context) (Remote, error)
	Index   Index
	// Folder opens the local folder at a path relative to the Maildir
	// root.
	Folder func(rel string) Folder
	// LocalPath maps a mailbox's hierarchy levels to that path.
	LocalPath func(levels []string) (string, error)
	// MkdirAll creates a plain directory there (a \Noselect level).
	MkdirAll func(rel string) error
	// MoveFile moves a message file between folders, keeping its name.
	MoveFile func(fromRel, toRel, key string) error
	// RenameFolder moves a folder (with what is below it); a folder
	// already moved is not an error. RemoveFolder removes an empty folder,
	// keeping its directory if anything else is in it; a missing one is
	// not an error.
	RenameFolder func(fromRel, toRel string) error
	RemoveFolder func(rel string) error
	// LocalFolders, if set, lists the folders below the root with the
	// mailbox levels their paths decode to (the inverse of LocalPath):
	// a folder the server and the index do not know is created on the
	// server.
	LocalFolders func() ([]LocalFolder, error)
	// TagDB and TagIndex serve Options.Tags: the tag database (package
	// sync/notmuch) and the index's tag records (the same store.Index as
	// Index).
	TagDB    TagDB
	TagIndex TagIndex
	// Watcher, if set, starts a Watcher for the run; the run closes it.
	// Without one (or when it fails), a delta sync that changed its
	// folder leaves the comparison of the folder with the index to the
	// next run.
	Watcher func() (Watcher, error)
}

// Watcher follows local folders' message lists while a run changes them
// (maildir.Watcher). Its methods may be called from several goroutines.
type Watcher interface {
	// Watch starts following the folder at rel; changes made before it
	// returns may or may not be reported.
	Watch(rel string) (FolderWatch, error)
	Close() error
}

// FolderWatch is one watched folder. Changed returns the messages whose
// files were added, removed or renamed in the folder since Watch, by
// anyone, by key: the flags of the file the changes left, nil for none
// left (or one there before and untouched); ok is false when that cannot
// be told. (An alias of an unnamed interface: maildir.Watcher names the
// same type.)
type FolderWatch = interface {
	Changed() (changed map[string]*mail.Flags, ok bool)
	Close()
}

// MailboxResult is what happened to one mailbox.
type MailboxResult struct {
	Name  string
	Local string
	Mode  mail.SyncMode
	Plan  *Plan
	// Downloaded counts messages written locally, Bytes their size on
	// the server; Uploaded messages appended to the server; FlagsChanged
	// local files renamed for new flags, FlagsPushed messages whose flags
	// were stored on the server; Removed local files removed because the
	// server expunged them, Deleted messages deleted (or moved to the
	// trash) on the server; Moved messages moved between mailboxes;
	// Deferred deletions left flagged \Deleted; Conflicts cases the
	// conflict rules decided.
	Downloaded, Uploaded, FlagsChanged, FlagsPushed int
	Removed, Deleted, Moved, Deferred, Conflicts    int
	// Reassociated counts messages paired with new UIDs after the
	// mailbox was renumbered (UIDVALIDITY changed).
	Reassociated int
	// Linked counts Gmail messages given a hard link to (or a copy of)
	// the file that holds them in another folder instead of being
	// downloaded again.
	Linked int
	Bytes  int64
	Err    error
	// Held counts what a safety guard held back: the deletions of a
	// mailbox over MaxDelete, or the uploads of a first sync. Safety says
	// why (it wraps ErrTooManyDeletions or ErrTooManyUploads); nil when
	// nothing was held. The mailbox did not fail: the rest of its plan was
	// applied, except after ErrTooManyUploads, where nothing was.
	Held   int
	Safety error
	// Created is true when the mailbox was created on the server in
	// this run, for a folder made locally.
	Created bool
	// Unchanged is true when the mailbox was left alone: its status and
	// its folder were as the last sync left them.
	Unchanged bool
	// Folder, when set, is what became of the mailbox as a whole: renamed
	// or deleted on one side, and what this run did about it.
	Folder *FolderEvent
}

// Result is what happened to one account.
type Result struct {
	Account   string
	Mode      mail.SyncMode
	Mailboxes []MailboxResult
	// Err is set when the account could not be synced at all (no
	// connection, no listing).
	Err      error
	Duration time.Duration
	// Tags is what the tag sync did (Options.Tags); nil when off.
	Tags *TagResult
}

// Failed reports how many mailboxes failed.
func (r Result) Failed() int {
	n := 0
	for _, m := range r.Mailboxes {
		if m.Err != nil {
			n++
		}
	}
	return n
}
