// The IMAP adapter importing an engine other than sync; go-imap is fine.
package imapremote

import (
	_ "example.com/m/sync/verify"
	_ "github.com/emersion/go-imap/v2"
)
