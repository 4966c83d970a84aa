// A test may import test support, and anything else: not a break.
package verify

import (
	_ "example.com/m/cmd/satchel"
	_ "example.com/m/sync/imaptest"
)
