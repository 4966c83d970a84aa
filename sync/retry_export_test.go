package sync

import (
	"testing"
	"time"
)

// setForTest replaces *p with v for the rest of the test.
func setForTest[T any](t testing.TB, p *T, v T) {
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

// SetConnectBackoff replaces the waits between connection attempts for
// the rest of the test.
func SetConnectBackoff(t testing.TB, waits ...time.Duration) {
	setForTest(t, &connectBackoff, waits)
}

// SetStreamMin makes first syncs of mailboxes of n messages or more
// streamed (stream.go), for the rest of the test.
func SetStreamMin(t testing.TB, n uint32) { setForTest(t, &streamMin, n) }

// SetStreamWindow sets how many messages a window of a streamed first
// sync holds, for the rest of the test.
func SetStreamWindow(t testing.TB, n int) { setForTest(t, &streamWindow, n) }

// SetLeanAgreeMin makes agreedStamp compare folders of n rows or more
// by digest (agreeLean), for the rest of the test.
func SetLeanAgreeMin(t testing.TB, n int) { setForTest(t, &leanAgreeMin, n) }
