package imapremote

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/textproto"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Identify returns, for every message of the selected mailbox, what
// tells it apart when UIDs cannot: Message-ID, RFC822.SIZE and
// INTERNALDATE, with its flags. It reads only the Message-ID header
// (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]), never the message.
func (c *Client) Identify(ctx context.Context) ([]mail.RemoteMessage, error) {
	defer c.guard(ctx)()
	section := &imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}}
	cmd := c.c.Fetch(allUIDs(), &imap.FetchOptions{
		UID: true, Flags: true, RFC822Size: true, InternalDate: true, ModSeq: c.caps.Has(imap.CapCondStore),
		BodySection: []*imap.FetchItemBodySection{section},
	})
	var out []mail.RemoteMessage
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		buf, err := msg.Collect()
		if err != nil {
			cmd.Close()
			return nil, fmt.Errorf("identify messages in %q: %w", c.selected, c.ioErr(ctx, err))
		}
		if buf.UID == 0 {
			continue
		}
		out = append(out, mail.RemoteMessage{
			UID: mail.UID(buf.UID), Flags: flagsFromIMAP(buf.Flags), ModSeq: mail.ModSeq(buf.ModSeq),
			Size: buf.RFC822Size, InternalDate: buf.InternalDate,
			MessageID: headerMessageID(buf.FindBodySection(section)),
		})
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("identify messages in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	return out, nil
}

// headerMessageID reads the Message-ID field of a header block: unfolded
// and trimmed, "" when absent or unreadable.
func headerMessageID(h []byte) string {
	if len(h) == 0 {
		return ""
	}
	if !bytes.HasSuffix(h, []byte("\r\n\r\n")) {
		h = append(bytes.TrimRight(h, "\r\n"), "\r\n\r\n"...)
	}
	mh, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(h))).ReadMIMEHeader()
	if err != nil && len(mh) == 0 {
		return ""
	}
	return strings.TrimSpace(mh.Get("Message-Id"))
}
