package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// transientErr is how the adapter marks a failure worth retrying.
type transientErr struct{ msg string }

func (e transientErr) Error() string   { return e.msg }
func (e transientErr) Unwrap() []error { return []error{mail.ErrTransient} }

func TestIsTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{transientErr{"connection reset"}, true},
		{fmt.Errorf("cannot connect to x: %w", transientErr{"EOF"}), true},
		{errors.New("authentication failed"), false},
		{errors.New("connection reset by peer"), false}, // unmarked: the adapter did not say
		{fmt.Errorf("%w: %w", context.Canceled, transientErr{"closed"}), false},
		{fmt.Errorf("%w: %w", context.DeadlineExceeded, transientErr{"closed"}), false},
	} {
		if got := isTransient(tc.err); got != tc.want {
			t.Errorf("isTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestConnectRetries: transient failures are retried as many times as
// connectBackoff has waits, others not at all.
func TestConnectRetries(t *testing.T) {
	SetConnectBackoff(t, time.Millisecond, time.Millisecond, time.Millisecond)
	errAuth := errors.New("authentication failed")
	for _, tc := range []struct {
		name     string
		fails    []error
		attempts int
		ok       bool
	}{
		{"first try", nil, 1, true},
		{"after two transient failures", []error{transientErr{"EOF"}, transientErr{"reset"}}, 3, true},
		{"transient until the end", []error{transientErr{"1"}, transientErr{"2"}, transientErr{"3"}, transientErr{"4"}, transientErr{"5"}}, 4, false},
		{"permanent", []error{errAuth}, 1, false},
		{"permanent after a transient one", []error{transientErr{"EOF"}, errAuth}, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attempts := 0
			r := &runner{log: slog.New(slog.DiscardHandler), deps: Deps{Connect: func(context.Context) (Remote, error) {
				attempts++
				if attempts <= len(tc.fails) {
					return nil, tc.fails[attempts-1]
				}
				return nil, nil
			}}}
			_, err := r.connect(t.Context())
			if (err == nil) != tc.ok {
				t.Errorf("connect error %v, want success %v", err, tc.ok)
			}
			if attempts != tc.attempts {
				t.Errorf("%d attempts, want %d", attempts, tc.attempts)
			}
		})
	}
}

// TestConnectRetryCancelled: a cancelled run stops waiting to retry.
func TestConnectRetryCancelled(t *testing.T) {
	SetConnectBackoff(t, time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	r := &runner{log: slog.New(slog.DiscardHandler), deps: Deps{Connect: func(context.Context) (Remote, error) {
		cancel()
		return nil, transientErr{"EOF"}
	}}}
	if _, err := r.connect(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("connect error %v, want context.Canceled", err)
	}
}
