package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	gosync "sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/conflict"
	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
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

// runSync syncs the selected accounts, parallel_accounts at a time, and
// returns the exit code. Each account's output (its error lines, its
// hooks', its summary or plan) is printed together, in the order of the
// configuration (see inOrder); the exit code is the same whatever the
// order the accounts finish in.
func runSync(ctx context.Context, g *globals, opts syncOptions) int {
	cfg, accounts, err := loadSelection(g, opts.accounts)
	if err != nil {
		return reportFatal(g, err)
	}
	trace, closeTrace, err := openTrace(g)
	if err != nil {
		return reportFatal(g, err)
	}
	defer closeTrace()
	n := min(cfg.ParallelAccounts, len(accounts))
	synced := make([]syncedAccount, len(accounts))
	order := newInOrder(g, len(accounts))
	turns := make(chan struct{}, max(n, 1))
	var wg gosync.WaitGroup
	for i, acc := range accounts {
		turns <- struct{}{}
		wg.Go(func() {
			defer func() { <-turns }()
			synced[i] = syncOne(ctx, order.globals(g, i, n > 1), acc, opts, trace)
			order.finish(i)
		})
	}
	wg.Wait()
	var out outcome
	results := make([]satsync.Result, len(synced))
	for i, s := range synced {
		if s.err != nil {
			out.account(s.err, nil)
		} else {
			out.account(nil, &s.res)
		}
		if s.postHookFailed {
			out.postHookFailed()
		}
		results[i] = s.res
	}
	if g.json {
		writeJSON(g, newJSONSync(results, opts.dryRun))
	}
	return out.code()
}

// syncedAccount is how one account's sync went.
type syncedAccount struct {
	res satsync.Result
	// err: the account was not synced at all (res holds only it).
	err            error
	postHookFailed bool
}

// syncOne syncs one account between its hooks and prints what concerns
// it (not the JSON document, which covers every account) to g.
func syncOne(ctx context.Context, g *globals, acc config.Account, opts syncOptions, trace io.Writer) syncedAccount {
	var s syncedAccount
	pre := runPreHook(ctx, g, acc, opts.dryRun)
	err := pre
	if pre == nil {
		s.res, err = syncAccount(ctx, g, acc, opts, trace)
	}
	if err != nil {
		if !errors.Is(err, store.ErrLocked) || errors.Is(err, context.Canceled) || !g.quiet {
			fmt.Fprintf(g.stderr, "satchel: %s: %s\n", acc.Name, withHint(err))
		}
		s.res, s.err = satsync.Result{Account: acc.Name, Err: err}, err
	} else {
		reportAccountErrors(g, s.res)
		reportTags(g, s.res, opts.dryRun)
	}
	if pre == nil {
		if err := runPostHook(ctx, g, acc, opts.dryRun, s.res, err); err != nil {
			fmt.Fprintf(g.stderr, "satchel: %s: %v\n", acc.Name, err)
			s.postHookFailed = true
		}
	}
	printSyncResult(g, s.res, opts.dryRun)
	return s
}

// syncAccount opens the account (see openAccount: lock, login, index,
// identity check, run marker) and runs the engine. An error means the
// account was not synced at all. Nothing is created on disk before the
// server has accepted the login, so a wrong host or password leaves no
// trace; with --dry-run nothing is created or changed at all.
func syncAccount(ctx context.Context, g *globals, acc config.Account, opts syncOptions, trace io.Writer) (satsync.Result, error) {
	policy, err := conflict.ParsePolicy(acc.Sync.Conflict)
	if err != nil {
		return satsync.Result{}, usageError{err}
	}
	mode := openMode{command: "sync", lock: lockAlways, wait: opts.wait, login: true, guard: true, setAside: opts.reindex}
	if opts.dryRun {
		mode.lock, mode.readOnly = lockIfPresent, true
	}
	a, err := openAccount(ctx, g, acc, trace, mode)
	if err != nil {
		return satsync.Result{}, err
	}
	defer a.close()
	var progress satsync.Progress
	if g.showProgress(opts.dryRun) {
		bars := newProgressBars(acc.Name, g.stderr, g.logOut)
		defer bars.finish()
		progress = bars
	}
	o := syncEngineOptions(acc, opts, time.Now())
	o.Conflict, o.Progress, o.Logger = policy, progress, g.log
	deps := syncDeps(a, opts.dryRun)
	wireTags(acc, a.ix, trace, &o, &deps)
	return satsync.Account(ctx, o, deps), nil
}

// syncEngineOptions turns an account's configuration and the command
// line into the engine's options.
func syncEngineOptions(acc config.Account, opts syncOptions, now time.Time) satsync.Options {
	return satsync.Options{
		Account:       acc.Name,
		Include:       acc.Mailboxes.Include,
		Exclude:       acc.Mailboxes.Exclude,
		Map:           acc.Mailboxes.Map,
		Only:          opts.mailboxes,
		DryRun:        opts.dryRun,
		Direction:     acc.Sync.Direction,
		Expunge:       acc.Sync.Expunge,
		Trash:         acc.Sync.Trash,
		RemoveFolders: acc.Sync.RemoveFolders,
		Prefix:        acc.IMAP.Prefix,
		MaxDelete:     &satsync.DeleteLimit{Percent: acc.Sync.MaxDelete.Percent, Min: acc.Sync.MaxDelete.Count},
		Force:         opts.force,
		Reindex:       opts.reindex,
		Connections:   acc.IMAP.Connections,
		Since:         since(acc.Sync.Since, now),
		MaxSize:       acc.Sync.MaxSize,
		MaxMessages:   acc.Sync.MaxMessages,
		FetchSkipped:  opts.fetchSkipped,
		Now:           time.Now,
	}
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
	overQuota := errors.Is(res.Err, mail.ErrOverQuota)
	for _, m := range res.Mailboxes {
		if m.Err != nil && !(interrupted && errors.Is(m.Err, context.Canceled)) && !(overQuota && errors.Is(m.Err, mail.ErrOverQuota)) {
			fmt.Fprintf(g.stderr, "satchel: %s: %s: %s\n", res.Account, m.Name, withHint(m.Err))
		}
		if m.Safety != nil {
			fmt.Fprintf(g.stderr, "satchel: %s: %s: %s\n", res.Account, m.Name, m.Safety)
		}
	}
}
