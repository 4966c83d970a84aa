package sync

import (
	"context"
	"errors"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// connectBackoff is how long to wait before each new attempt to connect
// after a transient failure: three more attempts, 1 s, 2 s and 4 s apart.
// A server restarting, or refusing connections over its limit for a
// moment, is usually back within that; a server that is not is reported
// after about 7 seconds. A variable so that tests can shorten it.
var connectBackoff = []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second}

// isTransient reports whether a failure to connect may not recur on the
// next attempt. The adapter says so by wrapping mail.ErrTransient: a
// connection reset or closed, a server that stopped answering, a BYE
// greeting, [UNAVAILABLE]. Refused credentials are never transient, nor
// is anything once the run's context has ended.
func isTransient(err error) bool {
	return errors.Is(err, mail.ErrTransient) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// connect opens a connection with deps.Connect, trying again after the
// delays of connectBackoff as long as the failure is transient.
func (r *runner) connect(ctx context.Context) (Remote, error) {
	for attempt := 0; ; attempt++ {
		c, err := r.deps.Connect(ctx)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if attempt >= len(connectBackoff) || !isTransient(err) {
			return nil, err
		}
		wait := connectBackoff[attempt]
		r.log.Warn("cannot connect; trying again", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
