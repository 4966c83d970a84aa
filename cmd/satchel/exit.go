package main

import (
	"context"
	"errors"
	"strings"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// Exit codes: the documented contract (README, "Exit codes").
const (
	exitOK          = 0
	exitFailure     = 1 // every selected account failed
	exitUsage       = 2 // usage or configuration error
	exitPartial     = 3 // some mailboxes or accounts failed, the rest synced
	exitSafety      = 4 // a safety check refused part of the work
	exitOverQuota   = 5 // an account stopped over its quota; the next run resumes
	exitLocked      = 75
	exitInterrupted = 130
)

// usageError marks a command-line mistake.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func isCLIUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "flag provided but not defined") || strings.Contains(s, "Required flag")
}

// exitCodeOf maps a single error to its exit code.
func exitCodeOf(err error) int {
	var ce *config.Error
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce), errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, store.ErrLocked):
		return exitLocked
	case errors.Is(err, mail.ErrOverQuota):
		return exitOverQuota
	case errors.Is(err, satsync.ErrUIDValidityChanged),
		errors.Is(err, satsync.ErrTooManyDeletions), errors.Is(err, satsync.ErrTooManyUploads),
		errors.Is(err, satsync.ErrLikelyRenamed),
		errors.Is(err, maildir.ErrMissing), errors.Is(err, maildir.ErrMismatch):
		return exitSafety
	default:
		return exitFailure
	}
}

// outcome tallies a run over several accounts.
type outcome struct {
	accounts, failedAccounts, lockedAccounts int
	failures, safety, overQuota              int
	usage, interrupted                       bool
}

func (o *outcome) account(err error, res *satsync.Result) {
	o.accounts++
	if err == nil && res != nil {
		err = res.Err
	}
	if err != nil {
		switch exitCodeOf(err) {
		case exitUsage:
			o.usage = true
		case exitLocked:
			o.lockedAccounts++
		case exitInterrupted:
			o.interrupted = true
		case exitSafety:
			o.safety++
		case exitOverQuota:
			o.overQuota++
		default:
			o.failedAccounts++
		}
		return
	}
	if res == nil {
		return
	}
	failed := 0
	for _, m := range res.Mailboxes {
		if m.Safety != nil {
			o.safety++
		}
		switch {
		case m.Err == nil:
		case exitCodeOf(m.Err) == exitSafety:
			o.safety++
		case exitCodeOf(m.Err) == exitInterrupted:
			o.interrupted = true
		default:
			failed++
			o.failures++
		}
	}
	if failed > 0 && failed == len(res.Mailboxes) {
		o.failedAccounts++
	}
	// The mail was synced and the tags were not (or not all): partial,
	// and tried again with the next sync.
	if t := res.Tags; t != nil && t.Err != nil {
		if exitCodeOf(t.Err) == exitInterrupted {
			o.interrupted = true
		} else {
			o.failures++
		}
	}
}

// code applies the documented precedence: 2, 1, 4, 3, 5, 75; an
// interrupted run is 130 unless the configuration was wrong. An account
// stopped over quota is not a failed one.
func (o *outcome) code() int {
	switch {
	case o.usage:
		return exitUsage
	case o.interrupted:
		return exitInterrupted
	case o.accounts > 0 && o.failedAccounts == o.accounts:
		return exitFailure
	case o.safety > 0:
		return exitSafety
	case o.failures > 0 || o.failedAccounts > 0:
		return exitPartial
	case o.overQuota > 0:
		return exitOverQuota
	case o.lockedAccounts > 0:
		return exitLocked
	}
	return exitOK
}
