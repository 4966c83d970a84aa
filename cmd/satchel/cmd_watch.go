package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/watch"
)

type watchOptions struct {
	accounts []string
	// tune replaces defaultWatchTuning when set (tests).
	tune *watchTuning
	// resume, when set, is the signal the watch takes for a resume from
	// suspend, besides the one it detects (tests fire it).
	resume *watch.Broadcast
	// onStart and onCycle, when set, are called before and after each
	// sync cycle (tests).
	onStart func(account string)
	onCycle func(account string, c watch.Cycle)
}

// watchTuning holds the timings of a watch: the engine's, and those of
// the command around it.
type watchTuning struct {
	watch.Timing
	// timeout is the watching connections' imapremote Options.Timeout
	// (0: the default): how long the reply to DONE may take.
	timeout time.Duration
	// clockTick is how often the clock is checked for a suspend.
	clockTick time.Duration
	// interval, when non-zero, replaces every account's watch_interval.
	interval time.Duration
}

var defaultWatchTuning = watchTuning{Timing: watch.DefaultTiming, clockTick: 30 * time.Second}

func newWatchCommand(g *globals, code *int) *cli.Command {
	var opts watchOptions
	return &cli.Command{
		Name:      "watch",
		Usage:     "stay connected and sync every account, or the ones named, as changes happen",
		ArgsUsage: "[ACCOUNT...]",
		Description: `Waits in IDLE on the mailboxes listed in each account's watch (default
   [INBOX]), watches the Maildir folders for changes made by mail readers,
   and syncs the whole account every watch_interval (default 15m). A change
   is synced a few seconds after it happens. The account's lock is held
   only while a sync runs, so "satchel sync" from cron still works beside it.
   Runs until SIGINT or SIGTERM, then exits 0.

Examples:
   satchel watch                     # every account
   satchel -q watch personal         # one account, errors only`,
		Action: func(c *cli.Context) error {
			opts.accounts = c.Args().Slice()
			*code = runWatch(c.Context, g, opts)
			return nil
		},
	}
}

// runWatch watches the selected accounts until ctx ends, and returns the
// exit code: 0 when stopped by ctx (SIGINT or SIGTERM end a watch, they
// do not interrupt it); otherwise, once every account has stopped on an
// error that needs the user (see watchFatal), that error's code, as for
// sync. An account that stopped while others went on makes the final
// code 3, as a partial sync does.
func runWatch(ctx context.Context, g *globals, opts watchOptions) int {
	if g.json {
		return reportFatal(g, usageError{errors.New("watch prints no JSON; use sync --json")})
	}
	accounts, err := loadAccounts(g, opts.accounts)
	if err != nil {
		return reportFatal(g, err)
	}
	for i := range accounts {
		if err := checkWatchable(&accounts[i]); err != nil {
			return reportFatal(g, err)
		}
	}
	trace, closeTrace, err := openTrace(g)
	if err != nil {
		return reportFatal(g, err)
	}
	defer closeTrace()
	tune := defaultWatchTuning
	if opts.tune != nil {
		tune = *opts.tune
	}
	resume := opts.resume
	if resume == nil {
		resume = watch.NewBroadcast()
	}
	clockCtx, stopClock := context.WithCancel(ctx)
	defer stopClock()
	go watch.Clock(clockCtx, tune.clockTick, resume.Fire)

	errs := make([]error, len(accounts))
	var wg gosync.WaitGroup
	for i, acc := range accounts {
		wg.Go(func() {
			res := watch.Account(ctx, watchEngineOptions(g, acc, tune), watchDeps(g, acc, tune, trace, resume, opts))
			if res.Err != nil {
				fmt.Fprintf(g.stderr, "satchel: %s: watch stopped for this account\n", acc.Name)
			}
			errs[i] = res.Err
		})
	}
	wg.Wait()
	var out outcome
	for _, err := range errs {
		out.account(err, &satsync.Result{})
	}
	return out.code()
}

// watchEngineOptions turns an account's configuration into a watch's
// options.
func watchEngineOptions(g *globals, acc config.Account, tune watchTuning) watch.Options {
	interval := acc.WatchInterval
	if tune.interval > 0 {
		interval = tune.interval
	}
	return watch.Options{Account: acc.Name, Mailboxes: acc.Watch, Interval: interval, Timing: tune.Timing, Logger: g.log}
}

// watchDeps wires a watch: its watching connections, each cycle's sync
// between the account's hooks, and what it prints.
func watchDeps(g *globals, acc config.Account, tune watchTuning, trace io.Writer, resume *watch.Broadcast, opts watchOptions) watch.Deps {
	ropts := remoteOptions(acc, trace, g)
	ropts.Timeout = tune.timeout
	// The watching connections stay open while a sync runs: it has the
	// rest of imap.connections.
	syncAcc := acc
	syncAcc.IMAP.Connections = max(1, acc.IMAP.Connections-len(acc.Watch))
	// No progress bars: several accounts may sync at once, and each
	// cycle that changes something says so in one line.
	quiet := *g
	quiet.terminal = false
	return watch.Deps{
		Dial: func(ctx context.Context) (watch.Conn, error) {
			c, err := imapremote.Dial(ctx, ropts)
			if err != nil {
				return nil, err
			}
			return idleConn{c}, nil
		},
		Sync: func(ctx context.Context, only []string) (satsync.Result, error) {
			return syncAccount(ctx, &quiet, syncAcc, syncOptions{mailboxes: only, wait: true}, trace)
		},
		Before: func(ctx context.Context) error { return runPreHook(ctx, g, syncAcc, false) },
		After: func(ctx context.Context, res satsync.Result, err error) error {
			return runPostHook(ctx, g, syncAcc, false, res, err)
		},
		FolderDir: func(rel string) string { return maildir.Root{Dir: acc.Maildir}.Folder(rel).Dir.Path },
		Resume:    resume,
		Fatal:     watchFatal,
		Routine: func(err error) bool {
			return errors.Is(err, imapremote.ErrConnect) || errors.Is(err, imapremote.ErrAuth)
		},
		Report: func(p watch.Problem) { fmt.Fprintln(g.stderr, watchProblem(acc.Name, p)) },
		Started: func() {
			if opts.onStart != nil {
				opts.onStart(acc.Name)
			}
		},
		Cycled: func(c watch.Cycle) {
			if c.Err == nil && !c.Interrupted && g.showSummary() {
				printCycle(g, c.Result, time.Now())
			}
			if opts.onCycle != nil {
				opts.onCycle(acc.Name, c)
			}
		},
	}
}

// idleConn is an IMAP connection as a watch uses it.
type idleConn struct{ *imapremote.Client }

func (c idleConn) WaitChange(ctx context.Context, mailbox string, maxIdle time.Duration) (watch.Change, error) {
	got, err := c.Client.WaitChange(ctx, mailbox, maxIdle)
	var out watch.Change
	for _, m := range []struct {
		from imapremote.Change
		to   watch.Change
	}{{imapremote.ChangeExists, watch.ChangeExists}, {imapremote.ChangeFlags, watch.ChangeFlags}, {imapremote.ChangeExpunge, watch.ChangeExpunge}} {
		if got&m.from != 0 {
			out |= m.to
		}
	}
	return out, err
}

// watchProblem is the line a watch prints for a problem, in sync's
// format where it is sync's.
func watchProblem(account string, p watch.Problem) string {
	switch p.Kind {
	case watch.ProblemMailbox:
		return fmt.Sprintf("satchel: %s: %s: %s", account, p.Mailbox, withHint(p.Err))
	case watch.ProblemHeld:
		return fmt.Sprintf("satchel: %s: %s: %s", account, p.Mailbox, p.Err)
	case watch.ProblemWatch:
		return fmt.Sprintf("satchel: %s: watch %s: %s", account, p.Mailbox, withHint(p.Err))
	case watch.ProblemUnsynced:
		return fmt.Sprintf("satchel: %s: watch %s: not among the synced mailboxes (left out by mailboxes.include or exclude?); remove it from watch", account, p.Mailbox)
	case watch.ProblemAfter:
		return fmt.Sprintf("satchel: %s: %v", account, p.Err)
	case watch.ProblemTags:
		return fmt.Sprintf("satchel: %s: notmuch tags: %s", account, withHint(p.Err))
	}
	return fmt.Sprintf("satchel: %s: %s", account, withHint(p.Err))
}

// watchFatal reports whether a failed sync needs the user: the
// configuration, the password or the Maildir is wrong, and trying again
// cannot help. Everything else (the network, the server) is tried again.
func watchFatal(err error) bool {
	switch exitCodeOf(err) {
	case exitUsage, exitSafety:
		return true
	}
	return errors.Is(err, imapremote.ErrAuth) || errors.Is(err, imapremote.ErrPlaintext) ||
		errors.Is(err, satsync.ErrNameCollision)
}

// checkWatchable deduplicates the account's watch list and checks that
// its connections fit in imap.connections: one per watched mailbox, and
// at least one for the syncs.
func checkWatchable(acc *config.Account) error {
	var boxes []string
	for _, b := range acc.Watch {
		if strings.EqualFold(b, "INBOX") {
			b = "INBOX" // RFC 9051 §5.1: INBOX is case-insensitive
		}
		if !slices.Contains(boxes, b) {
			boxes = append(boxes, b)
		}
	}
	acc.Watch = boxes
	if len(boxes) >= acc.IMAP.Connections {
		return usageError{fmt.Errorf("account %s watches %d mailboxes with imap.connections %d: watch needs one connection per watched mailbox and one to sync; raise imap.connections or shorten watch",
			acc.Name, len(boxes), acc.IMAP.Connections)}
	}
	return nil
}

// printCycle prints one line, with the time, for a sync that changed
// something.
func printCycle(g *globals, res satsync.Result, now time.Time) {
	var down, up, flags, removed, deleted, moved int
	var boxes []string
	for _, m := range res.Mailboxes {
		n := m.Downloaded + m.Uploaded + m.FlagsChanged + m.FlagsPushed + m.Removed + m.Deleted + m.Moved
		if n == 0 {
			continue
		}
		boxes = append(boxes, m.Name)
		down += m.Downloaded
		up += m.Uploaded
		flags += m.FlagsChanged + m.FlagsPushed
		removed += m.Removed
		deleted += m.Deleted
		moved += m.Moved
	}
	if len(boxes) == 0 {
		return
	}
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{down, "downloaded"}, {up, "uploaded"}, {flags, "flag updates"}, {removed, "removed"}, {deleted, "deleted on the server"}, {moved, "moved"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	fmt.Fprintf(g.stdout, "%s %s: %s (%s)\n", now.Format("15:04:05"), res.Account, strings.Join(parts, ", "), strings.Join(boxes, ", "))
}
