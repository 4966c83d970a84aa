package imapremote

import (
	"context"
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Namespaces reports the server's namespaces (RFC 2342): which prefix the
// user's own mailboxes carry and which hierarchy delimiter each namespace
// uses. A server without NAMESPACE reports Known false; nothing is guessed
// for it. The answer is asked once per connection.
func (c *Client) Namespaces(ctx context.Context) (mail.Namespaces, error) {
	if c.ns != nil {
		return *c.ns, nil
	}
	if !c.caps.Has(imap.CapNamespace) && !c.caps.Has(imap.CapIMAP4rev2) {
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
