package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The several-accounts measurement: three accounts, each on a Dovecot of
// its own behind a link of -latency each way, synced by one `satchel
// sync` (all accounts of the configuration) and by one `satchel sync
// NAME` per account, one after another, as a user syncing each account
// from its own cron line would. Only satchel runs: the question is what
// syncing accounts side by side gains, not how satchel compares to mbsync.

// accountsResult is what the several-accounts measurement found.
type accountsResult struct {
	Accounts int            `json:"accounts"`
	Messages int            `json:"messages_each"`
	Rows     []accountsPair `json:"rows"`
}

// accountsPair is one scenario run both ways.
type accountsPair struct {
	Title    string  `json:"title"`
	Together *result `json:"together"`   // one run syncing every account
	OneByOne *result `json:"one_by_one"` // the accounts' runs, summed
}

// ratio is the together run's time over the one-by-one runs'.
func (p accountsPair) ratio() (float64, bool) {
	if p.Together == nil || p.OneByOne == nil || p.OneByOne.Seconds <= 0 || p.Together.Exit != 0 || p.OneByOne.Exit != 0 {
		return 0, false
	}
	return p.Together.Seconds / p.OneByOne.Seconds, true
}

// accountFolders are each account's mailboxes.
var accountFolders = []folder{{"INBOX", 0.5}, {"Archive", 0.3}, {"Sent", 0.2}}

func measureAccounts(ctx context.Context, o options, work, bin string) (*accountsResult, error) {
	const n = 3
	dir := filepath.Join(work, "accounts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sz := mainSizes
	sz.bigShare = 0
	var (
		srvs  []*dovecot
		accts []satchelAccount
		names []string
	)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("acct%d", i)
		srv, err := startDovecot(filepath.Join(dir, "server-"+name))
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		d := dataset{id: name, folders: accountFolders, count: o.accountMsgs, sizes: sz}
		if _, err := seed(ctx, srv.Addr, []dataset{d}, o.seed+uint64(i)); err != nil {
			return nil, fmt.Errorf("seed %s: %w", name, err)
		}
		if err := srv.configure(false); err != nil {
			return nil, err
		}
		if err := srv.waitIdle(ctx); err != nil {
			return nil, err
		}
		proxy, err := startLatencyProxy(srv.Addr, o.latency)
		if err != nil {
			return nil, err
		}
		defer proxy.close()
		srvs = append(srvs, srv)
		names = append(names, name)
		accts = append(accts, satchelAccount{name, proxy.port(), filepath.Join(dir, name), filepath.Join(dir, name+".db"), d.mailboxNames()})
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := writeSatchelConfig(cfg, accts); err != nil {
		return nil, err
	}
	env := satchelEnv(dir)
	logPath := filepath.Join(dir, "satchel.log")
	syncRun := func(args ...string) (procResult, error) {
		return runProc(ctx, logPath, env, bin, append([]string{"--config", cfg, "-q", "sync"}, args...)...)
	}
	// together runs one sync of every account; oneByOne one per account,
	// and sums them.
	together := func() (procResult, error) { return syncRun() }
	oneByOne := func() (procResult, error) {
		var sum procResult
		for _, name := range names {
			pr, err := syncRun(name)
			if err != nil {
				return sum, err
			}
			sum.elapsed += pr.elapsed
			sum.user += pr.user
			sum.sys += pr.sys
			sum.maxRSS = max(sum.maxRSS, pr.maxRSS)
			sum.exit = max(sum.exit, pr.exit)
		}
		return sum, nil
	}
	reset := func() error {
		for _, a := range accts {
			paths, _ := filepath.Glob(a.index + "*")
			for _, p := range append(paths, a.maildir) {
				if err := os.RemoveAll(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	changes := uint64(100)
	change := func() error {
		for _, srv := range srvs {
			changes++
			if _, _, err := changeServer(ctx, srv.Addr, accountFolders, serverChange{flagShare: o.flagShare, deliver: 10, expunge: 5}, sz, o.seed+changes); err != nil {
				return err
			}
			if err := srv.waitIdle(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	// measure runs way runs times after prepare (nil: nothing to do).
	measure := func(runs int, prepare func() error, way func() (procResult, error)) (*result, error) {
		res := &result{}
		for i := 0; i < runs; i++ {
			if prepare != nil {
				if err := prepare(); err != nil {
					return nil, err
				}
			}
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			pr, err := way()
			if err != nil {
				return nil, err
			}
			res.Runs = append(res.Runs, pr.elapsed.Seconds())
			res.RunsRSS = append(res.RunsRSS, float64(pr.maxRSS)/(1<<20))
			res.PeakRSSMB = max(res.PeakRSSMB, float64(pr.maxRSS)/(1<<20))
			if pr.exit != 0 && res.Exit == 0 {
				res.Exit = pr.exit
			}
		}
		res.Seconds = median(res.Runs)
		return res, nil
	}

	out := &accountsResult{Accounts: n, Messages: o.accountMsgs}
	lat := fmt.Sprintf("+%v each way", o.latency)
	steps := []struct {
		title   string
		runs    int
		prepare func() error
	}{
		{"first sync, " + lat, 1, reset},
		{fmt.Sprintf("no-op (median of %d), %s", max(1, o.repeat), lat), max(1, o.repeat), nil},
		{fmt.Sprintf("after server changes (%g%% flags, 10 new, 5 expunged in each), %s", 100*o.flagShare, lat), 1, change},
	}
	for _, st := range steps {
		progress("accounts: %s", st.title)
		pair := accountsPair{Title: st.title}
		var err error
		if pair.Together, err = measure(st.runs, st.prepare, together); err != nil {
			return nil, err
		}
		if pair.OneByOne, err = measure(st.runs, st.prepare, oneByOne); err != nil {
			return nil, err
		}
		progress("accounts: %s: %.2fs together, %.2fs one by one", st.title, pair.Together.Seconds, pair.OneByOne.Seconds)
		out.Rows = append(out.Rows, pair)
	}
	return out, nil
}
