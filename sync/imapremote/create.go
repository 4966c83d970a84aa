package imapremote

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Create creates a mailbox (RFC 9051 §6.3.4). The name is given in UTF-8
// and sent in modified UTF-7, with the server's hierarchy delimiter
// between levels; the server creates missing superior levels. A mailbox
// that already exists ([ALREADYEXISTS], RFC 5530 §3) is not an error, so
// that a step repeated after a crash succeeds; a server that refuses
// without that code is reported, and the caller can LIST to tell.
func (c *Client) Create(ctx context.Context, name string) error {
	defer c.guard(ctx)()
	err := c.c.Create(name, nil).Wait()
	if err == nil {
		return nil
	}
	var ierr *imap.Error
	if errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeAlreadyExists {
		return nil
	}
	return fmt.Errorf("create mailbox %q: %w", name, c.ioErr(ctx, err))
}

// Subscribe adds a mailbox to the subscription list (RFC 9051 §6.3.7),
// so that mail readers that show subscribed mailboxes show it.
func (c *Client) Subscribe(ctx context.Context, name string) error {
	defer c.guard(ctx)()
	if err := c.c.Subscribe(name).Wait(); err != nil {
		return fmt.Errorf("subscribe to mailbox %q: %w", name, c.ioErr(ctx, err))
	}
	return nil
}

// Status asks for a mailbox's status without selecting it (RFC 9051
// §6.3.11), with its MAILBOXID where the server has OBJECTID (RFC 8474
// §4.3). A mailbox that does not exist fails with mail.ErrNoMailbox:
// the server said so with [NONEXISTENT] (RFC 5530 §3), or refused without
// a code (Dovecot 2.3 does) and a LIST of that very name returns nothing
// selectable. Any other refusal is an error of its own, never taken for a
// missing mailbox.
func (c *Client) Status(ctx context.Context, name string) (mail.MailboxStatus, error) {
	defer c.guard(ctx)()
	items := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: c.caps.Has(imap.CapCondStore)}
	c.q.MailboxIDs() // forget what earlier commands reported
	cmd := c.c.Status(name, items)
	var idCmd *imapclient.StatusCommand
	if c.caps.Has(capObjectID) {
		// In the same round trip, on its own: see mailboxIDOnly.
		idCmd = c.c.Status(name, mailboxIDOnly)
	}
	d, err := cmd.Wait()
	if idCmd != nil {
		idCmd.Wait() // a refusal leaves the status without an id
	}
	if err == nil {
		st := statusFromIMAP(d)
		st.MailboxID = c.q.MailboxIDs()[d.Mailbox]
		return st, nil
	}
	var ierr *imap.Error
	if !errors.As(err, &ierr) || ierr.Type != imap.StatusResponseTypeNo {
		return mail.MailboxStatus{}, fmt.Errorf("status of mailbox %q: %w", name, c.ioErr(ctx, err))
	}
	if ierr.Code != imap.ResponseCodeNonExistent {
		if ierr.Code != "" {
			return mail.MailboxStatus{}, fmt.Errorf("status of mailbox %q: %w", name, err)
		}
		list, lerr := c.c.List("", name, nil).Collect()
		if lerr != nil {
			return mail.MailboxStatus{}, fmt.Errorf("list mailbox %q: %w", name, c.ioErr(ctx, lerr))
		}
		for _, l := range list {
			if l.Mailbox == name && !slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) && !slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
				return mail.MailboxStatus{}, fmt.Errorf("status of mailbox %q: %w", name, err)
			}
		}
	}
	return mail.MailboxStatus{}, fmt.Errorf("status of mailbox %q: %w", name, mail.ErrNoMailbox)
}

// Rename renames a mailbox and, as the server does, the mailboxes below
// it (RFC 9051 §6.3.6). Its messages keep their UIDs and UIDVALIDITY.
func (c *Client) Rename(ctx context.Context, from, to string) error {
	defer c.guard(ctx)()
	if err := c.unselect(ctx, from); err != nil {
		return err
	}
	if err := c.c.Rename(from, to, nil).Wait(); err != nil {
		return fmt.Errorf("rename mailbox %q to %q: %w", from, to, c.ioErr(ctx, err))
	}
	return nil
}

// Delete deletes a mailbox (RFC 9051 §6.3.5). A mailbox with others
// below it stays as a \Noselect level on servers that keep the
// hierarchy. A mailbox that does not exist is not an error, so that a
// step repeated after a crash succeeds.
func (c *Client) Delete(ctx context.Context, name string) error {
	defer c.guard(ctx)()
	if err := c.unselect(ctx, name); err != nil {
		return err
	}
	err := c.c.Delete(name).Wait()
	var ierr *imap.Error
	if err == nil || errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeNonExistent {
		return nil
	}
	return fmt.Errorf("delete mailbox %q: %w", name, c.ioErr(ctx, err))
}

// unselect leaves the selected mailbox if it is name (or below it):
// servers refuse to rename or delete the mailbox in use. Without UNSELECT
// (RFC 3691) it selects INBOX instead: CLOSE would expunge.
func (c *Client) unselect(ctx context.Context, name string) error {
	if c.selected == "" || c.selected != name && !strings.HasPrefix(c.selected, name) {
		return nil
	}
	var err error
	if c.caps.Has(imap.CapUnselect) || c.caps.Has(imap.CapIMAP4rev2) {
		err = c.c.Unselect().Wait()
	} else {
		_, err = c.c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	}
	if err != nil {
		return fmt.Errorf("leave mailbox %q: %w", c.selected, c.ioErr(ctx, err))
	}
	c.selected = ""
	return nil
}
