package crashtest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"
)

// scenario is a piece of work for satchel: prepare builds a world up to
// the sync that is then killed and restarted; again gives a world whose
// work is done the same kind of work once more, for the kills a round has
// left when a run finishes before its kill.
type scenario struct {
	name    string
	tag     string // prefix of its X-Crash-IDs
	prepare func(w *world)
	again   func(w *world)
}

var scenarios = []scenario{
	// An initial download: a few hundred messages over six mailboxes, a
	// few of them of several MB. Again: the Maildir and the index are
	// deleted, so the next run starts afresh.
	{"download", "dl", func(w *world) {
		w.seedServer(300, 3, 2<<20)
	}, func(w *world) {
		w.forgetLocal()
	}},
	// Mail written offline into several folders, after a first sync.
	{"upload", "up", func(w *world) {
		w.seedServer(100, 1, 1<<20)
		w.firstSync()
		w.writeLocal(50)
	}, func(w *world) {
		w.writeLocal(50)
	}},
	// Changes on both sides since a first sync: flags, deletions, moves
	// and new mail locally; flags, appends and expunges on the server.
	{"mixed", "mx", func(w *world) {
		w.seedServer(150, 1, 1<<20)
		w.firstSync()
		w.mixedChanges()
	}, func(w *world) {
		w.mixedChanges()
	}},
	// The folder lifecycle (lifecycle_test.go), with sync.remove_folders
	// false (keep) and true (remove).
	renameScenario("rename-keep", "rk", false),
	renameScenario("rename-remove", "rr", true),
	deleteScenario("delete-keep", "dk", false),
	deleteScenario("delete-remove", "dr", true),
}

// firstSync runs the sync the later changes are made against.
func (w *world) firstSync() {
	w.t.Helper()
	if r := w.runSatchel(0); r.code != 0 {
		w.t.Fatalf("first sync (not killed): run %d exited %d; log tail:\n%s", r.n, r.code, tail(r.log, 12))
	}
}

// TestCrash kills `satchel sync` with SIGKILL at random moments of each
// scenario's work, restarts it, and checks the outcome once a run
// completes (see world.check).
//
// Each scenario first syncs one world without kills (the clean world):
// that measures how long the work takes, so kill delays can be spread over
// all of it, and shows whether the scenario fails without any crash. Then
// each round builds a fresh world, in the server modes by turns, kills up
// to killsPerRound runs, each after a delay drawn uniformly from the time
// the remaining work should take, runs satchel to completion, checks both
// sides, and runs it once more to check that it then changes nothing. A
// round that fails builds its world again from the same seed and syncs it
// without kills, to tell the failures a crash causes from the others.
func TestCrash(t *testing.T) {
	s := loadSettings(t)
	t.Logf("seed %d (replay with SATCHEL_CRASH_SEED=%d), %d kill attempts per scenario", s.seed, s.seed, s.kills)
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Logf("seed %d", s.seed)
			c := &crashScenario{s: s, sc: sc, index: i}
			rounds := (s.kills + killsPerRound - 1) / killsPerRound
			for r := range rounds {
				mode := serverModes[r%len(serverModes)]
				t.Run(fmt.Sprintf("round-%02d-%s", r, mode.name), func(t *testing.T) { c.round(t, r, mode) })
			}
		})
	}
}

// crashScenario runs the rounds of one scenario.
type crashScenario struct {
	s     settings
	sc    scenario
	index int
	clean *calibration
}

// calibration is what the clean world measured: how long the run under
// test took, and how long a run with nothing to do takes (the cost of a
// restart before it does work again).
type calibration struct {
	work, idle time.Duration
	failed     bool
}

// seed derives the seed of one world from the run's seed, so that one
// round can be replayed alone with -run.
func (c *crashScenario) seed(world int) uint64 {
	return rand.New(rand.NewPCG(c.s.seed, uint64(c.index)<<32|uint64(world))).Uint64()
}

// cleanWorldSeed numbers the clean world apart from the rounds.
const cleanWorldSeed = 1 << 20

// calibrate syncs the scenario's clean world, once, in the first server
// mode.
func (c *crashScenario) calibrate(t *testing.T) *calibration {
	t.Helper()
	if c.clean != nil {
		return c.clean
	}
	// Failed until it has passed, so that a clean world stopped by
	// t.Fatal counts as failed.
	c.clean = &calibration{failed: true}
	w := newWorld(t, c.seed(cleanWorldSeed), serverModes[0], c.sc.tag+"c")
	w.keepOnFailure(c.artifactDir("clean"))
	c.sc.prepare(w)
	r := w.mustComplete("the run under test, without kills")
	idle := w.settle()
	w.check()
	if len(w.problems) > 0 {
		t.Errorf("%s fails WITHOUT any kill (clean world, seed %d, mode %s); its rounds are skipped. %d problems:\n%s",
			c.sc.name, c.seed(cleanWorldSeed), serverModes[0].name, len(w.problems), strings.Join(w.problems, "\n"))
		return c.clean
	}
	c.clean.work, c.clean.idle, c.clean.failed = r.elapsed, idle.elapsed, false
	t.Logf("clean %s run: %v, then %v with nothing to do", c.sc.name, c.clean.work.Round(time.Millisecond), c.clean.idle.Round(time.Millisecond))
	return c.clean
}

// round builds a world, kills satchel up to killsPerRound times, then
// runs it to completion and checks.
func (c *crashScenario) round(t *testing.T, r int, mode serverMode) {
	cal := c.calibrate(t)
	if cal.failed {
		t.Skipf("%s fails without kills", c.sc.name)
	}
	seed := c.seed(r)
	t.Logf("world seed %d (from SATCHEL_CRASH_SEED=%d)", seed, c.s.seed)
	dest := c.artifactDir(fmt.Sprintf("round-%02d-%s", r, mode.name))
	w := newWorld(t, seed, mode, fmt.Sprintf("%s%d", c.sc.tag, r))
	w.keepOnFailure(dest)
	c.sc.prepare(w)

	// The run's remaining work, estimated: a kill after d leaves the
	// work not done in d, plus the restart's own cost.
	budget := min(killsPerRound, c.s.kills-r*killsPerRound)
	remaining := cal.work
	kills := 0
	for attempt := 0; kills < budget && attempt < 3*budget; attempt++ {
		delay := max(time.Duration(w.delays.Float64()*float64(remaining)), time.Millisecond)
		run := w.runSatchelKill(delay, c.s.at)
		if c.s.at != nil {
			delay = run.elapsed
		}
		if !run.killed {
			if run.code != 0 {
				w.problem("run %d (due to be killed after %v) exited %d on its own; log tail:\n%s", run.n, delay, run.code, tail(run.log, 12))
				continue
			}
			// Finished before its kill: the same work once more.
			c.sc.again(w)
			w.agains++
			remaining = cal.work
			continue
		}
		kills++
		w.observeKill(run, delay, cal.work)
		remaining = max(remaining-delay, 0) + cal.idle
	}
	w.mustComplete("the run after the kills")
	w.settle()
	w.check()
	t.Logf("%d kills, %d runs", kills, w.runs)
	if testing.Verbose() || len(w.problems) > 0 {
		for _, k := range w.kills {
			t.Log(k)
		}
	}
	if len(w.problems) == 0 {
		return
	}
	t.Errorf("%d problems after %d kills (world seed %d, mode %s):\n%s", len(w.problems), kills, seed, mode.name, strings.Join(w.problems, "\n"))

	// The same world without kills: the same work, given as often.
	control := newWorld(t, seed, mode, fmt.Sprintf("%s%d", c.sc.tag, r))
	control.keepOnFailure(filepath.Join(dest, "control"))
	c.sc.prepare(control)
	for range w.agains {
		control.mustComplete("the run under test, without kills")
		c.sc.again(control)
	}
	control.mustComplete("the run under test, without kills")
	control.settle()
	control.check()
	if len(control.problems) == 0 {
		t.Errorf("the same world synced WITHOUT kills has none of these problems: the kills caused them")
	} else {
		t.Errorf("the same world synced without kills has %d problems too:\n%s", len(control.problems), strings.Join(control.problems, "\n"))
	}
}

// artifactCount bounds how many failed rounds keep their files.
var (
	artifactMu    gosync.Mutex
	artifactCount int
)

const maxArtifacts = 20

func (c *crashScenario) artifactDir(round string) string {
	return filepath.Join(c.s.artifact, fmt.Sprintf("seed%d", c.s.seed), c.sc.name, round)
}

// keepOnFailure copies the world's configuration, index and run files
// (traces, logs, index copies after each kill, final listings) to dest if
// the test fails. It runs before the world's temporary directory is
// removed and before its Dovecot stops.
func (w *world) keepOnFailure(dest string) {
	w.t.Cleanup(func() {
		if !w.t.Failed() {
			return
		}
		artifactMu.Lock()
		artifactCount++
		n := artifactCount
		artifactMu.Unlock()
		if n > maxArtifacts {
			return
		}
		err := filepath.Walk(w.dir, func(path string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(w.dir, path)
			if rel == "Mail" {
				return filepath.SkipDir
			}
			if fi.IsDir() {
				return os.MkdirAll(filepath.Join(dest, rel), 0o700)
			}
			return copyFile(path, filepath.Join(dest, rel))
		})
		if lines, ferr := w.fingerprint(); ferr == nil {
			os.WriteFile(filepath.Join(dest, "maildir-and-status.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o600)
		}
		if err != nil {
			w.t.Logf("keep the files of this world: %v", err)
			return
		}
		w.t.Logf("files of this world kept in %s", dest)
	})
}
