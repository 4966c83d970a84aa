// Package restore uploads an account's Maildir to a server: its own (a
// backup put back on an emptied server) or another account's (a move to
// a new provider). It decides which mailbox each local folder goes back
// to and where its files land in the target account (plan.go), creates
// the missing mailboxes, places the files in the target's Maildir, has
// the engine upload them with a one-way sync, and gives the uploaded
// messages the keywords the source's index records (keywords.go).
//
// Like the engine and sync/verify it works through what it is given: the
// target's server (Remote), the accounts' indexes (Index, ReadIndex),
// and functions for the accounts' locks, files and the push (Deps).
// cmd/satchel wires the adapters in. It must not import go-imap, the IMAP
// adapter, the index (store) or the Maildir package.
package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// Errors a caller branches on.
var (
	// ErrNothing: the source Maildir holds no folder to restore.
	ErrNothing = errors.New("nothing to restore")
	// ErrUnknownMailbox: Options.Only names a mailbox no folder of the
	// Maildir is.
	ErrUnknownMailbox = errors.New("no folder of the Maildir is that mailbox")
)

// Layout places mailboxes in a Maildir: the folder of a mailbox's levels,
// and back (maildir.Layout).
type Layout interface {
	Encode(levels []string) (string, error)
	Decode(rel string) ([]string, error)
}

// Account is one side of a restore, as its configuration has it.
type Account struct {
	Name string
	// Include, Exclude and Map select and name mailboxes as they do for
	// a sync (sync.Options).
	Include, Exclude []string
	Map              map[string]string
	// Prefix is imap.prefix, as for a sync.
	Prefix *string
	Layout Layout
	// Maildir is the account's Maildir root, for messages.
	Maildir string
}

// Options are the choices of one restore.
type Options struct {
	// Source's Maildir is uploaded to Target's server; the same account
	// (by name) restores in place.
	Source, Target Account
	// Only names the mailboxes to restore; none: all.
	Only   []string
	Logger *slog.Logger
}

// Remote is one connection to the target's server, used by one
// goroutine. A method whose ctx ends closes the connection.
type Remote interface {
	List(ctx context.Context) ([]mail.RemoteMailbox, error)
	// Namespaces reports the server's namespaces (RFC 2342), which decide
	// folder names as they do for a sync.
	Namespaces(ctx context.Context) (mail.Namespaces, error)
	// Examine opens a mailbox read-only (RFC 9051 §6.3.3).
	Examine(ctx context.Context, name string) (mail.MailboxStatus, error)
	// Create creates a mailbox; one that exists already is not an error.
	Create(ctx context.Context, name string) error
	Select(ctx context.Context, name string) (mail.MailboxStatus, error)
	// Store applies flag changes in the selected mailbox and returns the
	// flags and MODSEQ of each message the server confirmed.
	Store(ctx context.Context, changes []mail.FlagChange) (map[mail.UID]mail.RemoteMessage, error)
	Close() error
}

// ReadIndex is an account's index read, as the engine's index reads it
// (sync.Index).
type ReadIndex interface {
	Mailboxes(ctx context.Context) ([]mail.Mailbox, error)
	Mailbox(ctx context.Context, name string) (mail.Mailbox, bool, error)
	Messages(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity) (map[mail.UID]mail.Message, error)
	Meta(ctx context.Context, key string) (string, bool, error)
	Close() error
}

// Index is the target's index, open for writing: each change is one
// transaction. Path names it in an error message.
type Index interface {
	ReadIndex
	PutMessages(ctx context.Context, mailboxID int64, msgs []mail.Message) error
	SetMeta(ctx context.Context, key, value string) error
	Path() string
}

// Side names an account of a restore.
type Side int

const (
	Source Side = iota
	Target
)

// Deps are what a restore acts through. All are required.
type Deps struct {
	// Folders lists the source Maildir's folders where its layout puts
	// them, relative to its root and "/"-separated, sorted, those whose
	// names the layout cannot decode included (they fail, alone).
	Folders func() ([]string, error)
	// Connect opens a connection to the target's server.
	Connect func(ctx context.Context) (Remote, error)
	// Lock takes the target's lock and, for another account's Maildir,
	// the source's, so that no sync changes either meanwhile; unlock
	// releases them and may be called more than once.
	Lock func(ctx context.Context) (unlock func(), err error)
	// ReadIndex opens a private, read-only copy of a side's index; false,
	// without an error, where the account has none. Called under Lock.
	ReadIndex func(ctx context.Context, side Side) (ReadIndex, bool, error)
	// OpenIndex opens the target's index for writing, creating it if
	// needed. Called under Lock.
	OpenIndex func(ctx context.Context) (Index, error)
	// CheckIdentity makes sure the target's Maildir is its index's,
	// creating the Maildir root and recording their identity on a first
	// restore (maildir.Root.CheckIdentity). Called under Lock.
	CheckIdentity func(ctx context.Context, ix Index) error
	// Place gives the target's folder to the messages of the source's
	// folder from that it lacks, durably (maildir.Dir.PlaceAll), and
	// returns how many it placed. Only for another account's Maildir.
	Place func(ctx context.Context, from, to string) (int, error)
	// MkdirAll creates a plain directory (a hierarchy level that holds
	// no messages) below the target's Maildir root.
	MkdirAll func(rel string) error
	// SameFolder reports whether two folders of the target's Maildir are
	// one directory (as on a case-insensitive file system).
	SameFolder func(a, b string) bool
	// Push syncs the target one way, uploading every file of the named
	// mailboxes its index does not know, deleting nothing. It takes the
	// target's lock itself; an error means it did not run.
	Push func(ctx context.Context, mailboxes []string) (satsync.Result, error)
}

// Folder is one local folder of a restore and what became of it.
type Folder struct {
	// From is the folder in the source's Maildir.
	From string
	// Mailbox is the mailbox on the target's server.
	Mailbox string
	// To is the folder in the target's Maildir.
	To string
	// Fallback: the source's mailboxes.map names the folder by this
	// special-use attribute, which no mailbox on the server has; the
	// folder is restored under its local name.
	Fallback string
	// Created: the mailbox was created on the server by this restore.
	Created bool
	// Placed counts the files placed in the target's Maildir by this
	// restore.
	Placed int
	// Err is why the folder was not restored; the others were.
	Err error
}

// Result is what a restore did.
type Result struct {
	// Folders are the source's folders the restore selected, in the
	// order it restored them.
	Folders []*Folder
	// Pushed is the push's result: what was uploaded per mailbox.
	Pushed satsync.Result
	// Keywords counts the messages given their keywords.
	Keywords int
	// Err: the restore stopped before the push; nothing was uploaded.
	Err error
	// KeywordsErr: the mail was restored, its keywords not all.
	KeywordsErr error
}

// FolderLabel names a folder, relative to its Maildir root, in a
// message: the root itself (Maildir++'s INBOX) is ".".
func FolderLabel(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

// restorer is one restore under way.
type restorer struct {
	opts    Options
	deps    Deps
	log     *slog.Logger
	inPlace bool
}

// Restore restores opts.Source's Maildir to opts.Target's server in four
// steps, each of which a later run repeats harmlessly:
//
//  1. map each folder of the source's Maildir to a mailbox name (the
//     inverse of its layout, with the server's hierarchy delimiter),
//     select them by the target's include and exclude rules and
//     Options.Only, and place each in the folder the target's layout
//     gives it;
//  2. refuse mailboxes whose index rows belong to another UIDVALIDITY
//     than the server's (the index describes another server: a sync
//     would keep those files local, never upload them);
//  3. create the missing mailboxes on the server; for another account,
//     place the files in the target's Maildir (hard links, or durable
//     copies);
//  4. push: the engine uploads every file the target's index does not
//     know, recording each upload as an intent first, so that after a
//     crash the next run finds what was uploaded instead of uploading it
//     again.
//
// Restoring another account's Maildir, it then restores the keywords.
func Restore(ctx context.Context, opts Options, deps Deps) Result {
	r := &restorer{opts: opts, deps: deps, inPlace: opts.Source.Name == opts.Target.Name,
		log: opts.Logger.With("account", opts.Target.Name)}
	folders, pushed, err := r.restore(ctx)
	res := Result{Folders: folders, Pushed: pushed, Err: err}
	if err == nil && !r.inPlace && pushed.Err == nil {
		res.Keywords, res.KeywordsErr = r.keywords(ctx, folders)
	}
	return res
}

// restore runs the four steps. An error means nothing was uploaded.
func (r *restorer) restore(ctx context.Context) ([]*Folder, satsync.Result, error) {
	froms, err := r.deps.Folders()
	if err != nil {
		return nil, satsync.Result{}, err
	}
	if len(froms) == 0 {
		return nil, satsync.Result{}, fmt.Errorf("%w: %s holds no Maildir folder (a directory with cur/ and new/)", ErrNothing, r.opts.Source.Maildir)
	}
	remote, err := r.deps.Connect(ctx)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	defer func() {
		if remote != nil {
			remote.Close()
		}
	}()
	// The target's lock keeps its syncs away while its Maildir and index
	// are prepared; the source's keeps its Maildir still while it is
	// read.
	unlock, err := r.deps.Lock(ctx)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	defer func() { unlock() }()

	list, err := remote.List(ctx)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	names, err := r.names(ctx, remote)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	p := planner{src: r.opts.Source, dst: r.opts.Target, only: r.opts.Only, names: names, inPlace: r.inPlace, sameFolder: r.deps.SameFolder}
	folders, err := p.plan(froms, list)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	for _, f := range folders {
		if f.Err == nil && f.Fallback != "" {
			r.log.Warn("no mailbox on the server has the special-use attribute mailboxes.map names the folder by: restored under its local name",
				"folder", FolderLabel(f.From), "attribute", f.Fallback, "mailbox", f.Mailbox)
		}
	}
	ix, err := r.deps.OpenIndex(ctx)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	err = checkIndex(ctx, ix, remote, list, folders)
	if err == nil {
		// Creates the target's Maildir root and its identity file on a
		// first run; refuses a Maildir that is not the index's.
		err = r.deps.CheckIdentity(ctx, ix)
	}
	if cerr := ix.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, satsync.Result{}, err
	}

	selectable := func(list []mail.RemoteMailbox, name string) bool {
		return slices.ContainsFunc(list, func(m mail.RemoteMailbox) bool { return satsync.SameMailbox(m.Name, name) && !m.NoSelect })
	}
	created := false
	for _, f := range folders {
		if err := ctx.Err(); err != nil {
			return folders, satsync.Result{}, err
		}
		if f.Err != nil || selectable(list, f.Mailbox) {
			continue
		}
		if f.Err = remote.Create(ctx, f.Mailbox); f.Err == nil {
			f.Created, created = true, true
			r.log.Info("created mailbox", "mailbox", f.Mailbox)
		}
	}
	if created {
		// A server may take a CREATE without making the name a mailbox
		// that holds messages (it stays a \Noselect level).
		if list, err = remote.List(ctx); err != nil {
			return folders, satsync.Result{}, err
		}
	}
	levels, err := p.replace(folders, list)
	if err != nil {
		return folders, satsync.Result{}, err
	}
	var push []string
	for _, f := range folders {
		if err := ctx.Err(); err != nil {
			return folders, satsync.Result{}, err
		}
		if f.Err != nil {
			continue
		}
		if !selectable(list, f.Mailbox) {
			f.Err = fmt.Errorf("the server did not create mailbox %q as one that can hold messages", f.Mailbox)
			continue
		}
		if !r.inPlace {
			// Durable before the push records any upload of them.
			if f.Placed, f.Err = r.deps.Place(ctx, f.From, f.To); f.Err != nil {
				continue
			}
		}
		push = append(push, f.Mailbox)
	}
	for _, rel := range levels {
		if err := r.deps.MkdirAll(rel); err != nil {
			return folders, satsync.Result{}, err
		}
	}
	unlock()
	remote.Close()
	remote = nil
	if len(push) == 0 {
		return folders, satsync.Result{Account: r.opts.Target.Name}, nil
	}
	res, err := r.deps.Push(ctx, push)
	return folders, res, err
}

// names says how a sync of the target names folders (see sync's
// namespace.go): the server's namespaces, imap.prefix, and whether the
// target's index keeps whole server names. A restore places each folder
// where that sync would, and gives it the mailbox that sync would make
// of it.
func (r *restorer) names(ctx context.Context, remote Remote) (satsync.Options, error) {
	ns, err := remote.Namespaces(ctx)
	if err != nil {
		return satsync.Options{}, err
	}
	names := satsync.Options{Namespaces: &ns, Prefix: r.opts.Target.Prefix}
	ix, ok, err := r.deps.ReadIndex(ctx, Target)
	if err != nil || !ok {
		return names, err // a new index names folders the new way
	}
	defer ix.Close()
	names.FullNames, err = satsync.FullFolderNames(ctx, ix)
	return names, err
}

// checkIndex refuses a target index that describes another server: rows
// of a restored mailbox under a UIDVALIDITY the server's mailbox does not
// have. A sync would take such a mailbox for renumbered and keep its
// files local, never uploading them.
func checkIndex(ctx context.Context, ix Index, remote Remote, list []mail.RemoteMailbox, folders []*Folder) error {
	for _, f := range folders {
		if f.Err != nil {
			continue
		}
		mb, ok, err := ix.Mailbox(ctx, f.Mailbox)
		if err != nil {
			return err
		}
		if !ok || mb.UIDValidity == 0 {
			continue
		}
		rows, err := ix.Messages(ctx, mb.ID, mb.UIDValidity)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			continue
		}
		var now mail.UIDValidity
		if slices.ContainsFunc(list, func(m mail.RemoteMailbox) bool { return satsync.SameMailbox(m.Name, f.Mailbox) && !m.NoSelect }) {
			st, err := remote.Examine(ctx, f.Mailbox)
			if err != nil {
				return err
			}
			now = st.UIDValidity
		}
		if now != mb.UIDValidity {
			return fmt.Errorf("%w: the index %s has %d messages of %q under UIDVALIDITY %d, which the server's mailbox does not have: it describes another server, and a restore would keep those files local. Move the index away and restore again (the files are then paired with the server's messages by Message-ID and size, and the rest uploaded); nothing was changed",
				satsync.ErrUIDValidityChanged, ix.Path(), len(rows), f.Mailbox, mb.UIDValidity)
		}
	}
	return nil
}
