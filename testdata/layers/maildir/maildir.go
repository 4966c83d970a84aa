// An adapter importing a command; importing shared types is fine.
package maildir

import (
	_ "example.com/m/cmd/satchel"
	_ "example.com/m/sync/mail"
)
