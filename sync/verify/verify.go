// Package verify compares an account's three records of its mail – the
// server, the Maildir and the index – and reports every way they
// disagree, changing none of them. It answers "is my backup complete and
// intact?": each message the index knows is where its state says it is
// (both sides, or one side by policy), with the same size and flags on
// both; each local file and each server message is known to the index;
// and, on request (Options.Deep), each message's content is the same on
// both sides.
//
// Like the engine, it works through small interfaces (Remote, Index,
// Folder), whose methods are a subset of the engine's; cmd/satchel wires
// the adapters in. It must not import go-imap, the index (store) or the
// Maildir package. The only thing it writes is the record of a deep run's
// progress (Progress), so that an interrupted run resumes.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// Remote is one IMAP connection, driven by one goroutine at a time. Its
// methods are the engine's (sync.Remote) and Examine. A method whose ctx
// ends closes the connection; after an error verify reconnects.
type Remote interface {
	List(ctx context.Context) ([]mail.RemoteMailbox, error)
	// Namespaces reports the server's namespaces (RFC 2342), which decide
	// folder names as they do for a sync.
	Namespaces(ctx context.Context) (mail.Namespaces, error)
	// Examine opens a mailbox read-only (EXAMINE, RFC 9051 §6.3.3): no
	// later call can change it, \Recent included.
	Examine(ctx context.Context, name string) (mail.MailboxStatus, error)
	// Since: UID, flags, size and INTERNALDATE of the messages with UID
	// >= from in the examined mailbox.
	Since(ctx context.Context, from mail.UID) ([]mail.RemoteMessage, error)
	// FetchBodies streams each message's BODY[] (CRLF) to fn without
	// setting \Seen; gone messages are skipped. Only UID and Size of
	// msgs are read.
	FetchBodies(ctx context.Context, msgs []mail.RemoteMessage, fn func(uid mail.UID, size int64, body io.Reader) error) error
	Close() error
}

// Index is the read side of the engine's index (sync.Index). Verify only
// reads it; cmd/satchel gives it a private copy of the index, opened
// read-only.
type Index interface {
	Mailboxes(ctx context.Context) ([]mail.Mailbox, error)
	Messages(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity) (map[mail.UID]mail.Message, error)
	Intents(ctx context.Context, mailboxID int64) ([]mail.Intent, error)
	Meta(ctx context.Context, key string) (string, bool, error)
}

// Folder is one local Maildir folder, read only: the engine's Folder
// methods that read (sync.Folder) and Open.
type Folder interface {
	// Scan lists the folder, key → flags; a missing folder has none.
	Scan() (map[string]mail.Flags, error)
	// Find returns the flags of key's file, looking in cur/ and new/.
	Find(key string) (mail.Flags, bool, error)
	// Info reads a message to describe it as the server would: its
	// size is that of the CRLF form. seen is the flags the listing showed
	// on the file, whose name they give (the folder is listed again only
	// if it moved since).
	Info(key string, seen mail.Flags) (mail.LocalInfo, error)
	// Open opens key's file as stored (LF line endings), for hashing.
	Open(key string) (io.ReadCloser, error)
}

// Options are the choices of one verification.
type Options struct {
	Account string
	// Include, Exclude and Only select mailboxes as they do for a sync
	// (sync.Options).
	Include, Exclude, Only []string
	// Map gives mailboxes local names, as for a sync (mailboxes.map).
	Map map[string]string
	// Prefix is imap.prefix, as for a sync.
	Prefix *string
	// Deep also compares every message's content: the server's BODY[],
	// in the form a download stores it, against the local file, by
	// SHA-256. Each message is streamed, never held whole.
	Deep   bool
	Logger *slog.Logger
}

// Deps are the adapters verify reads through.
type Deps struct {
	Connect func(ctx context.Context) (Remote, error)
	Index   Index
	// Folder opens the local folder at a path relative to the Maildir
	// root.
	Folder func(rel string) Folder
	// LocalPath maps a mailbox's hierarchy levels to that path, as for a
	// sync.
	LocalPath func(levels []string) (string, error)
	// Folders lists every folder below the Maildir root (relative,
	// "/"-separated), to find folders no mailbox maps to; nil skips that
	// check.
	Folders func() ([]string, error)
	// Stored turns a message as the server sends it (CRLF) into the bytes
	// a download stores, written to w; Close ends the message. Needed
	// for Deep.
	Stored func(w io.Writer) io.WriteCloser
	// Progress remembers the contents a deep run has verified, so that an
	// interrupted run resumes; nil: every deep run starts over.
	Progress Progress
}

// Kind names a kind of difference. The values are stable: they are what
// `satchel --json verify` prints.
type Kind string

// The kinds of difference.
const (
	// MissingRemote: the index has the message on the server, the
	// server does not (it was expunged since the last sync, or lost).
	MissingRemote Kind = "missing-remote"
	// MissingLocal: the index has the message in the Maildir, its file is
	// gone.
	MissingLocal Kind = "missing-local"
	// UnknownRemote: a server message the index does not know (not
	// downloaded yet).
	UnknownRemote Kind = "unknown-remote"
	// UnknownLocal: a local file the index does not know (not uploaded
	// yet, or a stray file).
	UnknownLocal Kind = "unknown-local"
	// Size: the server's RFC822.SIZE differs from the size of the local
	// file in CRLF form.
	Size Kind = "size"
	// Flags: the system flags of the server's copy differ from those in
	// the file's name.
	Flags Kind = "flags"
	// Keywords: the server's keywords differ from those the index keeps.
	Keywords Kind = "keywords"
	// Content: the server's BODY[] and the local file differ (Deep).
	Content Kind = "content"
	// Unreadable: a local file could not be read.
	Unreadable Kind = "unreadable"
	// Renumbered: the mailbox's UIDVALIDITY is not the index's; its
	// messages cannot be compared by UID until a sync re-associates them.
	Renumbered Kind = "uidvalidity"
	// NotSynced: the mailbox has never been synced.
	NotSynced Kind = "not-synced"
	// MailboxGone: the index has a mailbox the server no longer lists.
	MailboxGone Kind = "mailbox-missing-remote"
	// Pending: an interrupted sync left steps to complete.
	Pending Kind = "pending"
	// UnknownFolder: a local folder with messages that no mailbox of the
	// server or the index maps to.
	UnknownFolder Kind = "unknown-folder"
)

// Difference is one disagreement between the server, the Maildir and the
// index.
type Difference struct {
	Kind Kind
	// UID is the server message's, 0 when the difference is about no
	// single server message.
	UID mail.UID
	// Key is the Maildir key of the local file, or the folder of an
	// UnknownFolder; "" when there is none.
	Key    string
	Detail string
}

func (d Difference) String() string {
	s := string(d.Kind)
	if d.UID != 0 {
		s += fmt.Sprintf(" UID %d", d.UID)
	}
	if d.Key != "" {
		s += " " + d.Key
	}
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	return s
}

// MailboxResult is what one mailbox's verification found.
type MailboxResult struct {
	Name  string
	Local string
	// Remote counts the server's messages, Files the folder's.
	Remote, Files int
	// Compared counts the messages found on both sides whose size and
	// flags were compared.
	Compared int
	// Deep counts contents fetched and compared by this run, Resumed
	// those an earlier, interrupted deep run had verified, Shared the
	// Gmail messages compared with the body this run fetched of the same
	// message (one X-GM-MSGID) in another mailbox.
	Deep, Resumed, Shared int
	Differences           []Difference
	// Err: the mailbox could not be verified to the end; Differences
	// holds what was found before.
	Err error
}

// Result is what one account's verification found.
type Result struct {
	Account   string
	Mailboxes []MailboxResult
	// Differences not tied to a mailbox (UnknownFolder).
	Differences []Difference
	// Err: the account could not be verified at all (no connection, no
	// listing, an unreadable index).
	Err error
}

// Count is the number of differences found.
func (r Result) Count() int {
	n := len(r.Differences)
	for _, m := range r.Mailboxes {
		n += len(m.Differences)
	}
	return n
}

// Complete reports whether every selected mailbox was verified to the end.
func (r Result) Complete() bool {
	if r.Err != nil {
		return false
	}
	for _, m := range r.Mailboxes {
		if m.Err != nil {
			return false
		}
	}
	return true
}

// Account verifies one account. It changes nothing on the server (every
// mailbox is examined, bodies are fetched with BODY.PEEK), in the Maildir
// or in the index; with Deep it records its progress through
// deps.Progress, and forgets it once a deep run has covered every
// selected mailbox. One mailbox failing does not stop the others.
func Account(ctx context.Context, opts Options, deps Deps) Result {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	v := &verifier{opts: opts, deps: deps, log: opts.Logger.With("account", opts.Account)}
	defer v.closeRemote()
	res := Result{Account: opts.Account}
	if opts.Deep && deps.Stored == nil {
		res.Err = errors.New("verify contents: no way to store a message given")
		return res
	}
	remote, err := v.remote(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	list, err := remote.List(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	indexed, err := deps.Index.Mailboxes(ctx)
	if err != nil {
		res.Err = fmt.Errorf("read the index: %w", err)
		return res
	}
	ns, err := remote.Namespaces(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	full, err := satsync.FullFolderNames(ctx, deps.Index)
	if err != nil {
		res.Err = fmt.Errorf("read the index: %w", err)
		return res
	}
	v.names = satsync.Options{Include: opts.Include, Exclude: opts.Exclude, Map: opts.Map, Prefix: opts.Prefix, Namespaces: &ns, FullNames: full}
	byName := map[string]mail.Mailbox{}
	for _, mb := range indexed {
		byName[canonicalName(mb.Name)] = mb
	}
	listed := func(name string) bool {
		return slices.ContainsFunc(list, func(m mail.RemoteMailbox) bool { return satsync.SameMailbox(m.Name, name) })
	}

	// --mailbox names the server no longer has are verified as gone if the
	// index knows them.
	var only []string
	var gone []mail.Mailbox
	for _, n := range opts.Only {
		switch mb, inIndex := byName[canonicalName(n)]; {
		case listed(n):
			only = append(only, n)
		case inIndex:
			gone = append(gone, mb)
		default:
			res.Err = fmt.Errorf("mailbox %q: neither on the server nor in the index", n)
			return res
		}
	}
	var sel []satsync.Selection
	if len(opts.Only) == 0 || len(only) > 0 {
		o := v.names
		o.Only = only
		sel, err = satsync.SelectMailboxes(list, o, deps.LocalPath)
		if err != nil {
			res.Err = err
			return res
		}
	}
	if len(opts.Only) == 0 {
		for _, mb := range indexed {
			if !listed(mb.Name) && v.included(mb.Name, list) {
				gone = append(gone, mb)
			}
		}
	}

	for _, s := range sel {
		if s.NoSelect {
			continue
		}
		if err := ctx.Err(); err != nil {
			res.Err = err
			break
		}
		mr := MailboxResult{Name: s.Name, Local: s.Local}
		if s.Err != nil {
			mr.Err = s.Err
			res.Mailboxes = append(res.Mailboxes, mr)
			continue
		}
		var row *mail.Mailbox
		if mb, ok := byName[canonicalName(s.Name)]; ok {
			row = &mb
			mr.Local = mb.LocalPath
		}
		remote, err := v.remote(ctx)
		if err == nil {
			err = v.mailbox(ctx, remote, &mr, row)
		}
		if err != nil {
			mr.Err = err
			if ctx.Err() == nil {
				v.log.Error("mailbox not verified", "mailbox", s.Name, "err", err)
			}
			v.closeRemote()
		}
		res.Mailboxes = append(res.Mailboxes, mr)
	}
	for _, mb := range gone {
		res.Mailboxes = append(res.Mailboxes, v.goneMailbox(ctx, mb))
	}
	slices.SortFunc(res.Mailboxes, func(a, b MailboxResult) int { return strings.Compare(a.Name, b.Name) })

	if deps.Folders != nil && len(opts.Only) == 0 && ctx.Err() == nil {
		diffs, err := v.unknownFolders(list, indexed)
		if err != nil && res.Err == nil {
			res.Err = err
		}
		res.Differences = append(res.Differences, diffs...)
	}
	if err := ctx.Err(); err != nil && res.Err == nil {
		res.Err = err
	}
	if opts.Deep && deps.Progress != nil && res.Complete() {
		// Every content was compared: the next deep run starts afresh.
		if err := deps.Progress.Done(); err != nil {
			res.Err = err
		}
	}
	return res
}

type verifier struct {
	opts Options
	deps Deps
	log  *slog.Logger
	conn Remote
	// names selects and places mailboxes as a sync of the account does.
	names satsync.Options
	// gmailSums holds, by X-GM-MSGID, the SHA-256 of the stored form of
	// each Gmail message whose body this run fetched.
	gmailSums map[uint64][]byte
}

func (v *verifier) remote(ctx context.Context) (Remote, error) {
	if v.conn != nil {
		return v.conn, nil
	}
	c, err := v.deps.Connect(ctx)
	if err != nil {
		return nil, err
	}
	v.conn = c
	return c, nil
}

func (v *verifier) closeRemote() {
	if v.conn != nil {
		v.conn.Close()
		v.conn = nil
	}
}

// included reports whether the configuration's Include and Exclude cover
// a mailbox the server does not list, read with the listing's hierarchy
// delimiter.
func (v *verifier) included(name string, list []mail.RemoteMailbox) bool {
	var delim rune
	for _, m := range list {
		if m.Delim != 0 {
			delim = m.Delim
			break
		}
	}
	sel, err := satsync.SelectMailboxes([]mail.RemoteMailbox{{Name: name, Delim: delim}},
		v.names, func([]string) (string, error) { return "", nil })
	return err == nil && len(sel) == 1
}

// goneMailbox reports a mailbox of the index that the server no longer
// lists, with what the index and the folder still hold of it.
func (v *verifier) goneMailbox(ctx context.Context, mb mail.Mailbox) MailboxResult {
	mr := MailboxResult{Name: mb.Name, Local: mb.LocalPath}
	rows, err := v.deps.Index.Messages(ctx, mb.ID, mb.UIDValidity)
	if err != nil {
		mr.Err = fmt.Errorf("read the index: %w", err)
		return mr
	}
	files, err := v.deps.Folder(mb.LocalPath).Scan()
	if err != nil {
		mr.Err = fmt.Errorf("list folder %s: %w", mb.LocalPath, err)
		return mr
	}
	mr.Files = len(files)
	mr.Differences = append(mr.Differences, Difference{Kind: MailboxGone,
		Detail: fmt.Sprintf("the server no longer lists this mailbox; the index has %d of its messages, the folder %s %d files", len(rows), mb.LocalPath, len(files))})
	return mr
}

// unknownFolders finds local folders holding messages that no mailbox,
// listed or indexed, maps to.
func (v *verifier) unknownFolders(list []mail.RemoteMailbox, indexed []mail.Mailbox) ([]Difference, error) {
	folders, err := v.deps.Folders()
	if err != nil {
		return nil, fmt.Errorf("list the Maildir's folders: %w", err)
	}
	known := map[string]bool{}
	for _, mb := range indexed {
		known[mb.LocalPath] = true
	}
	for _, m := range list {
		levels := m.Path()
		if m.Name == "INBOX" {
			levels = []string{"INBOX"}
		}
		if rel, err := v.deps.LocalPath(levels); err == nil {
			known[rel] = true
		}
	}
	var out []Difference
	for _, rel := range folders {
		if known[rel] {
			continue
		}
		files, err := v.deps.Folder(rel).Scan()
		if err != nil {
			return out, fmt.Errorf("list folder %s: %w", rel, err)
		}
		if len(files) > 0 {
			out = append(out, Difference{Kind: UnknownFolder, Key: rel,
				Detail: fmt.Sprintf("%d messages in a folder that no mailbox on the server or in the index maps to", len(files))})
		}
	}
	return out, nil
}

// canonicalName folds INBOX's case (RFC 9051 §5.1) for lookups by name.
func canonicalName(name string) string {
	if satsync.SameMailbox(name, "INBOX") {
		return "INBOX"
	}
	return name
}
