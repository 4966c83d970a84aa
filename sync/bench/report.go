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

// checks evaluates the hard requirements on satchel's numbers and the
// ratio target of every scenario mbsync ran too.
func (r *report) checks() []check {
	o := r.opts
	var out []check

	var rts []string
	rtOK, rtSeen := true, false
	for _, sc := range scenarios(r.sets, o) {
		if sc.kind != noopLatency {
			continue
		}
		res := r.get(sc.id, "satchel")
		if res == nil || res.Proxy == nil {
			continue
		}
		rtSeen = true
		p := res.Proxy
		d := fmt.Sprintf("%s %d", sc.ds, p.RoundTrips)
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
		rts = append(rts, d)
		rtOK = rtOK && res.Proxy.RoundTrips <= o.maxRT
	}
	if rtSeen {
		out = append(out, check{"requirement", fmt.Sprintf("no-op sync ≤ %d round trips after login", o.maxRT), rtOK, strings.Join(rts, ", ")})
	}

	small, large := r.get("small-noop", "satchel"), r.get("large-noop", "satchel")
	if small != nil && large != nil && small.Seconds > 0 {
		g := large.Seconds / small.Seconds
		out = append(out, check{"requirement",
			fmt.Sprintf("no-op time grows ≤ %.1f× from %s to %s messages", o.maxGrowth, thousands(o.small), thousands(o.large)),
			g <= o.maxGrowth, fmt.Sprintf("%.3f s → %.3f s: %.2f×", small.Seconds, large.Seconds, g)})
	}

	worst, worstAt := 0.0, ""
	var over []string
	for _, sc := range scenarios(r.sets, o) {
		if res := r.get(sc.id, "satchel"); res != nil {
			if res.PeakRSSMB > worst {
				worst, worstAt = res.PeakRSSMB, sc.id
			}
			if res.PeakRSSMB > o.maxRSSMB {
				over = append(over, fmt.Sprintf("%s %.0f MB", sc.id, res.PeakRSSMB))
			}
		}
	}
	detail := fmt.Sprintf("largest %.1f MB (%s)", worst, worstAt)
	if len(over) > 0 {
		detail += "; over: " + strings.Join(over, ", ")
	}
	out = append(out, check{"requirement", fmt.Sprintf("peak RSS ≤ %.0f MB in every scenario", o.maxRSSMB), len(over) == 0, detail})

	for _, sc := range scenarios(r.sets, o) {
		ratio, ok := r.ratio(sc.id)
		if !ok {
			continue
		}
		t := o.target(sc)
		out = append(out, check{"target", fmt.Sprintf("%s %s: satchel/mbsync ≤ %.2f", sc.ds, sc.title, t),
			ratio <= t, fmt.Sprintf("%.2f", ratio)})
	}
	return out
}

// target is the satchel/mbsync ratio a scenario must meet: the no-op of
// the large mailbox 0.1 (0.25 through the delayed link), the first sync
// of the main corpus 0.5 and of the large mailbox 0.35, the syncs after
// changes 0.5; every other row o.targetRatio.
func (o options) target(sc scenario) float64 {
	switch sc.id {
	case "large-noop":
		return 0.1
	case "large-noop-latency":
		return 0.25
	case "main-first", "main-server", "main-local":
		return 0.5
	case "large-first":
		return 0.35
	}
	return o.targetRatio
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
			row[4] = fmt.Sprintf("%.2f %s", ratio, mark(ratio <= r.opts.target(sc)))
		}
		if sc.kind == noopLatency {
			row[5] = pair(roundTripsOf(s), roundTripsOf(m))
			row[6] = pair(commandsOf(s), commandsOf(m))
		}
		rows = append(rows, row)
	}
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
			if i >= 2 {
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
		if i >= 2 {
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
	if o.messages == 10000 && o.small == 10000 && o.large == 100000 && o.hugeMB == 200 {
		return ""
	}
	return fmt.Sprintf("reduced run (%s): main %s, small %s, large %s messages, huge %d MB",
		map[bool]string{true: "-quick", false: "flags"}[o.quick], thousands(o.messages), thousands(o.small), thousands(o.large), o.hugeMB)
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
	b.WriteString(r.table())
	fmt.Fprintf(&b, "\nDisk limit: `cp -a` + `sync` of the server's Maildir (%s files, %.0f MB, all datasets): %.2f s, %.0f files/s.\n\n",
		thousands(r.disk.files), r.disk.mb, r.disk.elapsed.Seconds(), float64(r.disk.files)/r.disk.elapsed.Seconds())
	for _, c := range r.checks() {
		fmt.Fprintf(&b, "- %s %s: %s — %s\n", mark(c.Pass), c.Kind, c.What, c.Detail)
	}
	if r.mbsyncNote != "" {
		fmt.Fprintf(&b, "- note: %s\n", r.mbsyncNote)
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
		Machine   machine  `json:"machine"`
		Reduced   string   `json:"reduced,omitempty"`
		Latency   string   `json:"latency_each_way"`
		DiskSecs  float64  `json:"disk_cp_sync_seconds"`
		DiskMB    float64  `json:"disk_mb"`
		SeedSecs  float64  `json:"seed_seconds"`
		TotalSecs float64  `json:"total_seconds"`
		Rows      []row    `json:"scenarios"`
		Checks    []check  `json:"checks"`
		Notes     []string `json:"notes,omitempty"`
	}{Machine: r.machine, Reduced: r.reduced(), Latency: r.opts.latency.String(), DiskSecs: r.disk.elapsed.Seconds(), DiskMB: r.disk.mb,
		SeedSecs: r.seedTime.Seconds(), TotalSecs: r.total.Seconds(), Checks: r.checks(), Notes: r.anomalies()}
	if r.mbsyncNote != "" {
		doc.Notes = append(doc.Notes, r.mbsyncNote)
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
