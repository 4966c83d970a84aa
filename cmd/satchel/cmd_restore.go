package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/mail"
)

type restoreOptions struct {
	source, target string
	mailboxes      []string
	// force lets the mass upload through the first-sync guard; wait
	// waits for the accounts' locks.
	force, wait bool
}

func newRestoreCommand(g *globals, code *int) *cli.Command {
	var opts restoreOptions
	return &cli.Command{
		Name:      "restore",
		Usage:     "upload an account's Maildir to a server: its own, or another account's",
		ArgsUsage: "ACCOUNT",
		Description: `Uploads every message of ACCOUNT's Maildir to the server of the account
given with --to (by default ACCOUNT's own server), with its flags and its
file's mtime as INTERNALDATE. Each local folder becomes the mailbox its
name decodes to in ACCOUNT's layout (verbatim or maildir++), created on the
server if missing, unless ACCOUNT's mailboxes.map names the folder: then it
becomes the mailbox of the map's key, a remote name as written, or for a
special-use attribute (\Sent) the mailbox the server lists with it. When
the server lists no mailbox with that attribute, the folder keeps its own
name, with a warning; when it lists several, the folder fails. A folder
that is the same mailbox as a folder the map names is skipped, as is, in
place, a folder whose mailbox the map gives another folder. With --to, the
files go to the folder the target's mailboxes.map and layout give each
mailbox.

With --to, the messages are first placed in the target account's Maildir,
as hard links where the two Maildirs share a file system (as copies
otherwise), and the target's index is built as they are uploaded: once a
restore has completed, a sync of either account has nothing to do. The
keywords the source's index records ($Junk, $label1, ...), which a file
name cannot carry, are stored on the uploaded messages as well. The two
accounts must not share a Maildir.

An interrupted restore (Ctrl-C, a lost connection, a crash) is resumed
by running it again: nothing is uploaded twice. Messages the server
already has (the same Message-ID and size) are not uploaded again either.

A mailbox that would receive more than 100 messages is held back by the
first-sync guard (exit 4) until the restore runs with --force.

Examples:
   satchel restore old --to new --force
   satchel restore personal --mailbox INBOX`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "upload to this `ACCOUNT`'s server (default: ACCOUNT's own)", Destination: &opts.target},
			&cli.StringSliceFlag{Name: "mailbox", Usage: "restore only this mailbox (repeatable)"},
			&cli.BoolFlag{Name: "force", Usage: "upload mailboxes of more than 100 messages (the first-sync guard)", Destination: &opts.force},
			&cli.BoolFlag{Name: "wait", Usage: "wait for other satchel runs on the accounts to finish instead of exiting 75", Destination: &opts.wait},
		},
		Action: func(c *cli.Context) error {
			opts.mailboxes = c.StringSlice("mailbox")
			args, err := tailFlags{
				strs:  map[string]*string{"to": &opts.target},
				lists: map[string]*[]string{"mailbox": &opts.mailboxes},
				bools: map[string]*bool{"force": &opts.force, "wait": &opts.wait},
			}.parse(c.Args().Slice())
			if err != nil {
				return err
			}
			if len(args) != 1 {
				return usageError{errors.New("restore takes one ACCOUNT, whose Maildir is uploaded")}
			}
			opts.source = args[0]
			*code = runRestore(c.Context, g, opts)
			return nil
		},
	}
}

// restoreFolder is one local folder of a restore and what became of it.
type restoreFolder struct {
	from string // the folder in the source Maildir
	name string // the mailbox on the target server
	to   string // the folder in the target Maildir
	// fallback: the source's mailboxes.map names the folder by this
	// special-use attribute, which no mailbox on the server has; the
	// folder is restored under its local name.
	fallback string
	// created: the mailbox was created on the server by this run;
	// linked: files placed in the target Maildir by this run.
	created bool
	linked  int
	err     error
}

// restoreRemote is what restore asks of the target server before the
// engine uploads: the mailboxes there, their UIDVALIDITY, and the
// creation of missing ones.
type restoreRemote interface {
	List(ctx context.Context) ([]mail.RemoteMailbox, error)
	Namespaces(ctx context.Context) (mail.Namespaces, error)
	Examine(ctx context.Context, name string) (mail.MailboxStatus, error)
	Create(ctx context.Context, name string) error
	Close() error
}

// errNothingToRestore: the source Maildir holds no folder to restore.
var errNothingToRestore = errors.New("nothing to restore")

// runRestore restores one account's Maildir and returns the exit code, as
// for sync.
func runRestore(ctx context.Context, g *globals, opts restoreOptions) int {
	cfg, err := loadConfig(g)
	if err != nil {
		return reportFatal(g, err)
	}
	srcs, err := cfg.Select([]string{opts.source})
	if err != nil {
		return reportFatal(g, err)
	}
	src, dst := srcs[0], srcs[0]
	if opts.target != "" {
		dsts, err := cfg.Select([]string{opts.target})
		if err != nil {
			return reportFatal(g, err)
		}
		dst = dsts[0]
	}
	if dst.Name != src.Name {
		switch {
		case samePath(src.Maildir, dst.Maildir):
			return reportFatal(g, usageError{fmt.Errorf("accounts %s and %s share the Maildir %s; restore it with satchel restore %s, or give %s a Maildir of its own",
				src.Name, dst.Name, src.Maildir, dst.Name, dst.Name)})
		case samePath(src.Index, dst.Index):
			return reportFatal(g, usageError{fmt.Errorf("accounts %s and %s share the index %s", src.Name, dst.Name, src.Index)})
		}
	}
	trace, closeTrace, err := openTrace(g)
	if err != nil {
		return reportFatal(g, err)
	}
	defer closeTrace()

	start := time.Now()
	folders, res, err := restoreAccount(ctx, g, src, dst, opts, trace)
	var out outcome
	if err != nil {
		fmt.Fprintf(g.stderr, "satchel: %s: %s\n", dst.Name, withHint(err))
		out.account(err, nil)
		if g.json {
			printRestoreResults(g, src, dst, folders, satsync.Result{Account: dst.Name, Err: err}, 0, time.Since(start))
		}
		return out.code()
	}
	for _, f := range folders {
		if f.err != nil {
			fmt.Fprintf(g.stderr, "satchel: %s: %s: %s\n", dst.Name, folderLabel(f.from), withHint(f.err))
			out.failures++
		}
	}
	if res.Err != nil {
		fmt.Fprintf(g.stderr, "satchel: %s: %s\n", dst.Name, withHint(res.Err))
	}
	for _, m := range res.Mailboxes {
		if m.Err != nil && !(errors.Is(res.Err, context.Canceled) && errors.Is(m.Err, context.Canceled)) {
			fmt.Fprintf(g.stderr, "satchel: %s: %s: %s\n", dst.Name, m.Name, withHint(m.Err))
		}
		if m.Safety != nil {
			hint := ""
			if errors.Is(m.Safety, satsync.ErrTooManyUploads) {
				hint = fmt.Sprintf("; to restore it, run satchel restore %s", restoreArgs(src, dst, m.Name))
			}
			fmt.Fprintf(g.stderr, "satchel: %s: %s: %s%s\n", dst.Name, m.Name, m.Safety, hint)
		}
	}
	out.account(nil, &res)
	keywords := 0
	if dst.Name != src.Name && res.Err == nil {
		if keywords, err = restoreKeywords(ctx, g, src, dst, folders, opts, trace); err != nil {
			fmt.Fprintf(g.stderr, "satchel: %s: %s\n", dst.Name, withHint(err))
			out.account(err, nil)
		}
	}
	printRestoreResults(g, src, dst, folders, res, keywords, time.Since(start))
	return out.code()
}

// restoreArgs is the command line that restores one mailbox past the
// first-sync guard.
func restoreArgs(src, dst config.Account, mailbox string) string {
	s := src.Name
	if dst.Name != src.Name {
		s += " --to " + dst.Name
	}
	return s + " --mailbox " + shellQuote(mailbox) + " --force"
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// restoreAccount restores src's Maildir to dst's server in four steps,
// each of which a later run repeats harmlessly:
//
//  1. map each folder of src's Maildir to a mailbox name (the inverse of
//     src's layout, with the server's hierarchy delimiter), select them by
//     dst's include and exclude rules and --mailbox, and place each in the
//     folder dst's layout gives it;
//  2. refuse mailboxes whose index rows belong to another UIDVALIDITY
//     than the server's (the index describes another server: a sync
//     would keep those files local, never upload them);
//  3. create the missing mailboxes on the server; with --to, place the
//     files in dst's Maildir (hard links, or durable copies);
//  4. sync dst one way, push, without deleting anything: the engine
//     uploads every file its index does not know, recording each upload
//     as an intent first, so that after a crash the next run finds what
//     was uploaded instead of uploading it again.
//
// An error means nothing was uploaded.
func restoreAccount(ctx context.Context, g *globals, src, dst config.Account, opts restoreOptions, trace io.Writer) ([]*restoreFolder, satsync.Result, error) {
	inPlace := src.Name == dst.Name
	// The two accounts may have different layouts: a folder is read where
	// src's layout puts it and placed where dst's does.
	srcRoot, local := accountRoot(src), accountRoot(dst)
	froms, err := layoutFolders(srcRoot)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	if len(froms) == 0 {
		return nil, satsync.Result{}, fmt.Errorf("%w: %s holds no Maildir folder (a directory with cur/ and new/)", errNothingToRestore, src.Maildir)
	}
	c, err := imapremote.Dial(ctx, remoteOptions(dst, trace, g))
	if err != nil {
		return nil, satsync.Result{}, loginError(dst, err)
	}
	var remote restoreRemote = c
	defer func() {
		if remote != nil {
			remote.Close()
		}
	}()
	// The target's lock keeps its syncs away while its Maildir and index
	// are prepared; the source's keeps its Maildir still while it is
	// read.
	unlock, err := lockForRestore(ctx, src, dst, inPlace, opts.wait)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	defer func() { unlock() }()

	list, err := remote.List(ctx)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	naming, err := restoreNames(ctx, remote, dst)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	folders, err := restorePlan(froms, src, dst, list, opts.mailboxes, naming)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	for _, f := range folders {
		if f.err == nil && f.fallback != "" {
			g.log.Warn("no mailbox on the server has the special-use attribute mailboxes.map names the folder by: restored under its local name",
				"account", dst.Name, "folder", folderLabel(f.from), "attribute", f.fallback, "mailbox", f.name)
		}
	}
	ix, err := store.Open(ctx, dst.Index)
	if err != nil {
		return nil, satsync.Result{}, err
	}
	err = checkRestoreIndex(ctx, ix, remote, list, folders)
	if err == nil {
		// Creates the target's Maildir root and its identity file on a
		// first run; refuses a Maildir that is not the index's.
		err = (maildir.Root{Dir: dst.Maildir}).CheckIdentity(ctx, ix, dst.Name, true)
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
		if f.err != nil || selectable(list, f.name) {
			continue
		}
		if f.err = remote.Create(ctx, f.name); f.err == nil {
			f.created, created = true, true
			g.log.Info("created mailbox", "account", dst.Name, "mailbox", f.name)
		}
	}
	if created {
		// A server may take a CREATE without making the name a mailbox
		// that holds messages (it stays a \Noselect level).
		if list, err = remote.List(ctx); err != nil {
			return folders, satsync.Result{}, err
		}
	}
	levels, err := replaceFolders(folders, list, dst, opts.mailboxes, inPlace, naming)
	if err != nil {
		return folders, satsync.Result{}, err
	}
	var names []string
	for _, f := range folders {
		if err := ctx.Err(); err != nil {
			return folders, satsync.Result{}, err
		}
		if f.err != nil {
			continue
		}
		if !selectable(list, f.name) {
			f.err = fmt.Errorf("the server did not create mailbox %q as one that can hold messages", f.name)
			continue
		}
		if !inPlace {
			// Durable before the push records any upload of them.
			if f.linked, f.err = local.Folder(f.to).Dir.PlaceAll(ctx, srcRoot.Folder(f.from).Dir); f.err != nil {
				continue
			}
		}
		names = append(names, f.name)
	}
	for _, rel := range levels {
		if err := local.MkdirAll(rel); err != nil {
			return folders, satsync.Result{}, err
		}
	}
	unlock()
	remote.Close()
	remote = nil
	if len(names) == 0 {
		return folders, satsync.Result{Account: dst.Name}, nil
	}

	// A push never changes the Maildir; with expunge "none" nothing is
	// deleted on the server either, whatever happens to the files
	// meanwhile.
	acc := dst
	acc.Sync.Direction, acc.Sync.Expunge, acc.Sync.Trash = "push", "none", ""
	res, err := syncAccount(ctx, g, acc, syncOptions{mailboxes: names, force: opts.force, wait: opts.wait}, trace)
	return folders, res, err
}

// lockForRestore takes the target account's lock and, with --to, the
// source's when it has an index directory; the returned function releases
// them and may be called more than once.
func lockForRestore(ctx context.Context, src, dst config.Account, inPlace, wait bool) (func(), error) {
	var locks []*store.FileLock
	release := func() {
		for _, l := range locks {
			l.Unlock()
		}
		locks = nil
	}
	take := func(acc config.Account) error {
		path := acc.Index + ".lock"
		l, err := store.Lock(ctx, path, wait)
		if errors.Is(err, store.ErrLocked) && ctx.Err() == nil {
			return fmt.Errorf("account %s: %w (%s); try again when it has finished, or use restore --wait", acc.Name, store.ErrLocked, path)
		}
		if err != nil {
			return err
		}
		locks = append(locks, l)
		return nil
	}
	if err := take(dst); err != nil {
		return release, err
	}
	if !inPlace {
		if _, err := os.Stat(filepath.Dir(src.Index)); err == nil {
			if err := take(src); err != nil {
				release()
				return release, err
			}
		}
	}
	return release, nil
}

// checkRestoreIndex refuses a target index that describes another server:
// rows of a restored mailbox under a UIDVALIDITY the server's mailbox does
// not have. A sync would take such a mailbox for renumbered and keep its
// files local, never uploading them.
func checkRestoreIndex(ctx context.Context, ix *store.Index, remote restoreRemote, list []mail.RemoteMailbox, folders []*restoreFolder) error {
	for _, f := range folders {
		if f.err != nil {
			continue
		}
		mb, ok, err := ix.Mailbox(ctx, f.name)
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
		if slices.ContainsFunc(list, func(m mail.RemoteMailbox) bool { return satsync.SameMailbox(m.Name, f.name) && !m.NoSelect }) {
			st, err := remote.Examine(ctx, f.name)
			if err != nil {
				return err
			}
			now = st.UIDValidity
		}
		if now != mb.UIDValidity {
			return fmt.Errorf("%w: the index %s has %d messages of %q under UIDVALIDITY %d, which the server's mailbox does not have: it describes another server, and a restore would keep those files local. Move the index away and restore again (the files are then paired with the server's messages by Message-ID and size, and the rest uploaded); nothing was changed",
				satsync.ErrUIDValidityChanged, ix.Path(), len(rows), f.name, mb.UIDValidity)
		}
	}
	return nil
}

// samePath reports whether two paths name the same file or directory,
// existing or not.
func samePath(a, b string) bool {
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil {
			return os.SameFile(fa, fb)
		}
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

type jsonRestoreMailbox struct {
	Name     string `json:"name"`
	From     string `json:"from"`
	Local    string `json:"local"`
	Created  bool   `json:"created"`
	Linked   int    `json:"linked"`
	Uploaded int    `json:"uploaded"`
	Held     int    `json:"held"`
	Error    string `json:"error,omitempty"`
	Safety   string `json:"safety,omitempty"`
}

type jsonRestore struct {
	Source    string               `json:"source"`
	Target    string               `json:"target"`
	Seconds   float64              `json:"seconds"`
	Keywords  int                  `json:"keywords_restored"`
	Error     string               `json:"error,omitempty"`
	Mailboxes []jsonRestoreMailbox `json:"mailboxes"`
}

// printRestoreResults prints one summary line, or the JSON document.
func printRestoreResults(g *globals, src, dst config.Account, folders []*restoreFolder, res satsync.Result, keywords int, took time.Duration) {
	doc := jsonRestore{Source: src.Name, Target: dst.Name, Seconds: took.Seconds(), Keywords: keywords, Mailboxes: []jsonRestoreMailbox{}}
	if res.Err != nil {
		doc.Error = withHint(res.Err)
	}
	var created, linked, uploaded, held, failed int
	for _, f := range folders {
		jm := jsonRestoreMailbox{Name: f.name, From: f.from, Local: f.to, Created: f.created, Linked: f.linked}
		err := f.err
		for _, m := range res.Mailboxes {
			if f.name != "" && satsync.SameMailbox(m.Name, f.name) {
				jm.Uploaded, jm.Held = m.Uploaded, m.Held
				if err == nil {
					err = m.Err
				}
				if m.Safety != nil {
					jm.Safety = m.Safety.Error()
				}
			}
		}
		if err != nil {
			jm.Error = withHint(err)
			failed++
		}
		if f.created {
			created++
		}
		linked += f.linked
		uploaded += jm.Uploaded
		held += jm.Held
		doc.Mailboxes = append(doc.Mailboxes, jm)
	}
	if g.json {
		writeJSON(g, struct {
			Restores []jsonRestore `json:"restores"`
		}{[]jsonRestore{doc}})
		return
	}
	if g.quiet {
		return
	}
	from := src.Maildir
	if src.Name != dst.Name {
		from = src.Name + " (" + src.Maildir + ")"
	}
	line := fmt.Sprintf("%s: restored from %s: %d mailboxes (%d created)", dst.Name, from, len(folders), created)
	if src.Name != dst.Name {
		line += fmt.Sprintf(", %d files placed in %s", linked, dst.Maildir)
	}
	line += fmt.Sprintf(", %d uploaded", uploaded)
	if keywords > 0 {
		line += fmt.Sprintf(", keywords restored on %d", keywords)
	}
	if failed > 0 {
		line += fmt.Sprintf(", %d failed", failed)
	}
	if held > 0 {
		line += fmt.Sprintf(", %d held back by the first-sync guard (use --force)", held)
	}
	fmt.Fprintf(g.stdout, "%s in %s\n", line, took.Round(time.Millisecond))
}

// restoreNames says how a sync of dst names folders (see sync's
// namespace.go): the server's namespaces, imap.prefix, and whether dst's
// index keeps whole server names. A restore places each folder where that
// sync would, and gives it the mailbox that sync would make of it.
func restoreNames(ctx context.Context, remote restoreRemote, dst config.Account) (satsync.Options, error) {
	ns, err := remote.Namespaces(ctx)
	if err != nil {
		return satsync.Options{}, err
	}
	names := satsync.Options{Namespaces: &ns, Prefix: dst.IMAP.Prefix}
	if _, err := os.Stat(dst.Index); errors.Is(err, os.ErrNotExist) {
		return names, nil // a new index names folders the new way
	}
	ix, err := store.OpenReadOnly(ctx, dst.Index)
	if err != nil {
		return satsync.Options{}, err
	}
	defer ix.Close()
	names.FullNames, err = satsync.FullFolderNames(ctx, ix)
	return names, err
}
