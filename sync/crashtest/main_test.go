package crashtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// satchelBin is the binary under test, built once by TestMain.
var satchelBin string

// TestMain builds satchel once for every scenario. It is built without
// -race whatever the tests use: the harness kills it hundreds of times and
// a slow binary would only stretch the windows between its steps.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "satchel-crashtest-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "crashtest: %v\n", err)
		os.Exit(1)
	}
	satchelBin = filepath.Join(dir, "satchel")
	// go test puts $GOROOT/bin first in PATH, so this is the go that
	// builds the tests.
	build := exec.Command("go", "build", "-o", satchelBin, "github.com/satchel-mail/satchel/cmd/satchel")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "crashtest: build satchel: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// killsPerRound is how many kill attempts one world gets before it is run
// to completion and checked. After a kill the remaining work shrinks, so a
// long chain on one world would mostly kill runs that only learn; fresh
// worlds spread the kills over every phase of the work.
const killsPerRound = 4

// runLimit is how long one satchel run may take before the harness calls
// it hung, kills it and fails.
const runLimit = 5 * time.Minute

// settings are the harness's knobs from the environment.
type settings struct {
	seed     uint64
	kills    int
	artifact string
	// at, when set, replaces random kill delays: each run is killed as
	// soon as its trace shows a client line that matches it.
	at *regexp.Regexp
}

func loadSettings(t *testing.T) settings {
	t.Helper()
	s := settings{seed: uint64(time.Now().UnixNano()), kills: 10}
	if testing.Short() {
		s.kills = 4
	}
	if v := os.Getenv("SATCHEL_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SATCHEL_CRASH_SEED=%q: %v", v, err)
		}
		s.seed = n
	}
	if v := os.Getenv("SATCHEL_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("SATCHEL_CRASH_KILLS=%q: want a count", v)
		}
		s.kills = n
	}
	if v := os.Getenv("SATCHEL_CRASH_AT"); v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			t.Fatalf("SATCHEL_CRASH_AT=%q: %v", v, err)
		}
		s.at = re
	}
	s.artifact = os.Getenv("SATCHEL_CRASH_ARTIFACTS")
	if s.artifact == "" {
		s.artifact = filepath.Join(os.TempDir(), "satchel-crash")
	}
	return s
}
