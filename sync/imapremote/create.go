package imapremote

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"
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
