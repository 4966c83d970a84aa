//go:build linux

package sync

import (
	"time"

	"golang.org/x/sys/unix"
)

// coarseNow reads the clock the kernel stamps files with
// (CLOCK_REALTIME_COARSE, what current_time() reads) and its tick.
func coarseNow() (now time.Time, tick time.Duration, ok bool) {
	var ts, res unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &ts) != nil || unix.ClockGetres(unix.CLOCK_REALTIME_COARSE, &res) != nil {
		return time.Time{}, 0, false
	}
	return time.Unix(ts.Unix()), time.Duration(res.Nano()), true
}
