// Command bench measures satchel against mbsync (isync) on the same
// Dovecot: first sync (against the disk's own floor too), no-op sync,
// incremental syncs after server and after local changes, on loopback and
// through a link with 25 ms each way (round trips counted), a few changes
// in one mailbox with and without QRESYNC, 100 changes in a small and in a
// large mailbox, a first sync through a 20 Mbit/s link with COMPRESS
// offered, peak memory (a 200 MB message included), and, satchel alone,
// the notmuch tag sync (the no-op with notmuch on against off, a sync
// after 100 tag changes), three accounts synced at once against one
// after another, and a first sync of a Gmail account whose messages carry
// two labels each (bodies downloaded against copies). -million
// measures a mailbox of a million messages instead. It is what `make
// bench` runs, for the "faster than mbsync" and "fast where people sync
// every day" work; README.md ("Performance") holds the latest table and
// says how it is measured.
//
//	go run ./sync/bench [-quick] [-install] [-json] [-readme README.md] [-million] [flags]
//
// It drives satchel only through its binary and configuration file, as a
// user would, and mbsync likewise; it imports no satchel package (nor
// sync/imaptest, which is for _test.go files only: the Dovecot starter
// here follows the same approach). The Gmail emulation, which lives in
// sync/imaptest, it builds and runs as a program of its own
// (sync/imaptest/gmailserve). Everything it creates lives in one
// temporary directory, removed at the end unless -keep.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	quick       bool
	messages    int     // main corpus
	bigShare    float64 // share of main-corpus messages with a big attachment
	small       int     // messages in the small mailbox
	large       int     // messages in the large mailbox
	hugeMB      int     // size of the one huge message; 0 skips it
	latency     time.Duration
	repeat      int // no-op runs per measurement (the median counts)
	firstRuns   int // first syncs per dataset, from scratch (the median counts)
	flagShare   float64
	newMsgs     int
	removeMsgs  int
	seed        uint64
	satchel     string
	mbsync      string
	noMbsync    bool
	install     bool
	json        bool
	readme      string
	keep        bool
	traceAll    bool
	dir         string
	targetRatio float64
	maxRSSMB    float64
	// millionRSSMB is -million's bound: a mailbox of a million messages.
	millionRSSMB float64
	maxRT        int
	maxGrowth    float64

	rateMbit     float64 // the slow link's rate, each way
	compressMsgs int     // messages of the COMPRESS dataset; 0 skips it
	accountMsgs  int     // messages of each of the several accounts; 0 skips them
	gmailMsgs    int     // messages of the Gmail row; 0 skips it
	million      bool
	millionMsgs  int
}

func parseFlags() options {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "smoke run in about a minute: 200 + 200 + 2,000 messages, a 5 MB message, 300 on Gmail, one run of each no-op")
	flag.IntVar(&o.messages, "messages", 10000, "messages in the main corpus (several folders, 2-30 KB, some with 0.05-1.5 MB attachments)")
	flag.Float64Var(&o.bigShare, "big-share", 0.03, "share of main-corpus messages with an attachment of 0.05-1.5 MB")
	flag.IntVar(&o.small, "small", 10000, "small messages in the first single-mailbox dataset")
	flag.IntVar(&o.large, "large", 100000, "small messages in the second single-mailbox dataset")
	flag.IntVar(&o.hugeMB, "huge-mb", 200, "size in MB of the one message of the huge dataset; 0 skips it")
	flag.DurationVar(&o.latency, "latency", 25*time.Millisecond, "delay added by the proxy in each direction")
	flag.IntVar(&o.repeat, "repeat", 5, "runs of each no-op measurement; the median is reported")
	flag.IntVar(&o.firstRuns, "first-runs", 1, "first syncs of each dataset, each from an empty Maildir; the median is reported (a busy machine makes one run noisy)")
	flag.Float64Var(&o.flagShare, "flag-share", 0.01, "share of messages whose flags change, on the server or locally")
	flag.IntVar(&o.newMsgs, "new", 50, "new messages, on the server or locally")
	flag.IntVar(&o.removeMsgs, "remove", 20, "messages expunged on the server, or files deleted locally")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the corpus and of the changes")
	flag.StringVar(&o.satchel, "satchel", "", "satchel binary to measure (default: go build ./cmd/satchel into the work dir)")
	flag.StringVar(&o.mbsync, "mbsync", "", "mbsync binary (default: mbsync in PATH)")
	flag.BoolVar(&o.noMbsync, "no-mbsync", false, "measure satchel only")
	flag.BoolVar(&o.install, "install", false, "as root, apt-get install isync when mbsync is missing")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON instead of a table")
	flag.StringVar(&o.readme, "readme", "", "also write the table into this file, between the bench markers of its Performance section")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (servers, Maildirs, logs, traces)")
	flag.BoolVar(&o.traceAll, "trace", false, "give every satchel run but first syncs a --trace file (commands per scenario in -json; with -keep, the traces to read); slows those runs a little")
	flag.StringVar(&o.dir, "dir", "", "parent of the work directory (default $TMPDIR)")
	flag.Float64Var(&o.targetRatio, "target", 1.0, "target: satchel's time over mbsync's at most this, in the rows without a target of their own (large no-op 0.1, 0.25 with latency; main first sync and changes 0.5; large first sync 0.35)")
	flag.Float64Var(&o.maxRSSMB, "max-rss-mb", 51.8, "requirement: satchel's peak RSS in every scenario, MB (the Gmail row included)")
	flag.Float64Var(&o.millionRSSMB, "million-max-rss-mb", 64, "requirement: satchel's peak RSS in the -million first sync, MB")
	flag.IntVar(&o.maxRT, "max-round-trips", 5, "requirement: round trips of a no-op sync after login")
	flag.Float64Var(&o.maxGrowth, "max-growth", 1.2, "requirement: no-op time of the large mailbox over the small one")
	flag.Float64Var(&o.rateMbit, "rate", 20, "rate of the slow link in Mbit/s, each way, shared by all connections (the COMPRESS row)")
	flag.IntVar(&o.compressMsgs, "compress-messages", 600, "messages of the COMPRESS dataset (main-corpus mail, 7% with attachments: about 55 MB for 600); 0 skips it")
	flag.IntVar(&o.accountMsgs, "account-messages", 1000, "messages in each of the three accounts of the several-accounts rows; 0 skips them")
	flag.IntVar(&o.gmailMsgs, "gmail-messages", 10000, "messages of the Gmail row (Gmail emulation, two labels each: three mailboxes show each); 0 skips it")
	flag.BoolVar(&o.million, "million", false, "measure only a mailbox of -million-messages small messages, satchel alone: first sync, no-op against the server's LIST-STATUS, 100 changes")
	flag.IntVar(&o.millionMsgs, "million-messages", 1000000, "messages of the -million mailbox")
	flag.Parse()
	if o.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]any{"messages": 200, "small": 200, "large": 2000, "huge-mb": 5, "repeat": 1, "new": 10, "remove": 5,
			"compress-messages": 60, "account-messages": 100, "gmail-messages": 300, "million-messages": 20000} {
			if !set[name] {
				flag.Set(name, fmt.Sprint(v))
			}
		}
	}
	return o
}

func main() {
	o := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// progress logs what the bench is doing to stderr; results go to stdout.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o options) error {
	began := time.Now()
	parent := o.dir
	if parent == "" {
		parent = os.TempDir()
	}
	work, err := os.MkdirTemp(parent, "satchel-bench-")
	if err != nil {
		return err
	}
	// Dovecot runs as uid 65534 when the bench runs as root: it must be
	// able to reach its home below the work directory.
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	if o.keep {
		progress("work directory %s (kept)", work)
	} else {
		defer os.RemoveAll(work)
	}

	satchelBin, err := findSatchel(ctx, o, work)
	if err != nil {
		return err
	}
	mbsyncBin, mbsyncNote := findMbsync(o)
	if mbsyncNote != "" {
		progress("%s", mbsyncNote)
	}
	if o.million {
		rep := &report{opts: o, mbsyncNote: "-million: satchel alone", results: map[string]map[string]*result{}}
		rep.machine = describeMachine(satchelBin, "")
		if rep.million, err = measureMillion(ctx, o, work, satchelBin); err != nil {
			return fmt.Errorf("million: %w", err)
		}
		rep.seedTime = time.Duration(rep.million.SeedSecs * float64(time.Second))
		return rep.finish(began)
	}
	var notes []string
	if o.compressMsgs > 0 {
		if err := findIMAPZlib(); err != nil {
			notes = append(notes, fmt.Sprintf("COMPRESS row skipped: %v", err))
			o.compressMsgs = 0
		}
	}

	sets := datasets(o)
	srv, err := startDovecot(filepath.Join(work, "server-satchel"))
	if err != nil {
		return err
	}
	defer srv.stop()
	progress("dovecot on %s; seeding %s", srv.Addr, describeSets(sets))
	seedTime, err := seed(ctx, srv.Addr, sets, o.seed)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := srv.configure(false); err != nil {
		return err
	}
	if err := srv.waitIdle(ctx); err != nil {
		return err
	}
	progress("seeded in %v", seedTime.Round(time.Second))

	rep := &report{opts: o, sets: sets, seedTime: seedTime, mbsyncNote: mbsyncNote, notes: notes,
		floors: map[string]diskTime{}, results: map[string]map[string]*result{}}
	rep.machine = describeMachine(satchelBin, mbsyncBin)

	// Each dataset's floor: its own message files copied and flushed,
	// apart from the others (a first sync writes one dataset). The
	// copies go when the bench ends (see datasetFloor), -keep or not.
	for _, d := range sets {
		dst := filepath.Join(work, "floor-"+d.id)
		defer os.RemoveAll(dst)
		f, err := datasetFloor(ctx, srv.MailDir, d, dst)
		if err != nil {
			return fmt.Errorf("disk floor of %s: %w", d.id, err)
		}
		rep.floors[d.id] = f
		progress("floor of %s: cp -a + sync of %s files, %.0f MB: %v", d.id, thousands(f.files), f.mb, f.elapsed.Round(time.Millisecond))
	}
	for _, d := range sets {
		if d.id == "compress" {
			if rep.deflated, rep.corpus, err = deflatedSize(srv.MailDir, d); err != nil {
				return fmt.Errorf("deflate the %s corpus: %w", d.id, err)
			}
		}
	}

	// mbsync gets a server of its own, a copy of satchel's made before
	// either tool touches it: same mail, same UIDs, and no Dovecot cache
	// warmed by the other tool's fetches. That copy, flushed, is also the
	// disk's own limit for all datasets at once.
	copyDir := filepath.Join(work, "server-mbsync")
	var srv2 *dovecot
	if mbsyncBin != "" {
		if srv2, err = startDovecot(copyDir); err != nil {
			return err
		}
		defer srv2.stop()
		if err := srv2.configure(false); err != nil {
			return err
		}
	}
	if rep.disk, err = diskLimit(ctx, srv.MailDir, filepath.Join(copyDir, "home", "Mail")); err != nil {
		return fmt.Errorf("disk limit: %w", err)
	}
	if srv2 == nil {
		os.RemoveAll(copyDir)
	}
	progress("cp -a + sync of the server's Maildir (%s files, %.0f MB): %v", thousands(rep.disk.files), rep.disk.mb, rep.disk.elapsed.Round(time.Millisecond))

	type setup struct {
		srv  *dovecot
		tool func(ports []int) (syncTool, error)
	}
	setups := []setup{{srv, func(ports []int) (syncTool, error) {
		return newSatchel(satchelBin, filepath.Join(work, "satchel"), ports, sets)
	}}}
	if srv2 != nil {
		setups = append(setups, setup{srv2, func(ports []int) (syncTool, error) {
			return newMbsync(mbsyncBin, filepath.Join(work, "mbsync"), ports, sets)
		}})
	}
	for _, su := range setups {
		proxies := []*latencyProxy{nil}
		for _, rate := range []float64{0, o.rateMbit * 1e6 / 8} {
			p, err := startLink(su.srv.Addr, o.latency, rate)
			if err != nil {
				return err
			}
			defer p.close()
			proxies = append(proxies, p)
		}
		t, err := su.tool([]int{su.srv.Port, proxies[delayed].port(), proxies[slow].port()})
		if err != nil {
			return err
		}
		m := &measurer{o: o, srv: su.srv, proxies: proxies, tool: t, traces: filepath.Join(work, t.name()), rep: rep}
		if err := m.all(ctx, sets); err != nil {
			return fmt.Errorf("%s: %w", t.name(), err)
		}
	}
	// After every other row: its syncs store keywords in the small
	// mailbox on satchel's server.
	for _, d := range sets {
		if d.id != "small" {
			continue
		}
		var note string
		if rep.notmuch, note, err = measureNotmuch(ctx, o, work, satchelBin, srv, d); err != nil {
			return fmt.Errorf("notmuch: %w", err)
		}
		if note != "" {
			progress("%s", note)
			rep.notes = append(rep.notes, note)
		}
	}
	if o.accountMsgs > 0 {
		if rep.accounts, err = measureAccounts(ctx, o, work, satchelBin); err != nil {
			return fmt.Errorf("accounts: %w", err)
		}
	}
	if o.gmailMsgs > 0 {
		if rep.gmail, err = measureGmail(ctx, o, work, satchelBin, mbsyncBin); err != nil {
			return fmt.Errorf("gmail: %w", err)
		}
	}
	return rep.finish(began)
}

// finish prints the report and writes it into the README if asked to.
func (rep *report) finish(began time.Time) error {
	rep.total = time.Since(began)
	rep.machine.Load += " at the start, " + loadAvg() + " at the end"

	if err := rep.print(os.Stdout); err != nil {
		return err
	}
	if rep.opts.readme != "" {
		if err := rep.updateReadme(rep.opts.readme); err != nil {
			return err
		}
		progress("wrote the table into %s", rep.opts.readme)
	}
	return nil
}

// findSatchel returns the binary to measure, building it (a normal build,
// without -race) when -satchel is not given.
func findSatchel(ctx context.Context, o options, work string) (string, error) {
	if o.satchel != "" {
		return filepath.Abs(o.satchel)
	}
	bin := filepath.Join(work, "satchel-bin")
	progress("building satchel")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/satchel-mail/satchel/cmd/satchel")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build satchel: %w", err)
	}
	return bin, nil
}

// findMbsync returns mbsync's path, or "" and why not.
func findMbsync(o options) (string, string) {
	if o.noMbsync {
		return "", "mbsync not measured (-no-mbsync)"
	}
	if o.mbsync != "" {
		return o.mbsync, ""
	}
	if p, err := exec.LookPath("mbsync"); err == nil {
		return p, ""
	}
	if !o.install {
		return "", "mbsync not installed: mbsync columns skipped (install isync, or run with -install as root)"
	}
	if os.Geteuid() != 0 {
		return "", "mbsync not installed and -install needs root: mbsync columns skipped"
	}
	progress("installing isync (mbsync)")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "isync"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Sprintf("apt-get %s failed (%v): mbsync columns skipped\n%s", args[0], err, out)
		}
	}
	if p, err := exec.LookPath("mbsync"); err == nil {
		return p, ""
	}
	return "", "isync installed but mbsync not in PATH: mbsync columns skipped"
}

// diskTime is the disk's own limit: copying the server's Maildir and
// flushing it to disk.
type diskTime struct {
	elapsed time.Duration
	mb      float64
	files   int
}

// diskLimit times `cp -a src dst && sync`. cp -a rather than the plainer
// cp -r because the copy serves as mbsync's server: Dovecot takes a
// message's INTERNALDATE from its file's mtime, which cp -r would not
// keep (the cost is the same: one chown and one utimensat more per file).
// What other work left unflushed is synced before the clock starts.
func diskLimit(ctx context.Context, src, dst string) (diskTime, error) {
	var d diskTime
	filepath.Walk(src, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			d.mb += float64(fi.Size()) / (1 << 20)
			d.files++
		}
		return nil
	})
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return d, err
	}
	exec.CommandContext(ctx, "sync").Run()
	start := time.Now()
	if out, err := exec.CommandContext(ctx, "sh", "-c", `cp -a "$1" "$2" && sync`, "sh", src, dst).CombinedOutput(); err != nil {
		return d, fmt.Errorf("%v: %s", err, out)
	}
	d.elapsed = time.Since(start)
	return d, nil
}
