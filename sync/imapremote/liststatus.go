package imapremote

import (
	"context"
	"fmt"
	"strings"

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
		special := c.caps.Has(imap.CapSpecialUse)
		cmd := c.c.List("", "*", &imap.ListOptions{ReturnStatus: items, ReturnSpecialUse: special})
		// Without SPECIAL-USE, RETURN (SPECIAL-USE) may not be asked for
		// (RFC 6154 §5.1), and an extended LIST need not carry the
		// attributes a plain one does (Dovecot leaves them out): a plain
		// LIST, sent in the same round trip, gives them.
		var plain *imapclient.ListCommand
		if !special {
			plain = c.c.List("", "*", nil)
		}
		data, err := cmd.Collect()
		if err != nil {
			return nil, fmt.Errorf("list mailboxes: %w", c.ioErr(ctx, err))
		}
		attrs := map[string][]imap.MailboxAttr{}
		if plain != nil {
			pdata, err := plain.Collect()
			if err != nil {
				return nil, fmt.Errorf("list mailboxes: %w", c.ioErr(ctx, err))
			}
			for _, d := range pdata {
				attrs[d.Mailbox] = d.Attrs
			}
		}
		out := make([]mail.RemoteMailbox, 0, len(data))
		for _, d := range data {
			if a, ok := attrs[d.Mailbox]; ok {
				d.Attrs = mergeAttrs(d.Attrs, a)
			}
			m := remoteMailbox(d)
			if d.Status != nil && !m.NoSelect {
				st := statusFromIMAP(d.Status)
				m.Status = &st
			}
			out = append(out, m)
		}
		return out, nil
	}
	data, err := c.c.List("", "*", c.listOptions()).Collect()
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

// mergeAttrs adds to a the attributes of b it lacks.
func mergeAttrs(a, b []imap.MailboxAttr) []imap.MailboxAttr {
	out := append([]imap.MailboxAttr(nil), a...)
	for _, x := range b {
		found := false
		for _, y := range a {
			if strings.EqualFold(string(x), string(y)) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}
