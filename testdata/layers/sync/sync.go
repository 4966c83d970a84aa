// The engine importing an adapter and go-imap; the standard library, an
// engine and shared types are fine.
package sync

import (
	_ "context"

	_ "example.com/m/conflict"
	_ "example.com/m/store"
	_ "example.com/m/sync/mail"
	_ "github.com/emersion/go-imap/v2"
)
