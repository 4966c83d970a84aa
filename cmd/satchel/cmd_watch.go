package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	satsync "github.com/satchel-mail/satchel/sync"
)

type watchOptions struct {
	accounts []string
	// tune replaces defaultWatchTuning when set (tests).
	tune *watchTuning
	// resume, when set, is the signal the watch takes for a resume from
	// suspend, besides the one it detects (tests fire it).
	resume *broadcast
	// onStart and onCycle, when set, are called before and after each
	// sync cycle (tests).
	onStart func(account string)
	onCycle func(account string, only []string, res satsync.Result, err error)
}

// watchTuning holds the timings of a watch.
type watchTuning struct {
	// debounce is the quiet time after a change before its sync starts,
	// so that a burst of changes (mutt saving a folder) is one sync;
	// maxDelay bounds the wait in a burst that does not end.
	debounce, maxDelay time.Duration
	// maxIdle is how long one IDLE lasts before it is re-issued, which
	// is also how soon a connection that died silently is found.
	maxIdle time.Duration
	// poll is the NOOP interval for a server without IDLE.
	poll time.Duration
	// timeout is the watching connections' imapremote Options.Timeout
	// (0: the default): how long the reply to DONE may take.
	timeout time.Duration
	// backoffMin and backoffMax bound the wait before a lost connection
	// is opened again, or a failed sync tried again.
	backoffMin, backoffMax time.Duration
	// clockTick is how often the clock is checked for a suspend.
	clockTick time.Duration
	// interval, when non-zero, replaces every account's watch_interval.
	interval time.Duration
}

var defaultWatchTuning = watchTuning{
	debounce:   2 * time.Second,
	maxDelay:   30 * time.Second,
	maxIdle:    10 * time.Minute,
	poll:       2 * time.Minute,
	backoffMin: time.Second,
	backoffMax: 5 * time.Minute,
	clockTick:  30 * time.Second,
}

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
		resume = newBroadcast()
	}
	clockCtx, stopClock := context.WithCancel(ctx)
	defer stopClock()
	go watchClock(clockCtx, tune.clockTick, resume.fire)

	errs := make([]error, len(accounts))
	var wg gosync.WaitGroup
	for i, acc := range accounts {
		w := newAccountWatch(g, acc, tune, trace, resume)
		w.onStart, w.onCycle = opts.onStart, opts.onCycle
		wg.Go(func() { errs[i] = w.run(ctx) })
	}
	wg.Wait()
	var out outcome
	for _, err := range errs {
		out.account(err, &satsync.Result{})
	}
	return out.code()
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
