package imapremote

import (
	"context"
	"errors"
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
//
// With OBJECTID (RFC 8474) each status carries the mailbox's MAILBOXID
// (§4.3), asked for in the same round trip. NAMESPACE, when its answer is
// not known yet, goes in it too, for Namespaces.
func (c *Client) ListStatus(ctx context.Context) ([]mail.RemoteMailbox, error) {
	defer c.guard(ctx)()
	items := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: c.caps.Has(imap.CapCondStore)}
	c.q.MailboxIDs() // forget what earlier commands reported
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
		// MAILBOXID in a LIST of its own (see mailboxIDOnly), answered
		// right after the first: a mailbox renamed in between is left
		// without an id, as on a server without OBJECTID.
		var ids *imapclient.ListCommand
		if c.caps.Has(capObjectID) {
			ids = c.c.List("", "*", &imap.ListOptions{ReturnStatus: mailboxIDOnly})
		}
		ns := c.sendNamespace()
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
		if ids != nil {
			// The ids are kept as the wire layer reads them; a refusal
			// leaves the mailboxes without one.
			if _, err := ids.Collect(); err != nil && !isIMAPError(err) {
				return nil, fmt.Errorf("list mailboxes: %w", c.ioErr(ctx, err))
			}
		}
		if err := c.keepNamespace(ctx, ns); err != nil {
			return nil, err
		}
		idOf := c.q.MailboxIDs()
		out := make([]mail.RemoteMailbox, 0, len(data))
		for _, d := range data {
			if a, ok := attrs[d.Mailbox]; ok {
				d.Attrs = mergeAttrs(d.Attrs, a)
			}
			m := remoteMailbox(d)
			if d.Status != nil && !m.NoSelect {
				st := statusFromIMAP(d.Status)
				st.MailboxID = idOf[m.Name]
				m.Status = &st
			}
			out = append(out, m)
		}
		return out, nil
	}
	list := c.c.List("", "*", c.listOptions())
	ns := c.sendNamespace()
	data, err := list.Collect()
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", c.ioErr(ctx, err))
	}
	if err := c.keepNamespace(ctx, ns); err != nil {
		return nil, err
	}
	out := make([]mail.RemoteMailbox, 0, len(data))
	cmds := make([]*imapclient.StatusCommand, len(data))
	var idCmds []*imapclient.StatusCommand
	for i, d := range data {
		out = append(out, remoteMailbox(d))
		if !out[i].NoSelect {
			cmds[i] = c.c.Status(d.Mailbox, items)
			if c.caps.Has(capObjectID) {
				idCmds = append(idCmds, c.c.Status(d.Mailbox, mailboxIDOnly))
			}
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
	for _, cmd := range idCmds {
		cmd.Wait() // a mailbox whose id is refused goes without one
	}
	idOf := c.q.MailboxIDs()
	for i := range out {
		if out[i].Status != nil {
			out[i].Status.MailboxID = idOf[out[i].Name]
		}
	}
	return out, nil
}

// mailboxIDOnly makes go-imap write an empty status item list, which the
// wire layer turns into "(MAILBOXID)" on a server with OBJECTID (see
// qresync.Conn.RequestMailboxIDs): go-imap has no name for the item. It is
// asked for alone because Cyrus 3.6.1 garbles it when other items come
// with it.
var mailboxIDOnly = &imap.StatusOptions{}

// isIMAPError tells the server's refusal of a command (NO, BAD) from a
// connection that failed.
func isIMAPError(err error) bool {
	var ierr *imap.Error
	return errors.As(err, &ierr)
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
