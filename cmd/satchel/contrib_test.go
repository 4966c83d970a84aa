package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

var contrib = filepath.Join("..", "..", "contrib")

// unitFile parses a systemd unit file into section -> key -> values, in
// order (a key may repeat).
func unitFile(t *testing.T, name string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(contrib, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unit := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			unit[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", name, n, line)
			}
			k = strings.TrimSpace(k)
			unit[section][k] = append(unit[section][k], strings.TrimSpace(v))
		}
	}
	return unit
}

// runsQuietly runs argv (satchel's own words, as a scheduler would run
// them) against a test server's account and wants a successful, silent
// sync: a scheduler mails or logs whatever is printed.
func runsQuietly(t *testing.T, argv []string) {
	t.Helper()
	if len(argv) == 0 || argv[0] != "satchel" {
		t.Fatalf("command %q does not run satchel", argv)
	}
	srv := imaptest.StartMemory(t)
	srv.Append("INBOX", []byte("Subject: hi\r\n\r\nhello\r\n"), nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	t.Setenv("SATCHEL_CONFIG", a.config)
	code, out, errs := runCLI(t, argv[1:]...)
	if code != exitOK || out != "" || errs != "" {
		t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0 and silence", argv, code, out, errs)
	}
	if files, _ := filepath.Glob(filepath.Join(a.maildir, "INBOX", "new", "*")); len(files) != 1 {
		t.Errorf("%q did not sync: INBOX/new holds %q", argv, files)
	}
}

func TestContribSystemd(t *testing.T) {
	svc, timer := unitFile(t, "satchel.service"), unitFile(t, "satchel.timer")
	s := svc["Service"]
	if got := s["Type"]; !slices.Equal(got, []string{"oneshot"}) {
		t.Errorf("Type=%q, want oneshot", got)
	}
	start := s["ExecStart"]
	if len(start) != 1 {
		t.Fatalf("ExecStart=%q, want one command", start)
	}
	argv := strings.Fields(start[0])
	if argv[0] == "/usr/bin/env" {
		argv = argv[1:]
	}
	if !slices.Equal(argv, []string{"satchel", "-q", "sync"}) {
		t.Errorf("ExecStart=%q, want satchel -q sync", start[0])
	}
	if !slices.Contains(strings.Fields(strings.Join(s["SuccessExitStatus"], " ")), "75") {
		t.Errorf("SuccessExitStatus=%q: a run that found the account locked (exit 75) is no failure", s["SuccessExitStatus"])
	}
	tm := timer["Timer"]
	if len(tm["OnCalendar"]) == 0 && len(tm["OnUnitActiveSec"]) == 0 {
		t.Errorf("the timer has no schedule: %q", tm)
	}
	if u := tm["Unit"]; u != nil && !slices.Equal(u, []string{"satchel.service"}) {
		t.Errorf("the timer starts %q, not satchel.service", u)
	}
	if got := timer["Install"]["WantedBy"]; !slices.Equal(got, []string{"timers.target"}) {
		t.Errorf("timer WantedBy=%q, want timers.target", got)
	}
	runsQuietly(t, argv)

	t.Run("systemd-analyze verify", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze is not installed: the units are only parsed")
		}
		files := []string{filepath.Join(contrib, "satchel.service"), filepath.Join(contrib, "satchel.timer")}
		// As user units, which they are; a machine without a user
		// manager can still check them as system units.
		cmd := exec.Command(sa, append([]string{"--user", "verify"}, files...)...)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if strings.Contains(string(out), "Failed to initialize manager") {
			out, err = exec.Command(sa, append([]string{"verify"}, files...)...).CombinedOutput()
		}
		if err != nil || len(out) != 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}

func TestContribCrontab(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(contrib, "crontab"))
	if err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			jobs = append(jobs, line)
		}
	}
	if len(jobs) != 1 {
		t.Fatalf("want one crontab line, got %q", jobs)
	}
	f := strings.Fields(jobs[0])
	if len(f) < 6 {
		t.Fatalf("crontab line %q has no command", jobs[0])
	}
	for i, field := range f[:5] {
		if strings.Trim(field, "0123456789*/,-") != "" {
			t.Errorf("time field %d %q is not a cron field", i+1, field)
		}
	}
	// The command: environment assignments, then satchel's words.
	argv := f[5:]
	for len(argv) > 0 && strings.Contains(argv[0], "=") && !strings.HasPrefix(argv[0], "-") {
		argv = argv[1:]
	}
	if !slices.Equal(argv, []string{"satchel", "-q", "sync"}) {
		t.Errorf("crontab command %q, want satchel -q sync", f[5:])
	}
	runsQuietly(t, argv)
}
