// Test support may import go-imap and the adapters: not a break.
package imaptest

import (
	_ "example.com/m/store"
	_ "github.com/emersion/go-imap/v2"
)
