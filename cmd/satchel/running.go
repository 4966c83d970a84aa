package main

import (
	"context"
	"fmt"

	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/store"
)

// metaRun records in the index whether a run is in progress: a run that
// finds it set knows the last one was killed.
const metaRun = "run"

// markRunning records that a run is in progress and returns the function
// that records its end. If the last run was killed, the Maildir is first
// made durable as it stands (maildir.Root.SyncTree): what that run wrote
// without its directory fsyncs must not be built upon before it is.
func markRunning(ctx context.Context, g *globals, ix *store.Index, root maildir.Root) (func(), error) {
	state, ok, err := ix.Meta(ctx, metaRun)
	if err != nil {
		return nil, err
	}
	if ok && state == "running" {
		g.log.Info("the last run was interrupted; making the Maildir durable before going on", "maildir", root.Dir)
		if err := root.SyncTree(); err != nil {
			return nil, fmt.Errorf("make the Maildir durable after an interrupted run: %w", err)
		}
	}
	if err := ix.SetMeta(ctx, metaRun, "running"); err != nil {
		return nil, err
	}
	return func() {
		if err := ix.SetMeta(context.WithoutCancel(ctx), metaRun, "done"); err != nil {
			g.log.Warn("cannot record the end of the run", "err", err)
		}
	}, nil
}
