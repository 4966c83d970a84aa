package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// scenario is one row of the table.
type scenario struct {
	id    string
	ds    string // dataset id
	title string
	kind  kind
	via   link
}

type kind int

const (
	firstSync kind = iota
	secondSync
	noop
	afterServer     // -flag-share, -new, -remove over the dataset's mailboxes
	afterLocal      // the same in the Maildir
	oneBox          // a few changes in one mailbox on the server
	oneBoxCondStore // the same, the server offering CONDSTORE without QRESYNC
	changes100      // 100 changes on the server, 60 flags, 20 new, 20 expunged
	firstCompress   // first sync, the server offering COMPRESS=DEFLATE
)

// What the one-mailbox scenarios change in the main dataset's INBOX, and
// the changes100 scenarios in a mailbox.
var (
	oneBoxChange = serverChange{flags: 5, deliver: 5, expunge: 3}
	change100    = serverChange{flags: 60, deliver: 20, expunge: 20}
)

// compressLevel is the deflate level of the Dovecot that offers COMPRESS
// (imap_zlib_compress_level; 6 is zlib's default).
const compressLevel = 6

// scenarios lists the rows in the order they run; each tool runs all of
// them from the same server state. The sync right after the first one is
// a row of its own, apart from the no-op's median: it may still finish
// work of the first sync (satchel re-learns a folder whose stamp the first
// sync could not trust), and a user pays for it once.
func scenarios(sets []dataset, o options) []scenario {
	var out []scenario
	lat := fmt.Sprintf("+%v each way", o.latency)
	for _, d := range sets {
		switch d.id {
		case "huge":
			out = append(out, scenario{d.id + "-first", d.id, "first sync", firstSync, direct})
			continue
		case "compress":
			out = append(out, scenario{d.id + "-first", d.id, fmt.Sprintf("first sync, COMPRESS offered, %s, %g Mbit/s", lat, o.rateMbit), firstCompress, slow})
			continue
		}
		out = append(out,
			scenario{d.id + "-first", d.id, "first sync", firstSync, direct},
			scenario{d.id + "-second", d.id, "second sync, nothing changed", secondSync, direct},
			scenario{d.id + "-noop", d.id, fmt.Sprintf("no-op (median of %d)", max(1, o.repeat)), noop, direct},
			scenario{d.id + "-noop-latency", d.id, "no-op, " + lat, noop, delayed})
		switch d.id {
		case "main":
			server := fmt.Sprintf("after server changes (%g%% flags, %d new, %d expunged)", 100*o.flagShare, o.newMsgs, o.removeMsgs)
			local := fmt.Sprintf("after local changes (%g%% flag renames, %d new, %d deleted)", 100*o.flagShare, o.newMsgs, o.removeMsgs)
			one := fmt.Sprintf("INBOX changed on the server (%d flags, %d new, %d expunged)", oneBoxChange.flags, oneBoxChange.deliver, oneBoxChange.expunge)
			out = append(out,
				scenario{d.id + "-server", d.id, server, afterServer, direct},
				scenario{d.id + "-server-latency", d.id, server + ", " + lat, afterServer, delayed},
				scenario{d.id + "-onebox", d.id, one + ", " + lat, oneBox, delayed},
				scenario{d.id + "-onebox-condstore", d.id, one + ", no QRESYNC, " + lat, oneBoxCondStore, delayed},
				scenario{d.id + "-local", d.id, local, afterLocal, direct},
				scenario{d.id + "-local-latency", d.id, local + ", " + lat, afterLocal, delayed})
		case "small", "large":
			out = append(out, scenario{d.id + "-changes100", d.id, fmt.Sprintf("after 100 changes on the server (%d flags, %d new, %d expunged)", change100.flags, change100.deliver, change100.expunge), changes100, direct})
		}
	}
	return out
}

// result is one tool's measurement of one scenario.
type result struct {
	Seconds   float64   `json:"seconds"`                         // the median of Runs
	Runs      []float64 `json:"runs"`                            // every run's wall time
	RunsRSS   []float64 `json:"runs_rss_mb"`                     // every run's peak RSS
	RunsUser  []float64 `json:"runs_user"`                       // every run's user CPU seconds
	RunsSys   []float64 `json:"runs_sys"`                        // every run's system CPU seconds
	PeakRSSMB float64   `json:"peak_rss_mb"`                     // the largest of the runs
	Exit      int       `json:"exit"`                            // the worst exit code
	Change    string    `json:"change,omitempty"`                // what was changed before the run
	Files     int       `json:"files"`                           // message files in the Maildir afterwards
	WantFiles int       `json:"want_files"`                      // what the server holds
	Proxy     *trips    `json:"proxy,omitempty"`                 // round trips seen by the latency proxy
	Trace     *trips    `json:"trace,omitempty"`                 // round trips read from satchel's --trace
	Estimated float64   `json:"estimated_round_trips,omitempty"` // (latency run − no-op) / RTT
}

// trips is a count of round trips after login and of the commands sent.
type trips struct {
	RoundTrips  int            `json:"round_trips,omitempty"`        // summed over connections
	Longest     int            `json:"longest_connection,omitempty"` // round trips of the busiest connection
	Commands    int            `json:"commands"`                     // tagged commands after login
	ByCommand   map[string]int `json:"by_command"`
	Connections int            `json:"connections,omitempty"`
	BytesDown   int64          `json:"bytes_down,omitempty"` // from the server, as on the wire
	BytesUp     int64          `json:"bytes_up,omitempty"`
	// Bursts lists, per connection, its round trips: when each began
	// (from the first of any connection) and the commands it carried.
	Bursts [][]string `json:"bursts,omitempty"`
}

// measurer runs every scenario with one tool.
type measurer struct {
	o       options
	srv     *dovecot
	proxies []*latencyProxy // by link; nil for direct
	tool    syncTool
	traces  string
	rep     *report
	// want is the number of messages each dataset has on the server.
	want map[string]int
	// last is when the bench or a tool last changed a Maildir.
	last time.Time
	// changes counts the change scenarios run, so that each draws its
	// changes from a seed of its own.
	changes uint64
}

func (m *measurer) all(ctx context.Context, sets []dataset) error {
	m.want = map[string]int{}
	byID := map[string]dataset{}
	for _, d := range sets {
		m.want[d.id] = d.count
		byID[d.id] = d
	}
	for _, sc := range scenarios(sets, m.o) {
		if err := m.one(ctx, sc, byID[sc.ds]); err != nil {
			return fmt.Errorf("%s: %w", sc.id, err)
		}
	}
	return nil
}

// prepare makes the change a scenario measures, and sets up the server
// for it; the returned function undoes the server's set-up.
func (m *measurer) prepare(ctx context.Context, sc scenario, d dataset, res *result) (func() error, error) {
	undo := func() error { return nil }
	var (
		boxes = d.folders
		ch    serverChange
	)
	switch sc.kind {
	case afterServer:
		ch = serverChange{flagShare: m.o.flagShare, expunge: m.o.removeMsgs, deliver: m.o.newMsgs}
	case oneBox, oneBoxCondStore:
		boxes, ch = []folder{{"INBOX", 1}}, oneBoxChange
	case changes100:
		ch = change100
	case afterLocal:
		m.changes++
		desc, delta, err := changeLocal(m.tool.root(d.id), d.folders, localChange{m.o.flagShare, m.o.removeMsgs, m.o.newMsgs}, d.sizes, m.o.seed+m.changes)
		if err != nil {
			return undo, err
		}
		m.last = time.Now()
		res.Change = desc
		m.want[d.id] += delta
		return undo, nil
	}
	switch sc.kind {
	case afterServer, oneBox, oneBoxCondStore, changes100:
		m.changes++
		desc, delta, err := changeServer(ctx, m.srv.Addr, boxes, ch, d.sizes, m.o.seed+m.changes)
		if err != nil {
			return undo, err
		}
		res.Change = desc
		m.want[d.id] += delta
		if err := m.srv.waitIdle(ctx); err != nil {
			return undo, err
		}
	}
	reset := func() error { return m.srv.reconfigure(ctx, "", 0) }
	switch sc.kind {
	case oneBoxCondStore:
		return reset, m.srv.reconfigure(ctx, capsCondStoreOnly, 0)
	case firstCompress:
		return reset, m.srv.reconfigure(ctx, "", compressLevel)
	}
	return undo, nil
}

func (m *measurer) one(ctx context.Context, sc scenario, d dataset) error {
	res := &result{}
	runs := 1
	switch {
	case sc.kind == firstSync || sc.kind == firstCompress:
		runs = max(1, m.o.firstRuns)
	case sc.kind == noop && sc.via == direct:
		runs = max(1, m.o.repeat)
	}
	undo, err := m.prepare(ctx, sc, d, res)
	if err != nil {
		return err
	}
	defer undo()
	progress("%s: %s %s", m.tool.name(), d.id, sc.title)
	trace := ""
	first := sc.kind == firstSync || sc.kind == firstCompress
	if (sc.kind == noop && sc.via == delayed) || sc.kind == oneBox || sc.kind == oneBoxCondStore || (m.o.traceAll && !first) {
		trace = filepath.Join(m.traces, sc.id+".trace") // the last run's
	}
	proxy := m.proxies[sc.via]
	if proxy != nil {
		proxy.take(ctx) // forget earlier connections
	}
	for i := 0; i < runs; i++ {
		// mbsync sleeps a second when a Maildir folder changed within the
		// current second (it could not tell later changes in that second
		// by the directory's mtime). Syncs run minutes apart in real
		// use, so every run starts in a second after the last change.
		if d := time.Until(m.last.Truncate(time.Second).Add(time.Second + 10*time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		if first && i > 0 {
			if err := m.tool.reset(d.id); err != nil {
				return err
			}
		}
		pr, err := m.tool.sync(ctx, d.id, sc.via, trace)
		m.last = time.Now()
		if err != nil {
			return err
		}
		res.add(pr)
	}
	res.Seconds = median(res.Runs)
	if trace != "" && m.tool.name() == "satchel" {
		if st, err := traceStats(trace); err != nil {
			progress("read trace %s: %v", trace, err)
		} else {
			res.Trace = roundTrips([]*connStats{st})
		}
	}
	if proxy != nil {
		res.Proxy = roundTrips(proxy.take(ctx))
		if base := m.rep.get(d.id+"-noop", m.tool.name()); base != nil && sc.kind == noop {
			res.Estimated = (res.Seconds - base.Seconds) / (2 * m.o.latency.Seconds())
		}
	}
	// Bursts in a trace are round trips only when the latency proxy
	// spaced the records out, and only for a single connection: the
	// trace interleaves connections without saying which record is whose.
	if res.Trace != nil && (res.Proxy == nil || res.Proxy.Connections != 1 || sc.via != delayed) {
		res.Trace.RoundTrips, res.Trace.Longest = 0, 0
	}
	files, err := mailFiles(m.tool.root(d.id))
	if err != nil {
		return err
	}
	res.Files, res.WantFiles = len(files), m.want[d.id]
	m.rep.put(sc.id, m.tool.name(), res)
	progress("%s: %s %s: %.2fs, %.1f MB, exit %d", m.tool.name(), d.id, sc.title, res.Seconds, res.PeakRSSMB, res.Exit)
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// add records one run of a tool: its time, memory and CPU, and the first
// failing exit code.
func (res *result) add(pr procResult) {
	res.Runs = append(res.Runs, pr.elapsed.Seconds())
	res.RunsRSS = append(res.RunsRSS, float64(pr.maxRSS)/(1<<20))
	res.RunsUser = append(res.RunsUser, pr.user.Seconds())
	res.RunsSys = append(res.RunsSys, pr.sys.Seconds())
	res.PeakRSSMB = max(res.PeakRSSMB, float64(pr.maxRSS)/(1<<20))
	if pr.exit != 0 && res.Exit == 0 {
		res.Exit = pr.exit
	}
}
