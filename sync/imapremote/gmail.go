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

// GmailLabels returns the X-GM-LABELS (and X-GM-MSGID) of the selected
// mailbox's messages: every message when since is 0, else those whose
// MODSEQ is above since (RFC 7162 §3.1.4), with their MODSEQ.
func (c *Client) GmailLabels(ctx context.Context, since mail.ModSeq) ([]mail.GmailLabeled, error) {
	if !c.Gmail() {
		return nil, fmt.Errorf("fetch X-GM-LABELS: the server does not advertise X-GM-EXT-1")
	}
	defer c.guard(ctx)()
	msgs, err := c.q.FetchGmail(ctx, qresync.GmailFetch{Set: "1:*", Labels: true, ModSeq: true, ChangedSince: uint64(since)})
	if err != nil {
		return nil, fmt.Errorf("fetch X-GM-LABELS in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	return gmailLabeled(msgs), nil
}

// GmailLabelsOf returns the X-GM-LABELS, FLAGS and MODSEQ of the given
// messages of the selected mailbox; gone messages are absent.
func (c *Client) GmailLabelsOf(ctx context.Context, uids []mail.UID) ([]mail.GmailLabeled, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	defer c.guard(ctx)()
	msgs, err := c.q.FetchGmail(ctx, qresync.GmailFetch{Set: uidSetString(uids), Labels: true, Flags: true, ModSeq: true})
	if err != nil {
		return nil, fmt.Errorf("fetch X-GM-LABELS in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	return gmailLabeled(msgs), nil
}

// StoreGmailLabels adds labels to the messages uids of the selected
// mailbox, or removes them, and returns the labels the server reports
// afterwards, by UID (a message it left out is absent).
func (c *Client) StoreGmailLabels(ctx context.Context, uids []mail.UID, labels []string, remove bool) (map[mail.UID][]string, error) {
	if len(uids) == 0 || len(labels) == 0 {
		return nil, nil
	}
	defer c.guard(ctx)()
	msgs, err := c.q.StoreGmail(ctx, qresync.GmailStore{Set: uidSetString(uids), Labels: labels, Remove: remove})
	if err != nil {
		return nil, fmt.Errorf("store X-GM-LABELS in %q: %w", c.selected, c.ioErr(ctx, err))
	}
	out := make(map[mail.UID][]string, len(msgs))
	for _, m := range gmailLabeled(msgs) {
		out[m.UID] = m.Labels
	}
	return out, nil
}

func gmailLabeled(msgs []qresync.GmailMessage) []mail.GmailLabeled {
	out := make([]mail.GmailLabeled, 0, len(msgs))
	for _, m := range msgs {
		if m.UID == 0 || !m.HasLabels {
			continue
		}
		g := mail.GmailLabeled{UID: mail.UID(m.UID), MsgID: m.MsgID, ModSeq: mail.ModSeq(m.ModSeq), Labels: m.Labels}
		if m.HasFlags {
			g.Flags, g.HasFlags = mail.NewFlags(m.Flags...), true
		}
		out = append(out, g)
	}
	return out
}
