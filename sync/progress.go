package sync

import "github.com/satchel-mail/satchel/sync/mail"

// Progress is told what the apply phase transfers, for a progress
// display; Options.Progress nil means no one is told.
//
// The engine calls it from the goroutines that apply mailboxes. Mailboxes
// may be applied in parallel (Options.Connections), so calls for different
// mailboxes can come concurrently; the calls for one mailbox come in order
// from one goroutine. An implementation must be safe for concurrent use
// and must not block: it is called between one message and the next.
//
// Plan announces transfers about to start in a mailbox: a number of
// messages to download or upload, and their size in bytes as far as it is
// known in advance (a download's RFC822.SIZE; an upload's size is learned
// only as its file is read, so uploads are planned with 0 bytes). Plan can
// be called several times for one mailbox (downloads, then uploads); each
// call adds to what was announced. Advance reports messages done, with
// their bytes. A message that fails, or that vanished from the server, is
// never advanced: a display must not wait for the announced totals.
type Progress interface {
	Plan(mailbox string, messages int, bytes int64)
	Advance(mailbox string, messages int, bytes int64)
}

// planProgress announces messages to transfer in a mailbox.
func (o Options) planProgress(mailbox string, messages int, bytes int64) {
	if o.Progress != nil && messages > 0 {
		o.Progress.Plan(mailbox, messages, bytes)
	}
}

// advanceProgress reports one message transferred.
func (o Options) advanceProgress(mailbox string, bytes int64) {
	if o.Progress != nil {
		o.Progress.Advance(mailbox, 1, bytes)
	}
}

// totalSize is the sum of the messages' RFC822.SIZE.
func totalSize(msgs []mail.RemoteMessage) int64 {
	var n int64
	for _, m := range msgs {
		n += m.Size
	}
	return n
}
