// An engine importing test support; importing the engine is fine.
package verify

import (
	_ "example.com/m/sync"
	_ "example.com/m/sync/imaptest"
)
