//go:build !linux

package sync

import "time"

// coarseNow: where the clock that stamps files cannot be read, stampWait
// waits a fixed time instead.
func coarseNow() (now time.Time, tick time.Duration, ok bool) { return time.Time{}, 0, false }
