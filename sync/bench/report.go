package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"
)

// report collects the results and renders them.
type report struct {
	opts       options
	sets       []dataset
	disk       diskTime
	seedTime   time.Duration
	mbsyncNote string
	machine    machine
	total      time.Duration
	results    map[string]map[string]*result // scenario id → tool → result
	notes      []string

	floors   map[string]diskTime // dataset id → its own cp -a + sync
	deflated int64               // the COMPRESS corpus deflated at compressLevel
	corpus   int64               // and its size before
	accounts *accountsResult
	notmuch  *notmuchResult
	gmail    *gmailResult
	million  *millionResult
}

func (r *report) put(sc, tool string, res *result) {
	if r.results[sc] == nil {
		r.results[sc] = map[string]*result{}
	}
	r.results[sc][tool] = res
}

func (r *report) get(sc, tool string) *result { return r.results[sc][tool] }

// machine says where the numbers come from.
type machine struct {
	CPU     string `json:"cpu"`
	NProc   int    `json:"nproc"`
	MemGB   int    `json:"mem_gb"`
	Kernel  string `json:"kernel"`
	Date    string `json:"date"`
	Satchel string `json:"satchel"`
	Mbsync  string `json:"mbsync,omitempty"`
	Dovecot string `json:"dovecot"`
	// Load is /proc/loadavg's 1-minute figure when the bench started and
	// when it ended: other work on the machine makes the numbers noisy.
	Load string `json:"load"`
}

func describeMachine(satchelBin, mbsyncBin string) machine {
	m := machine{NProc: runtime.NumCPU(), Date: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n int
		fmt.Sscanf(kb, "%d", &n)
		m.MemGB = (n + 1<<19) >> 20
	}
	m.Kernel = output("uname", "-r")
	m.Satchel = output(satchelBin, "--version")
	if mbsyncBin != "" {
		m.Mbsync = output(mbsyncBin, "--version")
	}
	m.Dovecot = output("dovecot", "--version")
	m.Load = loadAvg()
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// procField returns the value of the first "key : value" line of a /proc
// file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// check is one requirement or target and whether it was met.
type check struct {
	Kind   string `json:"kind"` // "requirement" or "target"
	What   string `json:"what"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

func mark(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// Limits of the requirements that have no flag of their own.
const (
	maxOneBoxRTQresync   = 4   // round trips after a few changes in one mailbox, with QRESYNC
	maxOneBoxRTCondStore = 5   // the same with CONDSTORE only
	maxChangesGrowth     = 1.3 // 100 changes: large mailbox over small
	maxFloorRatio        = 1.5 // first sync over its dataset's disk floor
	maxCompressLink      = 1.2 // COMPRESS first sync over the deflated corpus at the link's rate
	maxAccountsRatio     = 0.5 // three accounts in one run over one after another
	millionNoopSlack     = 0.05
	millionMaxChanges    = 1.0
)

// checks evaluates the requirements on satchel's numbers and the ratio
// limit (requirement or target) of every scenario mbsync ran too.
func (r *report) checks() []check {
	o := r.opts
	var out []check
	req := func(what string, ok bool, detail string) { out = append(out, check{"requirement", what, ok, detail}) }

	var rts []string
	rtOK, rtSeen := true, false
	for _, sc := range scenarios(r.sets, o) {
		if sc.kind != noop || sc.via != delayed {
			continue
		}
		res := r.get(sc.id, "satchel")
		if res == nil || res.Proxy == nil {
			continue
		}
		rtSeen = true
		rts = append(rts, sc.ds+" "+describeTrips(res))
		rtOK = rtOK && res.Proxy.RoundTrips <= o.maxRT
	}
	if rtSeen {
		req(fmt.Sprintf("no-op sync ≤ %d round trips after login", o.maxRT), rtOK, strings.Join(rts, ", "))
	}

	for _, c := range []struct {
		id, mode string
		limit    int
	}{{"main-onebox", "with QRESYNC", maxOneBoxRTQresync}, {"main-onebox-condstore", "with CONDSTORE only", maxOneBoxRTCondStore}} {
		res := r.get(c.id, "satchel")
		if res == nil || res.Proxy == nil {
			continue
		}
		sel := res.Proxy.ByCommand["SELECT"] + res.Proxy.ByCommand["EXAMINE"]
		req(fmt.Sprintf("one mailbox changed on the server, %s: ≤ %d round trips after login, the mailbox selected once", c.mode, c.limit),
			res.Exit == 0 && res.Proxy.RoundTrips <= c.limit && sel == 1,
			fmt.Sprintf("%s, %d SELECT/EXAMINE", describeTrips(res), sel))
	}

	small, large := r.get("small-noop", "satchel"), r.get("large-noop", "satchel")
	if small != nil && large != nil && small.Seconds > 0 {
		g := large.Seconds / small.Seconds
		req(fmt.Sprintf("no-op time grows ≤ %.1f× from %s to %s messages", o.maxGrowth, thousands(o.small), thousands(o.large)),
			g <= o.maxGrowth, fmt.Sprintf("%.3f s → %.3f s: %.2f×", small.Seconds, large.Seconds, g))
	}
	small, large = r.get("small-changes100", "satchel"), r.get("large-changes100", "satchel")
	if small != nil && large != nil && small.Seconds > 0 {
		g := large.Seconds / small.Seconds
		req(fmt.Sprintf("100 changes cost ≤ %.1f× as much in %s messages as in %s", maxChangesGrowth, thousands(o.large), thousands(o.small)),
			g <= maxChangesGrowth && small.Exit == 0 && large.Exit == 0, fmt.Sprintf("%.3f s → %.3f s: %.2f×", small.Seconds, large.Seconds, g))
	}

	for _, id := range []string{"main", "large"} {
		res, f := r.get(id+"-first", "satchel"), r.floors[id]
		if res == nil || f.elapsed <= 0 {
			continue
		}
		x := res.Seconds / f.elapsed.Seconds()
		req(fmt.Sprintf("%s first sync ≤ %.1f× its disk floor", id, maxFloorRatio), x <= maxFloorRatio && res.Exit == 0,
			fmt.Sprintf("%.2f s against cp -a + sync of its %s files (%.0f MB) %.2f s: %.2f×", res.Seconds, thousands(f.files), f.mb, f.elapsed.Seconds(), x))
	}

	if res := r.get("compress-first", "satchel"); res != nil && r.deflated > 0 {
		rate := o.rateMbit * 1e6 / 8
		limit := float64(r.deflated) / rate
		x := res.Seconds / limit
		detail := fmt.Sprintf("%.2f s; the corpus, %.1f MB, deflated at level %d: %.1f MB, at %g Mbit/s: %.2f s; %.2f×", res.Seconds,
			float64(r.corpus)/1e6, compressLevel, float64(r.deflated)/1e6, o.rateMbit, limit, x)
		if res.Proxy != nil {
			detail += fmt.Sprintf("; %.1f MB came down the link", float64(res.Proxy.BytesDown)/1e6)
		}
		req(fmt.Sprintf("first sync with COMPRESS offered ≤ %.1f× the link's limit", maxCompressLink), x <= maxCompressLink && res.Exit == 0, detail)
	}

	if a := r.accounts; a != nil {
		for _, p := range a.Rows {
			x, ok := p.ratio()
			detail := fmt.Sprintf("%s together, %s one after another", secs(p.Together), secs(p.OneByOne))
			if ok {
				detail += fmt.Sprintf(": %.2f×", x)
			}
			req(fmt.Sprintf("%d accounts, %s: one run ≤ %.1f× the runs one after another", a.Accounts, p.Title, maxAccountsRatio), ok && x <= maxAccountsRatio, detail)
		}
	}

	if n := r.notmuch; n != nil {
		x, ok := n.slack()
		req(fmt.Sprintf("%s tagged messages: no-op with notmuch on ≤ %.0f ms slower than without", thousands(n.Messages), 1000*maxNotmuchNoopSlack),
			ok && x <= maxNotmuchNoopSlack, fmt.Sprintf("%s on, %s off: %+.1f ms", secs(n.NoopOn), secs(n.NoopOff), 1000*x))
		req(fmt.Sprintf("%s tagged messages: 100 tag changes in notmuch synced in ≤ %.0f s", thousands(n.Messages), maxNotmuchTags100),
			n.Tags100 != nil && n.Tags100.Exit == 0 && n.Tags100.Seconds <= maxNotmuchTags100, fmt.Sprintf("%s (%d messages tagged +t100)", secs(n.Tags100), n.Retagged))
	}

	if g := r.gmail; g != nil {
		req(fmt.Sprintf("a first sync of %s messages with two labels each downloads %s bodies", thousands(g.Messages), thousands(g.Messages)), g.pass(), g.detail())
	}

	if m := r.million; m != nil {
		if m.First != nil {
			req(fmt.Sprintf("%s messages: first sync's peak RSS ≤ %.0f MB", thousands(m.Messages), o.millionRSSMB), m.First.PeakRSSMB <= o.millionRSSMB && m.First.Exit == 0,
				fmt.Sprintf("%.1f MB (%.1f s)", m.First.PeakRSSMB, m.First.Seconds))
		}
		if m.Noop != nil {
			req(fmt.Sprintf("%s messages: no-op ≤ the server's LIST-STATUS + %.2f s", thousands(m.Messages), millionNoopSlack),
				m.Noop.Seconds <= m.ListStatus+millionNoopSlack && m.Noop.Exit == 0, fmt.Sprintf("%.3f s against LIST-STATUS alone %.3f s", m.Noop.Seconds, m.ListStatus))
		}
		if m.Changes != nil {
			req(fmt.Sprintf("%s messages: 100 changes on the server synced in ≤ %.0f s", thousands(m.Messages), millionMaxChanges),
				m.Changes.Seconds <= millionMaxChanges && m.Changes.Exit == 0, fmt.Sprintf("%.3f s", m.Changes.Seconds))
		}
	}

	worst, worstAt := 0.0, ""
	var over []string
	for _, sc := range scenarios(r.sets, o) {
		if res := r.get(sc.id, "satchel"); res != nil {
			if res.PeakRSSMB > worst {
				worst, worstAt = res.PeakRSSMB, sc.id
			}
			if res.PeakRSSMB > o.maxRSSMB {
				over = append(over, fmt.Sprintf("%s %.1f MB", sc.id, res.PeakRSSMB))
			}
		}
	}
	if g := r.gmail; g != nil && g.Satchel != nil {
		if g.Satchel.PeakRSSMB > worst {
			worst, worstAt = g.Satchel.PeakRSSMB, "gmail-first"
		}
		if g.Satchel.PeakRSSMB > o.maxRSSMB {
			over = append(over, fmt.Sprintf("gmail-first %.1f MB", g.Satchel.PeakRSSMB))
		}
	}
	if worstAt != "" {
		detail := fmt.Sprintf("largest %.1f MB (%s)", worst, worstAt)
		if len(over) > 0 {
			detail += "; over: " + strings.Join(over, ", ")
		}
		req(fmt.Sprintf("peak RSS ≤ %.1f MB in every scenario, the Gmail row included", o.maxRSSMB), len(over) == 0, detail)
	}

	for _, sc := range scenarios(r.sets, o) {
		ratio, ok := r.ratio(sc.id)
		if !ok {
			continue
		}
		t, k := o.limit(sc)
		out = append(out, check{k, fmt.Sprintf("%s %s: satchel/mbsync ≤ %.2f", sc.ds, sc.title, t),
			ratio <= t, fmt.Sprintf("%.2f", ratio)})
	}
	return out
}

// describeTrips says how many round trips the proxy counted, on how many
// connections, and what the trace counted where it disagrees.
func describeTrips(res *result) string {
	p := res.Proxy
	d := fmt.Sprint(p.RoundTrips)
	var more []string
	if p.Connections > 1 {
		more = append(more, fmt.Sprintf("on %d connections, the busiest %d", p.Connections, p.Longest))
	}
	if res.Trace != nil && p.Connections == 1 && res.Trace.RoundTrips != p.RoundTrips {
		more = append(more, fmt.Sprintf("trace: %d", res.Trace.RoundTrips))
	}
	if len(more) > 0 {
		d += " (" + strings.Join(more, "; ") + ")"
	}
	return d
}

// limit is the satchel/mbsync ratio a scenario must meet, and whether it
// is a requirement or a target. Requirements: the syncs after changes 0.5
// on loopback and 0.4 through the delayed link, every second sync 1.0,
// the COMPRESS first sync 0.9. Targets: the no-op of the large mailbox
// 0.1 (0.25 through the delayed link), the first sync of the main corpus
// 0.5 and of the large mailbox 0.35; every other row o.targetRatio.
func (o options) limit(sc scenario) (float64, string) {
	switch sc.id {
	case "main-server", "main-local":
		return 0.5, "requirement"
	case "main-server-latency", "main-local-latency":
		return 0.4, "requirement"
	case "compress-first":
		return 0.9, "requirement"
	case "large-noop":
		return 0.1, "target"
	case "large-noop-latency":
		return 0.25, "target"
	case "main-first":
		return 0.5, "target"
	case "large-first":
		return 0.35, "target"
	}
	if sc.kind == secondSync {
		return 1.0, "requirement"
	}
	return o.targetRatio, "target"
}

func (r *report) ratio(sc string) (float64, bool) {
	s, m := r.get(sc, "satchel"), r.get(sc, "mbsync")
	if s == nil || m == nil || m.Seconds <= 0 || s.Exit != 0 || m.Exit != 0 {
		return 0, false
	}
	return s.Seconds / m.Seconds, true
}

// anomalies lists what makes a number suspect: a run that did not exit 0,
// a Maildir that does not hold what the server holds.
func (r *report) anomalies() []string {
	var out []string
	for _, sc := range scenarios(r.sets, r.opts) {
		for _, tool := range []string{"satchel", "mbsync"} {
			res := r.get(sc.id, tool)
			if res == nil {
				continue
			}
			if res.Exit != 0 {
				out = append(out, fmt.Sprintf("%s %s: exit %d (see %s.log in the work directory, -keep)", tool, sc.id, res.Exit, tool))
			}
			if res.Files != res.WantFiles {
				out = append(out, fmt.Sprintf("%s %s: %d message files in the Maildir, the server has %d", tool, sc.id, res.Files, res.WantFiles))
			}
		}
	}
	if a := r.accounts; a != nil {
		for _, p := range a.Rows {
			for way, res := range map[string]*result{"together": p.Together, "one by one": p.OneByOne} {
				if res != nil && res.Exit != 0 {
					out = append(out, fmt.Sprintf("satchel accounts %s, %s: exit %d (see accounts/satchel.log in the work directory, -keep)", p.Title, way, res.Exit))
				}
			}
		}
	}
	if n := r.notmuch; n != nil {
		for _, res := range []*result{n.First, n.TagAll, n.NoopOn, n.NoopOff, n.Tags100} {
			if res != nil && res.Exit != 0 {
				out = append(out, fmt.Sprintf("satchel notmuch: exit %d (see notmuch/satchel.log in the work directory, -keep)", res.Exit))
			}
		}
		if n.Tagged != n.Messages {
			out = append(out, fmt.Sprintf("satchel notmuch: notmuch has %d messages tagged +bench, the Maildir %d files", n.Tagged, n.Messages))
		}
	}
	if g := r.gmail; g != nil {
		for tool, res := range map[string]*result{"satchel": g.Satchel, "mbsync": g.Mbsync} {
			if res == nil {
				continue
			}
			if res.Exit != 0 {
				out = append(out, fmt.Sprintf("%s gmail: exit %d (see gmail/%s/%s.log in the work directory, -keep)", tool, res.Exit, tool, tool))
			}
			if res.Files != res.WantFiles {
				out = append(out, fmt.Sprintf("%s gmail: %d message files in the Maildir, the server shows %d", tool, res.Files, res.WantFiles))
			}
		}
		for _, e := range g.Errors {
			out = append(out, "satchel gmail: "+e)
		}
	}
	if mi := r.million; mi != nil {
		for _, res := range []*result{mi.First, mi.Second, mi.Noop, mi.Changes} {
			if res == nil {
				continue
			}
			if res.Exit != 0 {
				out = append(out, fmt.Sprintf("satchel million: exit %d (see million/satchel.log in the work directory, -keep)", res.Exit))
			}
			if res.Files != res.WantFiles {
				out = append(out, fmt.Sprintf("satchel million: %d message files in the Maildir, the server has %d", res.Files, res.WantFiles))
			}
		}
	}
	return out
}

// table renders the results as an aligned Markdown table.
func (r *report) table() string {
	rows := [][]string{{"dataset", "scenario", "satchel s", "mbsync s", "satchel/mbsync", "round trips s / m", "commands s / m", "peak RSS MB s / m"}}
	titles := map[string]string{}
	for _, d := range r.sets {
		titles[d.id] = d.title
	}
	for _, sc := range scenarios(r.sets, r.opts) {
		s, m := r.get(sc.id, "satchel"), r.get(sc.id, "mbsync")
		row := []string{titles[sc.ds], sc.title, secs(s), secs(m), "–", "", "", pair(rss(s), rss(m))}
		if ratio, ok := r.ratio(sc.id); ok {
			t, _ := r.opts.limit(sc)
			row[4] = fmt.Sprintf("%.2f %s", ratio, mark(ratio <= t))
		}
		if sc.via != direct {
			row[5] = pair(roundTripsOf(s), roundTripsOf(m))
			row[6] = pair(commandsOf(s), commandsOf(m))
		}
		rows = append(rows, row)
	}
	return markdownTable(rows, 2)
}

// markdownTable aligns rows (the first the header) as a Markdown table,
// columns from left right-aligned.
func markdownTable(rows [][]string, left int) string {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		b.WriteString("|")
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i >= left {
				fmt.Fprintf(&b, " %s%s |", pad, c)
			} else {
				fmt.Fprintf(&b, " %s%s |", c, pad)
			}
		}
		b.WriteString("\n")
	}
	line(rows[0])
	sep := make([]string, len(widths))
	for i, w := range widths {
		sep[i] = strings.Repeat("-", w)
		if i >= left {
			sep[i] = sep[i][:w-1] + ":"
		}
	}
	line(sep)
	for _, row := range rows[1:] {
		line(row)
	}
	return b.String()
}

func secs(res *result) string {
	if res == nil {
		return "–"
	}
	s := fmt.Sprintf("%.2f", res.Seconds)
	if res.Seconds < 1 {
		s = fmt.Sprintf("%.3f", res.Seconds)
	}
	if res.Exit != 0 {
		s += fmt.Sprintf(" (exit %d)", res.Exit)
	}
	return s
}

func rss(res *result) string {
	if res == nil {
		return "–"
	}
	return fmt.Sprintf("%.1f", res.PeakRSSMB)
}

func roundTripsOf(res *result) string {
	if res == nil || res.Proxy == nil {
		return "–"
	}
	if res.Proxy.Connections > 1 {
		return fmt.Sprintf("%d (%d conns)", res.Proxy.RoundTrips, res.Proxy.Connections)
	}
	return fmt.Sprint(res.Proxy.RoundTrips)
}

func commandsOf(res *result) string {
	if res == nil || res.Proxy == nil {
		return "–"
	}
	return fmt.Sprint(res.Proxy.Commands)
}

func pair(a, b string) string { return a + " / " + b }

// reduced says how this run's sizes differ from the full bench.
func (r *report) reduced() string {
	o := r.opts
	how := map[bool]string{true: "-quick", false: "flags"}[o.quick]
	if o.million {
		if o.millionMsgs == 1000000 {
			return ""
		}
		return fmt.Sprintf("reduced run (%s): -million with %s messages", how, thousands(o.millionMsgs))
	}
	if o.messages == 10000 && o.small == 10000 && o.large == 100000 && o.hugeMB == 200 && o.compressMsgs == 600 && o.accountMsgs == 1000 && o.gmailMsgs == 10000 {
		return ""
	}
	return fmt.Sprintf("reduced run (%s): main %s, small %s, large %s messages, huge %d MB, COMPRESS %s messages, accounts %s messages each, Gmail %s messages",
		how, thousands(o.messages), thousands(o.small), thousands(o.large), o.hugeMB, thousands(o.compressMsgs), thousands(o.accountMsgs), thousands(o.gmailMsgs))
}

// text is the whole report as Markdown: caption, table, checks, notes.
func (r *report) text() string {
	var b strings.Builder
	m := r.machine
	fmt.Fprintf(&b, "Measured %s on %d × %s, %d GB RAM, Linux %s (load average %s); %s; %s; Dovecot %s.",
		m.Date, m.NProc, m.CPU, m.MemGB, m.Kernel, m.Load, m.Satchel, orNone(m.Mbsync, "no mbsync"), m.Dovecot)
	if red := r.reduced(); red != "" {
		b.WriteString(" **" + strings.ToUpper(red[:1]) + red[1:] + ".**")
	}
	fmt.Fprintf(&b, " Round trips counted through a proxy adding %v each way. Bench time %v (seeding %v).\n\n",
		r.opts.latency, r.total.Round(time.Second), r.seedTime.Round(time.Second))
	if len(r.sets) > 0 {
		b.WriteString(r.table())
		fmt.Fprintf(&b, "\nDisk limit: `cp -a` + `sync` of the server's Maildir (%s files, %.0f MB, all datasets): %.2f s, %.0f files/s.",
			thousands(r.disk.files), r.disk.mb, r.disk.elapsed.Seconds(), float64(r.disk.files)/r.disk.elapsed.Seconds())
		var floors []string
		for _, d := range r.sets {
			if f, ok := r.floors[d.id]; ok {
				floors = append(floors, fmt.Sprintf("%s %.2f s (%s files, %.0f MB)", d.id, f.elapsed.Seconds(), thousands(f.files), f.mb))
			}
		}
		if len(floors) > 0 {
			b.WriteString(" Each dataset's message files alone: " + strings.Join(floors, "; ") + ".")
		}
		b.WriteString("\n\n")
	}
	if a := r.accounts; a != nil {
		fmt.Fprintf(&b, "%d accounts of %s messages (3 folders), each on its own Dovecot behind its own +%v link; satchel alone:\n\n", a.Accounts, thousands(a.Messages), r.opts.latency)
		rows := [][]string{{"scenario", "one `satchel sync` s", "`satchel sync NAME` × 3 s", "ratio", "peak RSS MB"}}
		for _, p := range a.Rows {
			ratio := "–"
			if x, ok := p.ratio(); ok {
				ratio = fmt.Sprintf("%.2f %s", x, mark(x <= maxAccountsRatio))
			}
			rows = append(rows, []string{p.Title, secs(p.Together), secs(p.OneByOne), ratio, pair(rss(p.Together), rss(p.OneByOne))})
		}
		b.WriteString(markdownTable(rows, 1))
		b.WriteString("\n")
	}
	if n := r.notmuch; n != nil {
		fmt.Fprintf(&b, "%s tagged msgs, notmuch: the small mailbox in a Maildir of its own with `notmuch.enabled`, satchel alone, loopback (tagging all in notmuch took %.2f s):\n\n", thousands(n.Messages), n.TagSecs)
		rows := [][]string{{"scenario", "satchel s", "peak RSS MB"}}
		slack := "–"
		if x, ok := n.slack(); ok {
			slack = fmt.Sprintf("%+.3f %s", x, mark(x <= maxNotmuchNoopSlack))
		}
		for _, row := range []struct {
			title string
			res   *result
		}{{"first sync (notmuch new included)", n.First}, {"after `notmuch tag +bench -- '*'`", n.TagAll},
			{fmt.Sprintf("no-op, notmuch on (median of %d)", len(n.NoopOn.Runs)), n.NoopOn},
			{fmt.Sprintf("no-op, notmuch off (median of %d)", len(n.NoopOff.Runs)), n.NoopOff},
			{"after 100 tag changes in notmuch", n.Tags100}} {
			rows = append(rows, []string{row.title, secs(row.res), rss(row.res)})
		}
		rows = append(rows, []string{"no-op on − off", slack, "–"})
		b.WriteString(markdownTable(rows, 1))
		b.WriteString("\n")
	}
	if g := r.gmail; g != nil {
		b.WriteString(g.table())
		b.WriteString("\n")
	}
	if mi := r.million; mi != nil {
		fmt.Fprintf(&b, "One mailbox of %s small messages (seeded in %.0f s), satchel alone, loopback:\n\n", thousands(mi.Messages), mi.SeedSecs)
		rows := [][]string{{"scenario", "satchel s", "peak RSS MB"}}
		for _, row := range []struct {
			title string
			res   *result
		}{{"first sync", mi.First}, {"second sync, nothing changed", mi.Second}, {fmt.Sprintf("no-op (median of %d)", len(mi.ListStatusRuns)), mi.Noop},
			{"after 100 changes on the server (" + mi.Change + ")", mi.Changes}} {
			rows = append(rows, []string{row.title, secs(row.res), rss(row.res)})
		}
		rows = append(rows, []string{"LIST-STATUS alone (raw client, median)", fmt.Sprintf("%.3f", mi.ListStatus), "–"})
		b.WriteString(markdownTable(rows, 1))
		b.WriteString("\n")
	}
	for _, c := range r.checks() {
		fmt.Fprintf(&b, "- %s %s: %s — %s\n", mark(c.Pass), c.Kind, c.What, c.Detail)
	}
	if r.mbsyncNote != "" {
		fmt.Fprintf(&b, "- note: %s\n", r.mbsyncNote)
	}
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- note: %s\n", n)
	}
	for _, a := range r.anomalies() {
		fmt.Fprintf(&b, "- WARNING: %s\n", a)
	}
	return b.String()
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func (r *report) print(w io.Writer) error {
	if !r.opts.json {
		_, err := io.WriteString(w, r.text())
		return err
	}
	type row struct {
		ID      string   `json:"id"`
		Dataset string   `json:"dataset"`
		Title   string   `json:"title"`
		Satchel *result  `json:"satchel,omitempty"`
		Mbsync  *result  `json:"mbsync,omitempty"`
		Ratio   *float64 `json:"ratio,omitempty"`
	}
	doc := struct {
		Machine   machine            `json:"machine"`
		Reduced   string             `json:"reduced,omitempty"`
		Latency   string             `json:"latency_each_way"`
		DiskSecs  float64            `json:"disk_cp_sync_seconds"`
		DiskMB    float64            `json:"disk_mb"`
		SeedSecs  float64            `json:"seed_seconds"`
		TotalSecs float64            `json:"total_seconds"`
		Rows      []row              `json:"scenarios"`
		Checks    []check            `json:"checks"`
		Notes     []string           `json:"notes,omitempty"`
		Floors    map[string]float64 `json:"disk_floor_seconds,omitempty"`
		Deflated  int64              `json:"compress_corpus_deflated_bytes,omitempty"`
		Corpus    int64              `json:"compress_corpus_bytes,omitempty"`
		Accounts  *accountsResult    `json:"accounts,omitempty"`
		Notmuch   *notmuchResult     `json:"notmuch,omitempty"`
		Gmail     *gmailResult       `json:"gmail,omitempty"`
		Million   *millionResult     `json:"million,omitempty"`
	}{Floors: map[string]float64{}, Deflated: r.deflated, Corpus: r.corpus, Accounts: r.accounts, Notmuch: r.notmuch, Gmail: r.gmail, Million: r.million, Machine: r.machine, Reduced: r.reduced(), Latency: r.opts.latency.String(), DiskSecs: r.disk.elapsed.Seconds(), DiskMB: r.disk.mb,
		SeedSecs: r.seedTime.Seconds(), TotalSecs: r.total.Seconds(), Checks: r.checks(), Notes: r.anomalies()}
	if r.mbsyncNote != "" {
		doc.Notes = append(doc.Notes, r.mbsyncNote)
	}
	doc.Notes = append(doc.Notes, r.notes...)
	for id, f := range r.floors {
		doc.Floors[id] = f.elapsed.Seconds()
	}
	for _, sc := range scenarios(r.sets, r.opts) {
		rw := row{ID: sc.id, Dataset: sc.ds, Title: sc.title, Satchel: r.get(sc.id, "satchel"), Mbsync: r.get(sc.id, "mbsync")}
		if v, ok := r.ratio(sc.id); ok {
			rw.Ratio = &v
		}
		doc.Rows = append(doc.Rows, rw)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// Markers of the generated part of README's Performance section.
const (
	readmeBegin = "<!-- bench:begin (generated by `make bench BENCHFLAGS=-readme=README.md`) -->"
	readmeEnd   = "<!-- bench:end -->"
)

// updateReadme replaces what lies between the markers with the report.
func (r *report) updateReadme(path string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(old, []byte(readmeBegin))
	j := bytes.Index(old, []byte(readmeEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %q … %q markers to write the table between", path, readmeBegin, readmeEnd)
	}
	var b bytes.Buffer
	b.Write(old[:i+len(readmeBegin)])
	b.WriteString("\n")
	b.WriteString(r.text())
	b.Write(old[j:])
	return os.WriteFile(path, b.Bytes(), 0o644)
}
