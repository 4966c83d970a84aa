package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	satsync "github.com/satchel-mail/satchel/sync"
)

// hookError is a hook that could not run or exited non-zero.
type hookError struct {
	key string // "hooks.pre" or "hooks.post"
	err error
}

func (e *hookError) Error() string {
	msg := fmt.Sprintf("%s failed (%v)", e.key, e.err)
	if e.key == "hooks.pre" {
		msg += "; the account was not synced"
	}
	return msg + "; check accounts." + e.key
}

func (e *hookError) Unwrap() error { return e.err }

// runPreHook runs the account's hooks.pre, if any. An error means the
// account must not be synced. A dry run runs no hook: hooks act (notmuch
// new, a notification), and a dry run acts on nothing.
func runPreHook(ctx context.Context, g *globals, acc config.Account, dryRun bool) error {
	if acc.Hooks.Pre == "" || dryRun {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return runHook(ctx, g, acc, "hooks.pre", acc.Hooks.Pre, hookEnv(acc, "pre"))
}

// runPostHook runs the account's hooks.post after a sync that was started
// (its pre hook, if any, succeeded), whatever the sync's outcome, with the
// outcome in the environment. It is skipped once the run is interrupted.
func runPostHook(ctx context.Context, g *globals, acc config.Account, dryRun bool, res satsync.Result, err error) error {
	if acc.Hooks.Post == "" || dryRun || ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = res.Err
	}
	return runHook(ctx, g, acc, "hooks.post", acc.Hooks.Post, append(hookEnv(acc, "post"), resultEnv(res, err)...))
}

// runHook runs command with /bin/sh and env added to satchel's own
// environment. Its stdin is empty; its stderr is satchel's; its stdout is
// satchel's, except that -q drops it (cron mails whatever is printed) and
// --json sends it to stderr (stdout holds the JSON document).
func runHook(ctx context.Context, g *globals, acc config.Account, key, command string, env []string) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), env...)
	switch {
	case g.quiet:
		cmd.Stdout = io.Discard
	case g.json:
		cmd.Stdout = g.stderr
	default:
		cmd.Stdout = g.stdout
	}
	cmd.Stderr = g.stderr
	// A hook that leaves a background process holding its output open
	// must not keep satchel waiting once the hook itself has exited.
	cmd.WaitDelay = 5 * time.Second
	// Hooks run one at a time, whichever accounts sync at once.
	done, err := takeTurn(ctx)
	if err != nil {
		return err
	}
	defer done()
	g.log.Debug("running hook", "account", acc.Name, "hook", key)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &hookError{key: key, err: err}
	}
	return nil
}

func hookEnv(acc config.Account, hook string) []string {
	return []string{
		"SATCHEL_HOOK=" + hook,
		"SATCHEL_ACCOUNT=" + acc.Name,
		"SATCHEL_MAILDIR=" + acc.Maildir,
	}
}

// resultEnv describes a sync's outcome to the post hook: SATCHEL_STATUS,
// and the summary counts over the account's mailboxes.
func resultEnv(res satsync.Result, err error) []string {
	var mailboxes, down, up, flags, removed, deleted, moved, failed, held int
	for _, m := range res.Mailboxes {
		mailboxes++
		down += m.Downloaded
		up += m.Uploaded
		flags += m.FlagsChanged + m.FlagsPushed
		removed += m.Removed
		deleted += m.Deleted
		moved += m.Moved
		held += m.Held
		if m.Err != nil {
			failed++
		}
	}
	n := func(k string, v int) string { return k + "=" + strconv.Itoa(v) }
	return []string{
		"SATCHEL_STATUS=" + hookStatus(res, err),
		n("SATCHEL_MAILBOXES", mailboxes),
		n("SATCHEL_DOWNLOADED", down),
		n("SATCHEL_UPLOADED", up),
		n("SATCHEL_FLAGS", flags),
		n("SATCHEL_REMOVED", removed),
		n("SATCHEL_DELETED", deleted),
		n("SATCHEL_MOVED", moved),
		n("SATCHEL_FAILED", failed),
		n("SATCHEL_HELD", held),
	}
}

// hookStatus names a sync's outcome in one word, on the lines of the exit
// codes: ok, partial (some mailboxes failed), failed (the account or all
// its mailboxes), held (a safety check held something back) or locked
// (another run had the account).
func hookStatus(res satsync.Result, err error) string {
	if err != nil {
		switch exitCodeOf(err) {
		case exitLocked:
			return "locked"
		case exitSafety:
			return "held"
		}
		return "failed"
	}
	var failed, held int
	for _, m := range res.Mailboxes {
		switch {
		case m.Err != nil && exitCodeOf(m.Err) == exitSafety:
			held++
		case m.Err != nil:
			failed++
		case m.Safety != nil:
			held++
		}
	}
	switch {
	case failed > 0 && failed == len(res.Mailboxes):
		return "failed"
	case failed > 0, res.Tags != nil && res.Tags.Err != nil:
		return "partial"
	case held > 0:
		return "held"
	}
	return "ok"
}

// postHookFailed counts a failed post hook: the mail was synced, what was
// to follow it was not, so the run exits 3 (partial) unless something
// worse happened.
func (o *outcome) postHookFailed() { o.failures++ }
