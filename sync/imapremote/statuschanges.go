package imapremote

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/satchel-mail/satchel/sync/mail"
)

// StatusChanges reports, for the selected mailbox name, its status (STATUS
// UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ) and the UID, FLAGS and
// MODSEQ of every message changed after since (UID FETCH 1:* (UID FLAGS)
// (CHANGEDSINCE since), RFC 7162 §3.1.4.1), new ones included. Both
// commands are sent before either answer is read: one round trip, no
// SELECT. It is how the engine tells its own writes from other clients'
// after it wrote to a mailbox.
//
// STATUS goes first, so that the answer covers at least every change up
// to the HIGHESTMODSEQ it reports: a change made between the two
// commands shows in the FETCH, above that HIGHESTMODSEQ. RFC 9051
// §6.3.11 requires servers to answer STATUS on the selected mailbox.
//
// go-imap hands the FETCH command the first FETCH response naming each
// UID, solicited or not. A server reports a message's flags and MODSEQ
// as they are when it sends the response (RFC 9051 §7.5.2), so an
// unsolicited report stands for the message as well as the answer would.
//
// ok is false when the answer cannot vouch for the mailbox: the server has
// no CONDSTORE, refused either command, or reported no HIGHESTMODSEQ. An
// error means the connection failed.
func (c *Client) StatusChanges(ctx context.Context, name string, since mail.ModSeq) (mail.MailboxStatus, []mail.RemoteMessage, bool, error) {
	if !c.condStore() || since == 0 {
		return mail.MailboxStatus{}, nil, false, nil
	}
	if name != c.selected {
		return mail.MailboxStatus{}, nil, false, fmt.Errorf("status and changes of %q: %q is selected", name, c.selected)
	}
	defer c.guard(ctx)()
	status := c.c.Status(name, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: true})
	fetch := c.c.Fetch(allUIDs(), &imap.FetchOptions{UID: true, Flags: true, ModSeq: true, ChangedSince: uint64(since)})
	var changed []mail.RemoteMessage
	for {
		msg := fetch.Next()
		if msg == nil {
			break
		}
		if m := readMeta(msg); m.UID != 0 {
			changed = append(changed, m)
		}
	}
	ferr := fetch.Close()
	sd, serr := status.Wait()
	var ierr *imap.Error
	for _, err := range []error{serr, ferr} {
		if err != nil && (!errors.As(err, &ierr) || c.closed()) {
			return mail.MailboxStatus{}, nil, false, fmt.Errorf("status and changes of %q: %w", name, c.ioErr(ctx, err))
		}
	}
	if serr != nil || ferr != nil {
		return mail.MailboxStatus{}, nil, false, nil
	}
	st := statusFromIMAP(sd)
	if st.HighestModSeq == 0 || st.UIDValidity == 0 {
		// NOMODSEQ (RFC 7162 §3.1.2.2), or a reply without the items.
		return st, changed, false, nil
	}
	return st, changed, true, nil
}
