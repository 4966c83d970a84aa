package imapremote

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Namespaces reports the server's namespaces (RFC 2342): which prefix the
// user's own mailboxes carry and which hierarchy delimiter each namespace
// uses. A server without NAMESPACE reports Known false; nothing is guessed
// for it. The answer is asked once per connection, and List and ListStatus
// ask for it in their own round trip: called after either, Namespaces
// costs nothing.
func (c *Client) Namespaces(ctx context.Context) (mail.Namespaces, error) {
	if c.ns != nil {
		return *c.ns, nil
	}
	if !c.hasNamespace() {
		c.ns = &mail.Namespaces{}
		return *c.ns, nil
	}
	defer c.guard(ctx)()
	d, err := c.c.Namespace().Wait()
	if err != nil {
		return mail.Namespaces{}, fmt.Errorf("namespace: %w", c.ioErr(ctx, err))
	}
	ns := namespacesFromIMAP(d)
	c.ns = &ns
	return ns, nil
}

// hasNamespace: NAMESPACE is RFC 2342's extension and part of IMAP4rev2
// (RFC 9051 §6.3.10).
func (c *Client) hasNamespace() bool {
	return c.caps.Has(imap.CapNamespace) || c.caps.Has(imap.CapIMAP4rev2)
}

// sendNamespace sends NAMESPACE, unless its answer is known or the server
// lacks it, for a listing to wait for together with its own commands:
// go-imap writes each command at once, so the two share a round trip.
// The result goes to keepNamespace; nil means nothing was sent.
func (c *Client) sendNamespace() *imapclient.NamespaceCommand {
	if c.ns != nil || !c.hasNamespace() {
		return nil
	}
	return c.c.Namespace()
}

// keepNamespace waits for the NAMESPACE sendNamespace sent and keeps the
// answer for Namespaces. A refusal is not the listing's failure: it is
// left to Namespaces, which asks again and reports it.
func (c *Client) keepNamespace(ctx context.Context, cmd *imapclient.NamespaceCommand) error {
	if cmd == nil {
		return nil
	}
	d, err := cmd.Wait()
	var ierr *imap.Error
	switch {
	case errors.As(err, &ierr):
		return nil
	case err != nil:
		return fmt.Errorf("namespace: %w", c.ioErr(ctx, err))
	}
	ns := namespacesFromIMAP(d)
	c.ns = &ns
	return nil
}

func namespacesFromIMAP(d *imap.NamespaceData) mail.Namespaces {
	conv := func(l []imap.NamespaceDescriptor) []mail.Namespace {
		var out []mail.Namespace
		for _, n := range l {
			out = append(out, mail.Namespace{Prefix: n.Prefix, Delim: n.Delim})
		}
		return out
	}
	return mail.Namespaces{Known: true, Personal: conv(d.Personal), Other: conv(d.Other), Shared: conv(d.Shared)}
}
