package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The -million measurement: one mailbox of a million small messages on a
// Dovecot of its own, synced by satchel alone over loopback (mbsync needs
// hundreds of megabytes and many minutes for it; the question is whether
// satchel's costs stay flat, not how it compares). It is not part of the
// default run: seeding alone takes minutes.

// millionResult is what the -million measurement found.
type millionResult struct {
	Messages int     `json:"messages"`
	SeedSecs float64 `json:"seed_seconds"`
	First    *result `json:"first_sync"`
	Second   *result `json:"second_sync"`
	Noop     *result `json:"noop"`
	// ListStatus is the server's own time for the LIST-STATUS a no-op
	// sends: from the command to its tagged OK, on a fresh connection
	// (a fresh imap process, as a sync gets), the median of the runs.
	ListStatus     float64   `json:"list_status_seconds"`
	ListStatusRuns []float64 `json:"list_status_runs"`
	Changes        *result   `json:"changes100"`
	Change         string    `json:"change"`
}

// listStatusCommand is what satchel's no-op asks first (RFC 5819).
const listStatusCommand = `LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT HIGHESTMODSEQ UIDVALIDITY))`

func measureMillion(ctx context.Context, o options, work, bin string) (*millionResult, error) {
	dir := filepath.Join(work, "million")
	srv, err := startDovecot(filepath.Join(dir, "server"))
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	d := dataset{id: "million", title: thousands(o.millionMsgs) + " small msgs, 1 folder", folders: []folder{{"Million", 1}}, count: o.millionMsgs, sizes: smallSizes}
	progress("million: seeding %s", d.title)
	seedTime, err := seedMaildir(ctx, srv, d.folders[0].name, d.count, d.sizes, newGen(o.seed, 0))
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := srv.configure(false); err != nil {
		return nil, err
	}
	if err := srv.waitIdle(ctx); err != nil {
		return nil, err
	}
	progress("million: seeded in %v", seedTime.Round(time.Second))
	out := &millionResult{Messages: o.millionMsgs, SeedSecs: seedTime.Seconds()}

	cfg := filepath.Join(dir, "config.yaml")
	maildir := filepath.Join(dir, "million")
	if err := writeSatchelConfig(cfg, []satchelAccount{{d.id, srv.Port, maildir, filepath.Join(dir, "million.db"), d.mailboxNames()}}); err != nil {
		return nil, err
	}
	env := satchelEnv(dir)
	run := func(title string, runs int) (*result, error) {
		progress("million: %s", title)
		res := &result{}
		for i := 0; i < runs; i++ {
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			pr, err := runProc(ctx, filepath.Join(dir, "satchel.log"), env, bin, "--config", cfg, "-q", "sync")
			if err != nil {
				return nil, err
			}
			res.add(pr)
		}
		res.Seconds = median(res.Runs)
		if files, err := mailFiles(maildir); err == nil {
			res.Files = len(files)
		}
		progress("million: %s: %.2fs, %.1f MB, exit %d", title, res.Seconds, res.PeakRSSMB, res.Exit)
		return res, nil
	}
	if out.First, err = run("first sync", 1); err != nil {
		return nil, err
	}
	out.First.WantFiles = d.count
	// The sync after the first pays once for what the first left to
	// check (see README, "Performance"); the no-op is the one after.
	if out.Second, err = run("second sync", 1); err != nil {
		return nil, err
	}
	out.Second.WantFiles = d.count
	if out.Noop, err = run(fmt.Sprintf("no-op (median of %d)", max(1, o.repeat)), max(1, o.repeat)); err != nil {
		return nil, err
	}
	out.Noop.WantFiles = d.count
	if err := srv.waitIdle(ctx); err != nil {
		return nil, err
	}
	for i := 0; i < max(1, o.repeat); i++ {
		t, err := timeListStatus(ctx, srv.Addr)
		if err != nil {
			return nil, fmt.Errorf("LIST-STATUS: %w", err)
		}
		out.ListStatusRuns = append(out.ListStatusRuns, t.Seconds())
	}
	out.ListStatus = median(out.ListStatusRuns)
	progress("million: LIST-STATUS alone: %.3fs", out.ListStatus)

	desc, delta, err := changeServer(ctx, srv.Addr, d.folders, change100, d.sizes, o.seed+1)
	if err != nil {
		return nil, err
	}
	if err := srv.waitIdle(ctx); err != nil {
		return nil, err
	}
	out.Change = desc
	if out.Changes, err = run("after 100 changes on the server", 1); err != nil {
		return nil, err
	}
	out.Changes.Change, out.Changes.WantFiles = desc, d.count+delta
	if !o.keep {
		os.RemoveAll(maildir) // a million files, removed while the clock is not running
	}
	return out, nil
}

// timeListStatus opens a connection and times listStatusCommand alone.
func timeListStatus(ctx context.Context, addr string) (time.Duration, error) {
	c, err := dialRaw(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer c.close()
	start := time.Now()
	if err := c.command(listStatusCommand); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// seedMaildir writes n messages straight into box's cur/ on the server,
// named and dated as Dovecot stores what it is given (S= the file's size,
// W= the size with CRLF line ends, the flags after ":2,", the mtime the
// INTERNALDATE), and has Dovecot index them with one STATUS. MULTIAPPEND,
// which seeds the other datasets, slows down as a mailbox grows (Dovecot
// rewrites its uidlist and index per batch): a million messages would
// take half an hour, where this takes a minute or two.
func seedMaildir(ctx context.Context, srv *dovecot, box string, n int, sz sizes, g *gen) (time.Duration, error) {
	start := time.Now()
	if err := createMailboxes(ctx, srv.Addr, []string{box}); err != nil {
		return 0, err
	}
	if err := srv.waitIdle(ctx); err != nil {
		return 0, err
	}
	cur := filepath.Join(folderDir(srv.MailDir, box), "cur")
	pid := os.Getpid()
	for i := 0; i < n; i++ {
		if i%10000 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		m := g.next(sz)
		lf := bytes.ReplaceAll(m.body, []byte("\r\n"), []byte("\n"))
		var info []byte
		for _, f := range m.flags {
			info = append(info, map[string]byte{`\Answered`: 'R', `\Flagged`: 'F', `\Seen`: 'S'}[f])
		}
		slices.Sort(info)
		name := fmt.Sprintf("%d.M%dP%d.bench,S=%d,W=%d:2,%s", m.date.Unix(), i, pid, len(lf), len(m.body), strings.TrimSpace(string(info)))
		path := filepath.Join(cur, name)
		if err := os.WriteFile(path, lf, 0o600); err != nil {
			return 0, err
		}
		if srv.root {
			if err := os.Chown(path, nobody, nobody); err != nil {
				return 0, err
			}
		}
		if err := os.Chtimes(path, m.date, m.date); err != nil {
			return 0, err
		}
	}
	c, err := dialRaw(ctx, srv.Addr)
	if err != nil {
		return 0, err
	}
	defer c.close()
	if err := c.command("STATUS %s (MESSAGES UIDNEXT)", quote(box)); err != nil {
		return 0, fmt.Errorf("index %s: %w", box, err)
	}
	return time.Since(start), nil
}
