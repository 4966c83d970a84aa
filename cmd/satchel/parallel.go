package main

// Several accounts at once (parallel_accounts): each account's output is
// held back while an account before it in the configuration still runs,
// and passed straight through once every account before it is printed,
// so that a terminal or a cron mail reads account by account, in the
// configuration's order, whichever finishes first. The commands an
// account runs that may talk to the user (password and token commands,
// hooks) run one at a time across the process.

import (
	"context"
	"io"
	gosync "sync"
)

// oneAtATime is held while a password command, a token command or a
// hook runs: a command that asks on the terminal (pinentry, a prompt)
// must not be mixed up with another, and hooks have always run one after
// another.
var oneAtATime = make(chan struct{}, 1)

// takeTurn waits for oneAtATime, or for ctx to end; the returned
// function gives the turn back.
func takeTurn(ctx context.Context) (func(), error) {
	select {
	case oneAtATime <- struct{}{}:
		return func() { <-oneAtATime }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// heldOutput is one account's stdout and stderr: written through while
// the account is the first not yet printed, kept in the order written
// until then.
type heldOutput struct {
	stdout, stderr io.Writer

	mu      gosync.Mutex
	through bool
	held    []heldChunk
}

type heldChunk struct {
	stderr bool
	b      []byte
}

func (o *heldOutput) write(stderr bool, p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.through {
		o.held = append(o.held, heldChunk{stderr, append([]byte(nil), p...)})
		return len(p), nil
	}
	if stderr {
		return o.stderr.Write(p)
	}
	return o.stdout.Write(p)
}

// release writes what was held, in order, and lets later writes through.
func (o *heldOutput) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.held {
		w := o.stdout
		if c.stderr {
			w = o.stderr
		}
		w.Write(c.b)
	}
	o.held, o.through = nil, true
}

// heldStream is one of a heldOutput's two streams.
type heldStream struct {
	o      *heldOutput
	stderr bool
}

func (s heldStream) Write(p []byte) (int, error) { return s.o.write(s.stderr, p) }

// inOrder hands out each account's output and prints them in order.
type inOrder struct {
	mu   gosync.Mutex
	outs []*heldOutput
	done []bool
	next int // the first account not printed to the end
}

// newInOrder prepares the output of n accounts, written to g's stdout
// and stderr; the first account's goes straight through.
func newInOrder(g *globals, n int) *inOrder {
	q := &inOrder{outs: make([]*heldOutput, n), done: make([]bool, n)}
	for i := range q.outs {
		q.outs[i] = &heldOutput{stdout: g.stdout, stderr: g.stderr}
	}
	if n > 0 {
		q.outs[0].release()
	}
	return q
}

// globals returns g as account i writes through it: its own output and
// logger. With several accounts running at once (parallel) it shows no
// progress bars, which would draw over each other.
func (q *inOrder) globals(g *globals, i int, parallel bool) *globals {
	ag := *g
	ag.stdout = heldStream{q.outs[i], false}
	ag.stderr = heldStream{q.outs[i], true}
	ag.logOut = &switchWriter{w: ag.stderr}
	ag.log = newLogger(&ag)
	ag.parallel = parallel
	return &ag
}

// finish marks account i done and prints what is ready: every account
// done after those printed, and the output of the next one from now on.
func (q *inOrder) finish(i int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.done[i] = true
	for q.next < len(q.outs) && q.done[q.next] {
		q.outs[q.next].release()
		q.next++
	}
	if q.next < len(q.outs) {
		q.outs[q.next].release()
	}
}
