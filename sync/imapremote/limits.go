package imapremote

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/satchel-mail/satchel/sync/imapremote/qresync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// How a server says that the account has reached one of its limits, as
// Gmail says it (Google's help pages give the limits, about 2.5 GB a day
// downloaded over IMAP and 15 connections; the texts are those users
// report, and sync/imaptest's Gmail emulation answers with them):
//
//   - "NO [OVERQUOTA] Account exceeded command or bandwidth limits.": the
//     account has downloaded or asked too much for today; every command
//     gets it until the limit resets. RFC 5530 §3's [OVERQUOTA] is the
//     same for a storage quota: either way nothing more can be done now.
//     It becomes mail.ErrOverQuota.
//   - "NO [ALERT] Too many simultaneous connections.": a login over the
//     15 connections an account may have; mail.ErrTooManyConnections,
//     transient.
//   - "* BYE Session expired, please login again.": the OAuth token the
//     session was opened with ran out; the connection ends, which is
//     transient, and the BYE text says why.
//   - " [THROTTLED]" after a tagged OK: see Throttled.

// overQuotaText is in Gmail's over-quota refusals, with or without the
// [OVERQUOTA] code.
const overQuotaText = "exceeded command or bandwidth limits"

// tooManyText is Gmail's refusal of a login over its connection limit.
const tooManyText = "too many simultaneous connections"

// overQuota reports whether err is a server's refusal for an account
// over its quota or its bandwidth or command limit.
func overQuota(err error) bool {
	var ierr *imap.Error
	if errors.As(err, &ierr) {
		return ierr.Code == imap.ResponseCodeOverQuota || strings.Contains(strings.ToLower(ierr.Text), overQuotaText)
	}
	var serr *qresync.ServerError
	if errors.As(err, &serr) {
		return strings.HasPrefix(strings.ToUpper(serr.Text), "[OVERQUOTA]") || strings.Contains(strings.ToLower(serr.Text), overQuotaText)
	}
	return false
}

// markedError is err, also matching mark through errors.Is, with err's
// text.
type markedError struct{ err, mark error }

func (e *markedError) Error() string   { return e.err.Error() }
func (e *markedError) Unwrap() []error { return []error{e.err, e.mark} }

// ioErr is the error to report for a failed call: watchdog.explain's,
// marked mail.ErrOverQuota when the server refused it for the account's
// limits, and saying why when the server ended the session with a BYE.
func (c *Client) ioErr(ctx context.Context, err error) error {
	err = c.wd.explain(ctx, err)
	switch {
	case ctx.Err() != nil:
		return err
	case overQuota(err):
		return &markedError{err, mail.ErrOverQuota}
	}
	if bye := c.q.Bye(); bye != "" {
		// RFC 9051 §7.1.5: the server is closing the connection; a new
		// one (with a fresh login) may do what this one could not.
		return transient(fmt.Errorf("the server ended the session (%s): %w", bye, err))
	}
	return err
}

// Throttled reports whether the server asked, on this connection, to slow
// down: Gmail appends " [THROTTLED]" to the text of a tagged OK when the
// account sends commands or downloads faster than it likes
// (mscdex/node-imap#593), and then answers slowly. The command itself
// succeeded.
func (c *Client) Throttled() bool { return c.q.Throttled() > 0 }
