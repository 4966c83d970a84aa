package imapremote

import (
	"context"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/satchel-mail/satchel/sync/mail"
)

// ListStatus lists every mailbox with its status (UIDVALIDITY, UIDNEXT,
// MESSAGES and, with CONDSTORE, HIGHESTMODSEQ), so that a mailbox where
// nothing changed need not be selected at all. With LIST-STATUS (RFC
// 5819, part of IMAP4rev2) that is one command; without it, the STATUS
// commands for all mailboxes are sent together and their answers awaited
// together, one round trip.
func (c *Client) ListStatus(ctx context.Context) ([]mail.RemoteMailbox, error) {
	defer c.guard(ctx)()
	items := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: c.caps.Has(imap.CapCondStore)}
	if c.caps.Has(imap.CapListStatus) || c.caps.Has(imap.CapIMAP4rev2) {
		data, err := c.c.List("", "*", &imap.ListOptions{ReturnStatus: items}).Collect()
		if err != nil {
			return nil, fmt.Errorf("list mailboxes: %w", c.ioErr(ctx, err))
		}
		out := make([]mail.RemoteMailbox, 0, len(data))
		for _, d := range data {
			m := remoteMailbox(d)
			if d.Status != nil && !m.NoSelect {
				st := statusFromIMAP(d.Status)
				m.Status = &st
			}
			out = append(out, m)
		}
		return out, nil
	}
	data, err := c.c.List("", "*", nil).Collect()
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", c.ioErr(ctx, err))
	}
	out := make([]mail.RemoteMailbox, 0, len(data))
	cmds := make([]*imapclient.StatusCommand, len(data))
	for i, d := range data {
		out = append(out, remoteMailbox(d))
		if !out[i].NoSelect {
			cmds[i] = c.c.Status(d.Mailbox, items)
		}
	}
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		sd, err := cmd.Wait()
		if err != nil {
			// A mailbox that cannot be asked about is simply selected
			// later, where its error is reported.
			continue
		}
		st := statusFromIMAP(sd)
		out[i].Status = &st
	}
	return out, nil
}

// statusFromIMAP converts a STATUS reply; a missing HIGHESTMODSEQ is 0.
func statusFromIMAP(d *imap.StatusData) mail.MailboxStatus {
	st := mail.MailboxStatus{
		UIDValidity:   mail.UIDValidity(d.UIDValidity),
		UIDNext:       mail.UID(d.UIDNext),
		HighestModSeq: mail.ModSeq(d.HighestModSeq),
	}
	if d.NumMessages != nil {
		st.Messages = *d.NumMessages
	}
	return st
}
