package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/restore"
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
	res := restore.Restore(ctx, restore.Options{
		Source: restoreAccount(src),
		Target: restoreAccount(dst),
		Only:   opts.mailboxes,
		Logger: g.log,
	}, restoreDeps(g, src, dst, opts, trace))
	if errors.Is(res.Err, restore.ErrUnknownMailbox) {
		res.Err = usageError{fmt.Errorf("--mailbox %w", res.Err)}
	}
	var out outcome
	if res.Err != nil {
		fmt.Fprintf(g.stderr, "satchel: %s: %s\n", dst.Name, withHint(res.Err))
		out.account(res.Err, nil)
		if g.json {
			res.Pushed = satsync.Result{Account: dst.Name, Err: res.Err}
			printRestoreResults(g, src, dst, res, time.Since(start))
		}
		return out.code()
	}
	for _, f := range res.Folders {
		if f.Err != nil {
			fmt.Fprintf(g.stderr, "satchel: %s: %s: %s\n", dst.Name, restore.FolderLabel(f.From), withHint(f.Err))
			out.failures++
		}
	}
	pushed := res.Pushed
	if pushed.Err != nil {
		fmt.Fprintf(g.stderr, "satchel: %s: %s\n", dst.Name, withHint(pushed.Err))
	}
	for _, m := range pushed.Mailboxes {
		if m.Err != nil && !(errors.Is(pushed.Err, context.Canceled) && errors.Is(m.Err, context.Canceled)) {
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
	out.account(nil, &pushed)
	if res.KeywordsErr != nil {
		fmt.Fprintf(g.stderr, "satchel: %s: %s\n", dst.Name, withHint(res.KeywordsErr))
		out.account(res.KeywordsErr, nil)
	}
	printRestoreResults(g, src, dst, res, time.Since(start))
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

// restoreAccount is an account's configuration as a restore reads it.
func restoreAccount(acc config.Account) restore.Account {
	return restore.Account{
		Name:    acc.Name,
		Include: acc.Mailboxes.Include,
		Exclude: acc.Mailboxes.Exclude,
		Map:     acc.Mailboxes.Map,
		Prefix:  acc.IMAP.Prefix,
		Layout:  accountRoot(acc).Layout,
		Maildir: acc.Maildir,
	}
}

// restoreDeps wires a restore of src's Maildir to dst's server: dst's
// server and index, both accounts' locks and Maildirs, and the push, a
// sync of dst one way that deletes nothing.
func restoreDeps(g *globals, src, dst config.Account, opts restoreOptions, trace io.Writer) restore.Deps {
	srcRoot, local := accountRoot(src), accountRoot(dst)
	ropts := remoteOptions(dst, trace, g)
	return restore.Deps{
		Folders: srcRoot.AllFolders,
		Connect: func(ctx context.Context) (restore.Remote, error) {
			c, err := imapremote.Dial(ctx, ropts)
			if err != nil {
				return nil, loginError(dst, err)
			}
			return c, nil
		},
		Lock: func(ctx context.Context) (func(), error) {
			return lockForRestore(ctx, g, src, dst, opts.wait)
		},
		ReadIndex: func(ctx context.Context, side restore.Side) (restore.ReadIndex, bool, error) {
			acc := dst
			if side == restore.Source {
				acc = src
			}
			if _, err := os.Stat(acc.Index); errors.Is(err, fs.ErrNotExist) {
				return nil, false, nil
			}
			ix, err := store.OpenReadOnly(ctx, acc.Index)
			if err != nil {
				return nil, false, err
			}
			return ix, true, nil
		},
		OpenIndex: func(ctx context.Context) (restore.Index, error) {
			ix, err := store.Open(ctx, dst.Index)
			if err != nil {
				return nil, err
			}
			return ix, nil
		},
		CheckIdentity: func(ctx context.Context, ix restore.Index) error {
			return local.CheckIdentity(ctx, ix, dst.Name, true)
		},
		Place: func(ctx context.Context, from, to string) (int, error) {
			return local.Folder(to).Dir.PlaceAll(ctx, srcRoot.Folder(from).Dir)
		},
		MkdirAll: local.MkdirAll,
		SameFolder: func(a, b string) bool {
			return samePath(local.Folder(a).Dir.Path, local.Folder(b).Dir.Path)
		},
		Push: func(ctx context.Context, mailboxes []string) (satsync.Result, error) {
			// A push never changes the Maildir; with expunge "none"
			// nothing is deleted on the server either, whatever happens
			// to the files meanwhile.
			acc := dst
			acc.Sync.Direction, acc.Sync.Expunge, acc.Sync.Trash = "push", "none", ""
			return syncAccount(ctx, g, acc, syncOptions{mailboxes: mailboxes, force: opts.force, wait: opts.wait}, trace)
		},
	}
}

// lockForRestore takes the target account's lock and, with --to, the
// source's when it has an index directory; the returned function releases
// them and may be called more than once.
func lockForRestore(ctx context.Context, g *globals, src, dst config.Account, wait bool) (func(), error) {
	var locks []*store.FileLock
	release := func() {
		for _, l := range locks {
			l.Unlock()
		}
		locks = nil
	}
	take := func(acc config.Account) error {
		l, err := lockAccount(ctx, g, acc, wait, "restore")
		if err != nil {
			return fmt.Errorf("account %s: %w", acc.Name, err)
		}
		locks = append(locks, l)
		return nil
	}
	if err := take(dst); err != nil {
		return release, err
	}
	if src.Name != dst.Name {
		if _, err := os.Stat(filepath.Dir(src.Index)); err == nil {
			if err := take(src); err != nil {
				release()
				return release, err
			}
		}
	}
	return release, nil
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
func printRestoreResults(g *globals, src, dst config.Account, r restore.Result, took time.Duration) {
	res := r.Pushed
	doc := jsonRestore{Source: src.Name, Target: dst.Name, Seconds: took.Seconds(), Keywords: r.Keywords, Mailboxes: []jsonRestoreMailbox{}}
	if res.Err != nil {
		doc.Error = withHint(res.Err)
	}
	var created, linked, uploaded, held, failed int
	for _, f := range r.Folders {
		jm := jsonRestoreMailbox{Name: f.Mailbox, From: f.From, Local: f.To, Created: f.Created, Linked: f.Placed}
		err := f.Err
		for _, m := range res.Mailboxes {
			if f.Mailbox != "" && satsync.SameMailbox(m.Name, f.Mailbox) {
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
		if f.Created {
			created++
		}
		linked += f.Placed
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
	line := fmt.Sprintf("%s: restored from %s: %d mailboxes (%d created)", dst.Name, from, len(r.Folders), created)
	if src.Name != dst.Name {
		line += fmt.Sprintf(", %d files placed in %s", linked, dst.Maildir)
	}
	line += fmt.Sprintf(", %d uploaded", uploaded)
	if r.Keywords > 0 {
		line += fmt.Sprintf(", keywords restored on %d", r.Keywords)
	}
	if failed > 0 {
		line += fmt.Sprintf(", %d failed", failed)
	}
	if held > 0 {
		line += fmt.Sprintf(", %d held back by the first-sync guard (use --force)", held)
	}
	fmt.Fprintf(g.stdout, "%s in %s\n", line, took.Round(time.Millisecond))
}
