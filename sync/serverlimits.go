package sync

import (
	"context"
	"errors"

	"github.com/satchel-mail/satchel/sync/mail"
)

// What the engine does when a server says the account is at one of its
// limits (the adapter tells them apart; Gmail's are in imapremote's
// limits.go). None of them is a statement about any message: nothing is
// ever planned from a refusal, so none can become a deletion.
//
//   - Over quota (mail.ErrOverQuota): every further command would be
//     refused, so the account stops. What was done stays done: each
//     download batch is committed with its intents as it completes,
//     and a mailbox whose sync did not finish keeps its last recorded
//     state, so the next run learns it again and downloads only what no
//     row holds. Result.Err says why the account stopped.
//   - Too many connections (mail.ErrTooManyConnections): an extra
//     connection the server refuses is given up, and its connection slot
//     with it, for the rest of the run; the work goes on over the
//     connections open. On Gmail (X-GM-EXT-1) no run opens more than
//     gmailMaxConnections, whatever Options.Connections says.
//   - Throttled (a remote whose Throttled reports true): from then on the
//     run opens no new connection and gives up those it has beyond one.
//   - The server ended a session (a BYE, an expired OAuth token; any
//     transient failure): the mailbox is synced again once the pass ends,
//     on a new connection, which logs in again with a freshly fetched
//     password or token; again while the attempts make progress, at most
//     maxRetries times, and never after two attempts in a row that made
//     none.

// gmailMaxConnections is how many connections Gmail lets an account have
// at once (https://support.google.com/mail/answer/97150: "Too many
// simultaneous connections").
const gmailMaxConnections = 15

// maxRetries caps how many times one run syncs a mailbox again after a
// transient failure, even while each attempt makes progress.
const maxRetries = 10

// throttledRemote is a Remote that reports a server's request to slow
// down.
type throttledRemote interface {
	// Throttled reports whether the server asked, on this connection,
	// for fewer or slower commands.
	Throttled() bool
}

// capConnections keeps the run to Gmail's limit once the first connection
// shows the server is Gmail: the slots over it are taken for good. Only
// the first connection is open, so they are free.
func (r *runner) capConnections(remote Remote) {
	gr, ok := remote.(gmailRemote)
	if !ok || !gr.Gmail() || cap(r.slots) <= gmailMaxConnections {
		return
	}
	got := r.takeSlots(cap(r.slots) - gmailMaxConnections)
	r.mu.Lock()
	r.limit -= got
	r.mu.Unlock()
	r.log.Info("Gmail allows 15 connections at once; imap.connections is lowered to it", "connections", r.connections())
}

// connections is how many connections the run may have open now.
func (r *runner) connections() int {
	if r.slow.Load() {
		return 1
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.limit
}

// retire gives up a connection slot for the rest of the run after the
// server refused a connection for it: the caller keeps the slot's token
// instead of releasing it. It reports false, and gives up nothing, for
// the run's last slot.
func (r *runner) retire() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.limit <= 1 {
		return false
	}
	r.limit--
	r.log.Warn("the server refused another connection (too many simultaneous connections); going on with fewer", "connections", r.limit)
	return true
}

// noteThrottle slows the run down once a connection says the server asked
// for it.
func (r *runner) noteThrottle(remote Remote) {
	tr, ok := remote.(throttledRemote)
	if ok && tr.Throttled() && !r.slow.Swap(true) {
		r.log.Warn("the server asks to slow down ([THROTTLED]); going on over one connection")
	}
}

// halt stops the account when err says it is over its quota; it
// reports whether it did.
func (r *runner) halt(err error) bool {
	if !errors.Is(err, mail.ErrOverQuota) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop == nil {
		r.stop = err
	}
	return true
}

// stopped returns what stopped the account, nil while it goes on.
func (r *runner) stopped() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stop
}

// retryLater notes a mailbox whose sync failed in a way another
// connection may not meet, for Account to sync again after the pass.
func (r *runner) retryLater(b *box, err error) {
	if !isTransient(err) || b.vanished || b.folderGone {
		return
	}
	e := b.mailboxEntry
	e.res = b.res
	r.mu.Lock()
	r.retry = append(r.retry, e)
	r.mu.Unlock()
}

// retries returns the mailboxes to sync again: those noted by retryLater
// that were synced again fewer than maxRetries times, without two
// attempts in a row that made no progress. Their errors are cleared.
func (r *runner) retries(ctx context.Context) []mailboxEntry {
	r.mu.Lock()
	noted := r.retry
	r.retry = nil
	r.mu.Unlock()
	if ctx.Err() != nil || r.stopped() != nil {
		return nil
	}
	if r.attempts == nil {
		r.attempts = map[*MailboxResult]retryState{}
	}
	var out []mailboxEntry
	for _, e := range noted {
		st, seen := r.attempts[e.res]
		done := progress(e.res)
		idle := 0
		if seen && done == st.done {
			idle = st.idle + 1
		}
		if st.n >= maxRetries || idle >= 2 {
			continue // it stays failed; the next run tries again
		}
		r.attempts[e.res] = retryState{n: st.n + 1, idle: idle, done: done}
		r.log.Warn("syncing the mailbox again on a new connection", "mailbox", e.Name, "err", e.res.Err)
		e.res.Err = nil
		out = append(out, e)
	}
	return out
}

// retryState is how often a mailbox was synced again, how many of the
// last attempts in a row made no progress, and its progress when it last
// failed.
type retryState struct{ n, idle, done int }

// progress counts what was done for a mailbox so far in the run.
func progress(m *MailboxResult) int {
	return m.Downloaded + m.Linked + m.Uploaded + m.FlagsChanged + m.FlagsPushed +
		m.Removed + m.Deleted + m.Moved + m.Reassociated
}
