package sync

import (
	"testing"
	"time"
)

// SetConnectBackoff replaces the waits between connection attempts for
// the rest of the test.
func SetConnectBackoff(t testing.TB, waits ...time.Duration) {
	old := connectBackoff
	connectBackoff = waits
	t.Cleanup(func() { connectBackoff = old })
}
