package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			code, out, errs := runCLI(t, "completion", shell)
			if code != exitOK || !strings.Contains(out, "satchel") || errs != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
			}
			sh, err := exec.LookPath(shell)
			if err != nil {
				t.Skipf("%s is not installed: its script's syntax is not checked", shell)
			}
			file := filepath.Join(t.TempDir(), "satchel."+shell)
			os.WriteFile(file, []byte(out), 0o600)
			if msg, err := exec.Command(sh, "-n", file).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, msg)
			}
		})
	}
	code, _, errs := runCLI(t, "completion", "tcsh")
	if code != exitUsage || !strings.Contains(errs, `unknown shell "tcsh"`) {
		t.Errorf("completion tcsh: exit %d, stderr %q", code, errs)
	}
}

// TestBashCompletion loads the bash script into bash and completes words
// as bash would on TAB, with a built satchel: commands, options, shells
// and account names from the file that --config names.
func TestBashCompletion(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not in PATH: satchel cannot be built for this test")
	}
	bin := t.TempDir()
	if out, err := exec.Command(goTool, "build", "-o", filepath.Join(bin, "satchel"), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, []byte(`accounts:
  - {name: personal, maildir: /m/p, imap: {host: h, user: u, password_command: p}}
  - {name: work, maildir: /m/w, imap: {host: h, user: u, password_command: p}}
`), 0o600)
	complete := func(words ...string) string {
		t.Helper()
		script := `source <(satchel completion bash)
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
_satchel_complete
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command("bash", append([]string{"-c", script, "bash"}, words...)...)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "SATCHEL_CONFIG=/nonexistent")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		return strings.TrimSuffix(string(out), "\n")
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"satchel", "sy"}, "sync"},
		{[]string{"satchel", "mail"}, "mailboxes"},
		{[]string{"satchel", "migr"}, "migrate-folders"},
		{[]string{"satchel", "migrate-folders", "--dr"}, "--dry-run"},
		{[]string{"satchel", "sync", "--dr"}, "--dry-run"},
		{[]string{"satchel", "completion", ""}, "bash\nzsh\nfish"},
		{[]string{"satchel", "--config", cfg, "sync", ""}, "personal\nwork"},
		{[]string{"satchel", "--config", cfg, "sync", "personal", ""}, "work"},
		{[]string{"satchel", "--config", cfg, "status", "w"}, "work"},
		// Without a readable configuration there is nothing to offer.
		{[]string{"satchel", "check", ""}, ""},
	} {
		if got := complete(tc.words...); got != tc.want {
			t.Errorf("completing %q: got %q, want %q", tc.words, got, tc.want)
		}
	}
}

func TestVersionAndCommit(t *testing.T) {
	oldVersion, oldCommit := version, commit
	t.Cleanup(func() { version, commit = oldVersion, oldCommit })
	version, commit = "v1.2.3", "0abc123"
	code, out, _ := runCLI(t, "--version")
	if code != exitOK || out != "satchel version v1.2.3 (0abc123)\n" {
		t.Errorf("--version: exit %d, %q", code, out)
	}
}
