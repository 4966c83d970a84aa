package main

import (
	"fmt"
	"io"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progressBars shows one account's transfers on a terminal: a bar per
// mailbox while it downloads or uploads, with messages and bytes done of
// those announced, the rate and the time left. A bar goes when its
// mailbox's transfers are done; the summary line says what happened. It
// implements the engine's Progress (sync.Progress).
type progressBars struct {
	account string
	out     io.Writer
	// logs is the logger's output, routed above the bars while they
	// show so that a log line does not tear them.
	logs *switchWriter
	opts []mpb.ContainerOption
	now  func() time.Time

	mu    gosync.Mutex
	p     *mpb.Progress // made with the first bar
	boxes map[string]*boxProgress
}

// boxProgress is one mailbox's bar. Its counters are atomic: the bar's
// decorators read them from mpb's goroutines, which must never wait for
// progressBars.mu (Advance holds no lock while it talks to mpb, and the
// decorators take none).
type boxProgress struct {
	bar              *mpb.Bar
	start            time.Time
	msgs, msgsDone   atomic.Int64
	bytes, bytesDone atomic.Int64
}

// newProgressBars returns the progress display for an account, writing
// to out (a terminal), with the logger's output in logs.
func newProgressBars(account string, out io.Writer, logs *switchWriter) *progressBars {
	return &progressBars{
		account: account,
		out:     out,
		logs:    logs,
		// Forced: out may be a wrapper around the terminal, or a test's
		// buffer.
		opts:  []mpb.ContainerOption{mpb.WithOutput(out), mpb.WithAutoRefresh(), mpb.ForceTTY()},
		now:   time.Now,
		boxes: map[string]*boxProgress{},
	}
}

// Plan starts a mailbox's bar, or adds to it while it runs.
func (pb *progressBars) Plan(mailbox string, messages int, bytes int64) {
	if messages <= 0 {
		return
	}
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if bp := pb.boxes[mailbox]; bp != nil && !bp.done() {
		total := bp.msgs.Add(int64(messages))
		bp.bytes.Add(bytes)
		bp.bar.SetTotal(total, false)
		return
	}
	if pb.p == nil {
		pb.p = mpb.New(pb.opts...)
		pb.logs.set(pb.p)
	}
	bp := &boxProgress{start: pb.now()}
	bp.msgs.Store(int64(messages))
	bp.bytes.Store(bytes)
	// Created without a total, the bar completes only when told: the
	// totals can grow while it runs.
	bp.bar = pb.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(pb.account+" "+mailbox, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return bp.describe(pb.now()) })),
		mpb.BarRemoveOnComplete(),
	)
	bp.bar.SetTotal(int64(messages), false)
	pb.boxes[mailbox] = bp
}

// Advance counts messages done; the bar completes with the last one
// announced.
func (pb *progressBars) Advance(mailbox string, messages int, bytes int64) {
	pb.mu.Lock()
	bp := pb.boxes[mailbox]
	pb.mu.Unlock()
	if bp == nil {
		return
	}
	bp.bytesDone.Add(bytes)
	done := bp.msgsDone.Add(int64(messages))
	bp.bar.IncrBy(messages)
	if done >= bp.msgs.Load() {
		bp.bar.SetTotal(-1, true)
	}
}

// finish takes the bars of transfers that did not complete (a failure,
// an interruption) off the terminal and waits until the display is
// clear. The summary and any error lines follow it.
func (pb *progressBars) finish() {
	pb.mu.Lock()
	p := pb.p
	for _, bp := range pb.boxes {
		if !bp.done() {
			bp.bar.Abort(true)
		}
	}
	pb.p = nil
	pb.mu.Unlock()
	if p != nil {
		pb.logs.set(pb.out)
		p.Wait()
	}
}

func (bp *boxProgress) done() bool {
	return bp.msgsDone.Load() >= bp.msgs.Load()
}

// describe is the text beside the bar:
// "12/40 msgs  1.2 MiB/5.0 MiB  350.0 KiB/s  ETA 8s".
func (bp *boxProgress) describe(now time.Time) string {
	msgs, msgsDone := bp.msgs.Load(), bp.msgsDone.Load()
	bytes, bytesDone := bp.bytes.Load(), bp.bytesDone.Load()
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d msgs  ", msgsDone, msgs)
	// Uploads are announced without their size: only what is done is
	// known.
	if bytes > 0 {
		fmt.Fprintf(&b, "%s/%s", humanBytes(bytesDone), humanBytes(max(bytes, bytesDone)))
	} else {
		b.WriteString(humanBytes(bytesDone))
	}
	elapsed := now.Sub(bp.start)
	if elapsed <= 0 || msgsDone == 0 {
		return b.String()
	}
	rate := float64(bytesDone) / elapsed.Seconds()
	fmt.Fprintf(&b, "  %s/s", humanBytes(int64(rate)))
	var left time.Duration
	switch {
	case msgsDone >= msgs:
		return b.String()
	case bytes > bytesDone && rate > 0:
		left = time.Duration(float64(bytes-bytesDone) / rate * float64(time.Second))
	default:
		left = time.Duration(float64(msgs-msgsDone) / float64(msgsDone) * float64(elapsed))
	}
	fmt.Fprintf(&b, "  ETA %s", left.Round(time.Second))
	return b.String()
}
