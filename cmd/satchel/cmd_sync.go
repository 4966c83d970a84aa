package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/conflict"
	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/mail"
)

type syncOptions struct {
	accounts  []string
	mailboxes []string
	dryRun    bool
	// force lets the safety guards' held work through; wait waits for
	// the account's lock instead of giving up.
	force, wait bool
	// reindex rebuilds the index from the Maildir and the server.
	reindex bool
	// fetchSkipped downloads the messages a partial-sync limit skipped.
	fetchSkipped bool
}

func newSyncCommand(g *globals, code *int) *cli.Command {
	var opts syncOptions
	return &cli.Command{
		Name:      "sync",
		Usage:     "sync all accounts, or the ones named",
		ArgsUsage: "[ACCOUNT...]",
		Description: `Examples:
   satchel sync                      # every account
   satchel sync personal             # one account
   satchel sync personal --mailbox INBOX --mailbox Archive
   satchel sync --dry-run            # show each mailbox's plan; change nothing
   satchel sync --force              # do what a safety check held back`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "mailbox", Usage: "sync only this mailbox (repeatable)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be done and change nothing", Destination: &opts.dryRun},
			&cli.BoolFlag{Name: "force", Usage: "do what a safety check held back: more deletions than sync.max_delete, a first sync's mass upload", Destination: &opts.force},
			&cli.BoolFlag{Name: "fetch-skipped", Usage: "download the messages sync.since, sync.max_size or sync.max_messages skipped", Destination: &opts.fetchSkipped},
			&cli.BoolFlag{Name: "wait", Usage: "wait for another satchel run on the account to finish instead of exiting 75", Destination: &opts.wait},
			// Also here, not only before the command: "satchel sync -q"
			// is how cron lines are usually written.
			// No Destination: urfave/cli would reset the global -q to
			// this flag's default.
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors"},
		},
		Action: func(c *cli.Context) error {
			opts.mailboxes = c.StringSlice("mailbox")
			if c.Bool("quiet") {
				g.quiet = true
			}
			args, err := tailFlags{
				lists: map[string]*[]string{"mailbox": &opts.mailboxes},
				bools: map[string]*bool{"dry-run": &opts.dryRun, "force": &opts.force, "fetch-skipped": &opts.fetchSkipped, "wait": &opts.wait, "quiet": &g.quiet, "q": &g.quiet},
			}.parse(c.Args().Slice())
			if err != nil {
				return err
			}
			opts.accounts = args
			g.log = newLogger(g) // -q may have come after the command
			*code = runSync(c.Context, g, opts)
			return nil
		},
	}
}

// runSync syncs the selected accounts one after another and returns the
// exit code.
func runSync(ctx context.Context, g *globals, opts syncOptions) int {
	var out outcome
	var results []satsync.Result
	err := eachAccount(g, opts.accounts, func(acc config.Account, trace io.Writer) {
		var res satsync.Result
		pre := runPreHook(ctx, g, acc, opts.dryRun)
		err := pre
		if pre == nil {
			res, err = syncAccount(ctx, g, acc, opts, trace)
		}
		if err != nil {
			if errors.Is(err, store.ErrLocked) && !errors.Is(err, context.Canceled) {
				if !g.quiet {
					fmt.Fprintf(g.stderr, "satchel: %s: %s\n", acc.Name, withHint(err))
				}
			} else {
				fmt.Fprintf(g.stderr, "satchel: %s: %s\n", acc.Name, withHint(err))
			}
			res = satsync.Result{Account: acc.Name, Err: err}
			out.account(err, nil)
		} else {
			reportAccountErrors(g, res)
			out.account(nil, &res)
		}
		results = append(results, res)
		if pre == nil {
			if err := runPostHook(ctx, g, acc, opts.dryRun, res, err); err != nil {
				fmt.Fprintf(g.stderr, "satchel: %s: %v\n", acc.Name, err)
				out.postHookFailed()
			}
		}
	})
	if err != nil {
		return reportFatal(g, err)
	}
	printSyncResults(g, results, opts.dryRun)
	return out.code()
}

// syncAccount takes the account's lock, connects, opens its index and
// Maildir, checks they belong together, and runs the engine. An error
// means the account was not synced at all. Nothing is created on disk
// before the server has accepted the login, so a wrong host or password
// leaves no trace; with --dry-run nothing is created or changed at all.
func syncAccount(ctx context.Context, g *globals, acc config.Account, opts syncOptions, trace io.Writer) (satsync.Result, error) {
	lockPath := acc.Index + ".lock"
	var lock *store.FileLock
	takeLock := func() error {
		l, err := store.Lock(ctx, lockPath, false)
		if errors.Is(err, store.ErrLocked) && opts.wait {
			g.log.Info("waiting for another satchel run to finish", "account", acc.Name, "lock", lockPath)
			l, err = store.Lock(ctx, lockPath, true)
		}
		if errors.Is(err, store.ErrLocked) && ctx.Err() == nil {
			return fmt.Errorf("%w (%s); try again when it has finished, or use sync --wait", store.ErrLocked, lockPath)
		}
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("%w; check accounts.index: its directory must be one satchel can create and write", err)
		}
		lock = l
		return err
	}
	// An existing index directory means the lock can be taken before
	// spending a login; on a first run it is created only after one. A
	// dry run takes it only if its file exists: it creates nothing.
	lockable := func() bool {
		p := filepath.Dir(lockPath)
		if opts.dryRun {
			p = lockPath
		}
		_, err := os.Stat(p)
		return err == nil
	}
	if lockable() {
		if err := takeLock(); err != nil {
			return satsync.Result{}, err
		}
	}
	ropts := remoteOptions(acc, trace, g)
	first, err := imapremote.Dial(ctx, ropts)
	if err != nil {
		if lock != nil {
			lock.Unlock()
		}
		return satsync.Result{}, loginError(acc, err)
	}
	defer func() {
		if first != nil {
			first.Close()
		}
	}()
	if lock == nil && (!opts.dryRun || lockable()) {
		if err := takeLock(); err != nil {
			return satsync.Result{}, err
		}
	}
	if lock != nil {
		defer lock.Unlock()
	}
	policy, err := conflict.ParsePolicy(acc.Sync.Conflict)
	if err != nil {
		return satsync.Result{}, usageError{err}
	}
	open := store.Open
	if opts.dryRun {
		open = store.OpenReadOnly
	}
	if opts.reindex {
		if err := setIndexAside(acc.Index, time.Now()); err != nil {
			return satsync.Result{}, err
		}
	}
	ix, err := open(ctx, acc.Index)
	if err != nil {
		return satsync.Result{}, err
	}
	defer ix.Close()
	// Creates the Maildir root on a first sync.
	if err := (maildir.Root{Dir: acc.Maildir}).CheckIdentity(ctx, ix, acc.Name, !opts.dryRun); err != nil {
		return satsync.Result{}, err
	}
	local := accountRoot(acc)
	if !opts.dryRun {
		done, err := markRunning(ctx, g, ix, local)
		if err != nil {
			return satsync.Result{}, err
		}
		defer done()
	}
	folder := func(rel string) satsync.Folder { return local.Folder(rel) }
	if opts.dryRun {
		folder = func(rel string) satsync.Folder { return dryFolder{local.Folder(rel)} }
	}
	var progress satsync.Progress
	if g.showProgress(opts.dryRun) {
		bars := newProgressBars(acc.Name, g.stderr, g.logOut)
		defer bars.finish()
		progress = bars
	}
	res := satsync.Account(ctx, satsync.Options{
		Account:       acc.Name,
		Include:       acc.Mailboxes.Include,
		Exclude:       acc.Mailboxes.Exclude,
		Map:           acc.Mailboxes.Map,
		Only:          opts.mailboxes,
		DryRun:        opts.dryRun,
		Direction:     acc.Sync.Direction,
		Expunge:       acc.Sync.Expunge,
		Trash:         acc.Sync.Trash,
		Conflict:      policy,
		RemoveFolders: acc.Sync.RemoveFolders,
		Prefix:        acc.IMAP.Prefix,
		MaxDelete:     &satsync.DeleteLimit{Percent: acc.Sync.MaxDelete.Percent, Min: acc.Sync.MaxDelete.Count},
		Force:         opts.force,
		Reindex:       opts.reindex,
		Connections:   acc.IMAP.Connections,
		Since:         since(acc.Sync.Since, time.Now()),
		MaxSize:       acc.Sync.MaxSize,
		MaxMessages:   acc.Sync.MaxMessages,
		FetchSkipped:  opts.fetchSkipped,
		Progress:      progress,
		Logger:        g.log,
		Now:           time.Now,
	}, satsync.Deps{
		Connect: func(ctx context.Context) (satsync.Remote, error) {
			if first != nil {
				c := first
				first = nil
				return c, nil
			}
			c, err := imapremote.Dial(ctx, ropts)
			if err != nil {
				return nil, loginError(acc, err)
			}
			return c, nil
		},
		Index:        ix,
		Folder:       folder,
		LocalPath:    local.Path,
		MkdirAll:     local.MkdirAll,
		MoveFile:     local.MoveFile,
		RenameFolder: local.RenameFolder,
		RemoveFolder: local.RemoveFolder,
		LocalFolders: func() ([]satsync.LocalFolder, error) {
			fs, err := local.Folders()
			out := make([]satsync.LocalFolder, len(fs))
			for i, f := range fs {
				out[i] = satsync.LocalFolder{Rel: f.Rel, Levels: f.Levels}
			}
			return out, err
		},
	})
	return res, nil
}

// dryFolder is a Maildir folder as a dry run reads it: a sync creates a
// missing folder before looking into it, a dry run creates none, so a
// missing folder has no files (Scan already reads it so).
type dryFolder struct{ maildir.Folder }

func (f dryFolder) Find(key string) (mail.Flags, bool, error) {
	flags, ok, err := f.Folder.Find(key)
	if errors.Is(err, fs.ErrNotExist) {
		return mail.Flags{}, false, nil
	}
	return flags, ok, err
}

// reportFatal prints an error that stops the whole run.
func reportFatal(g *globals, err error) int {
	fmt.Fprintf(g.stderr, "satchel: %s\n", withHint(err))
	return exitCodeOf(err)
}

// reportAccountErrors prints what failed in an account, one line each.
// An interrupted account says so once, not once per mailbox it stopped.
func reportAccountErrors(g *globals, res satsync.Result) {
	if res.Err != nil {
		fmt.Fprintf(g.stderr, "satchel: %s: %s\n", res.Account, withHint(res.Err))
	}
	interrupted := errors.Is(res.Err, context.Canceled)
	for _, m := range res.Mailboxes {
		if m.Err != nil && !(interrupted && errors.Is(m.Err, context.Canceled)) {
			fmt.Fprintf(g.stderr, "satchel: %s: %s: %s\n", res.Account, m.Name, withHint(m.Err))
		}
		if m.Safety != nil {
			fmt.Fprintf(g.stderr, "satchel: %s: %s: %s\n", res.Account, m.Name, m.Safety)
		}
	}
}
