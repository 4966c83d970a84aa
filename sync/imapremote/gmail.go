package imapremote

import (
	"context"
	"fmt"

	"github.com/satchel-mail/satchel/sync/imapremote/qresync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// Gmail reports whether the server has Gmail's IMAP extensions
// (X-GM-EXT-1, https://developers.google.com/gmail/imap/imap-extensions):
// one message, with one X-GM-MSGID, shows in the mailbox of each of its
// labels.
func (c *Client) Gmail() bool { return c.Has("X-GM-EXT-1") }

// GmailIDs returns the X-GM-MSGID of each of uids in the selected mailbox
// that the server still has; gone messages are absent. go-imap cannot
// ask for the item (and fails a FETCH answering it): the command goes
// beside it, through the qresync layer.
func (c *Client) GmailIDs(ctx context.Context, uids []mail.UID) (map[mail.UID]uint64, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	if !c.Gmail() {
		return nil, fmt.Errorf("fetch X-GM-MSGID: the server does not advertise X-GM-EXT-1")
	}
	defer c.guard(ctx)()
	msgs, err := c.q.FetchGmail(ctx, qresync.GmailFetch{Set: uidSetString(uids)})
	if err != nil {
		return nil, fmt.Errorf("fetch X-GM-MSGID in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	out := make(map[mail.UID]uint64, len(msgs))
	want := make(map[mail.UID]bool, len(uids))
	for _, u := range uids {
		want[u] = true
	}
	for _, m := range msgs {
		if u := mail.UID(m.UID); want[u] && m.MsgID != 0 {
			out[u] = m.MsgID
		}
	}
	return out, nil
}
