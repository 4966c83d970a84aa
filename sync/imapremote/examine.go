package imapremote

import (
	"context"
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Examine opens a mailbox read-only (EXAMINE, RFC 9051 §6.3.3), with
// CONDSTORE when the server has it, and returns its state as Select does.
// Nothing sent in an examined mailbox can change it: the server keeps
// \Recent for other sessions and refuses STORE, EXPUNGE and MOVE there.
// Fetches of BODY.PEEK[] and metadata work as after Select.
func (c *Client) Examine(ctx context.Context, name string) (mail.MailboxStatus, error) {
	defer c.guard(ctx)()
	opts := &imap.SelectOptions{ReadOnly: true, CondStore: c.caps.Has(imap.CapCondStore)}
	data, err := c.c.Select(name, opts).Wait()
	if err != nil {
		c.selected = ""
		return mail.MailboxStatus{}, fmt.Errorf("examine %q: %w", name, c.ioErr(ctx, err))
	}
	c.opened(name, true)
	if data.UIDValidity == 0 {
		// RFC 9051 §2.3.1.1: without UIDVALIDITY no UID can be compared
		// with the one recorded in the index.
		return mail.MailboxStatus{}, fmt.Errorf("examine %q: the server sent no UIDVALIDITY; its UIDs cannot be relied on", name)
	}
	return mailboxStatus(data), nil
}

// Selected names the mailbox open read-write on this connection ("" when
// none, or when it is only examined): what is sent next acts on it
// without another SELECT.
func (c *Client) Selected() string {
	if c.examined {
		return ""
	}
	return c.selected
}
