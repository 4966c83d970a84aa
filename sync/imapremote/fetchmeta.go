package imapremote

import (
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/satchel-mail/satchel/sync/mail"
)

// readMeta reads the metadata of one FETCH response: UID, FLAGS, MODSEQ,
// RFC822.SIZE and INTERNALDATE, whichever are present (UID 0 when it is
// absent). It never holds a body: a body section the server sends
// unasked is skipped, which go-imap does by reading it through once (Next
// discards the previous item). Collect would instead keep the whole body
// in memory, however large, and read a literal cut short a second time,
// racing with go-imap's reader, which has moved on by then.
func readMeta(msg *imapclient.FetchMessageData) mail.RemoteMessage {
	m := mail.RemoteMessage{Flags: flagsFromIMAP(nil)}
	for {
		item := msg.Next()
		if item == nil {
			return m
		}
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			m.UID = mail.UID(it.UID)
		case imapclient.FetchItemDataFlags:
			m.Flags = flagsFromIMAP(it.Flags)
		case imapclient.FetchItemDataModSeq:
			m.ModSeq = mail.ModSeq(it.ModSeq)
		case imapclient.FetchItemDataRFC822Size:
			m.Size = it.Size
		case imapclient.FetchItemDataInternalDate:
			m.InternalDate = it.Time
		}
	}
}
