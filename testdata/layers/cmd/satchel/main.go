// A command may import engines, adapters and its configuration: not a
// break.
package main

import (
	_ "example.com/m/cmd/satchel/config"
	_ "example.com/m/maildir"
	_ "example.com/m/store"
	_ "example.com/m/sync"
)
