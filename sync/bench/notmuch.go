package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The notmuch measurement: satchel alone, on loopback, an account over
// the small dataset's mailbox (a Maildir of its own, after every other
// scenario) with notmuch.enabled and a notmuch configuration the bench
// writes. After its first sync every message is tagged in notmuch and
// synced; then the no-op with notmuch on is set against the no-op of the
// same account with notmuch off (the runs alternate, the medians count),
// and one sync is timed after 100 tag changes in notmuch.

// notmuchResult is what the notmuch measurement found.
type notmuchResult struct {
	Messages int     `json:"messages"`
	First    *result `json:"first"`    // first sync, notmuch new included
	TagAll   *result `json:"tag_all"`  // the sync after every message was tagged
	NoopOn   *result `json:"noop_on"`  // no-op with notmuch.enabled
	NoopOff  *result `json:"noop_off"` // no-op of the same account without
	Tags100  *result `json:"tags_100"` // the sync after 100 tag changes
	TagSecs  float64 `json:"tag_secs"` // notmuch tag of every message
	Tagged   int     `json:"tagged"`   // messages tagged +bench, per notmuch
	Retagged int     `json:"retagged"` // messages tagged +t100, per notmuch
}

// Limits of the notmuch requirements.
const (
	maxNotmuchNoopSlack = 0.020 // no-op with notmuch on over off, seconds
	maxNotmuchTags100   = 1.0   // the sync after 100 tag changes, seconds
)

// measureNotmuch runs the notmuch measurement against srv's mailbox of
// dataset d. It returns nil and why when notmuch is not installed.
func measureNotmuch(ctx context.Context, o options, work, bin string, srv *dovecot, d dataset) (*notmuchResult, string, error) {
	nm, err := exec.LookPath("notmuch")
	if err != nil {
		return nil, "notmuch rows skipped: notmuch not installed (apt-get install notmuch)", nil
	}
	dir := filepath.Join(work, "notmuch")
	mailRoot := filepath.Join(dir, "Mail")
	maildir := filepath.Join(mailRoot, d.id)
	if err := os.MkdirAll(mailRoot, 0o755); err != nil {
		return nil, "", err
	}
	nmConfig := filepath.Join(dir, "notmuch-config")
	conf := fmt.Sprintf("[database]\npath=%s\n\n[new]\nignore=.satchel-id\n\n[maildir]\nsynchronize_flags=true\n", mailRoot)
	if err := os.WriteFile(nmConfig, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	env := append(satchelEnv(dir), "NOTMUCH_CONFIG="+nmConfig)
	logPath := filepath.Join(dir, "satchel.log")
	notmuch := func(stdin string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, nm, append([]string{"--config=" + nmConfig}, args...)...)
		cmd.Env = env
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("notmuch %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out), nil
	}
	if _, err := notmuch("", "new", "--quiet"); err != nil {
		return nil, "", err
	}

	acct := satchelAccount{d.id, srv.Port, maildir, filepath.Join(dir, d.id+".db"), d.mailboxNames()}
	cfgOff, cfgOn := filepath.Join(dir, "config-off.yaml"), filepath.Join(dir, "config.yaml")
	if err := writeSatchelConfig(cfgOff, []satchelAccount{acct}); err != nil {
		return nil, "", err
	}
	if err := writeSatchelConfig(cfgOn, []satchelAccount{acct}); err != nil {
		return nil, "", err
	}
	f, err := os.OpenFile(cfgOn, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, "", err
	}
	fmt.Fprintf(f, "    notmuch: {enabled: true, config: %q}\n", nmConfig)
	if err := f.Close(); err != nil {
		return nil, "", err
	}

	// syncOnce runs one sync, in a second after the last change (as the
	// other rows do), and adds it to res.
	syncOnce := func(cfg string, res *result) error {
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
		pr, err := runProc(ctx, logPath, env, bin, "--config", cfg, "-q", "sync", d.id)
		if err != nil {
			return err
		}
		res.add(pr)
		res.Seconds = median(res.Runs)
		return nil
	}
	out := &notmuchResult{First: &result{}, TagAll: &result{}, NoopOn: &result{}, NoopOff: &result{}, Tags100: &result{}}

	progress("notmuch: first sync")
	if err := syncOnce(cfgOn, out.First); err != nil {
		return nil, "", err
	}
	files, err := mailFiles(maildir)
	if err != nil {
		return nil, "", err
	}
	out.Messages = len(files)

	progress("notmuch: tag every message, sync")
	start := time.Now()
	if _, err := notmuch("", "tag", "+bench", "--", "*"); err != nil {
		return nil, "", err
	}
	out.TagSecs = time.Since(start).Seconds()
	if n, err := notmuch("", "count", "tag:bench"); err != nil {
		return nil, "", err
	} else {
		fmt.Sscan(n, &out.Tagged)
	}
	if err := syncOnce(cfgOn, out.TagAll); err != nil {
		return nil, "", err
	}

	progress("notmuch: no-op on and off (%d each, alternating)", max(1, o.repeat))
	for i := 0; i < max(1, o.repeat); i++ {
		if err := syncOnce(cfgOn, out.NoopOn); err != nil {
			return nil, "", err
		}
		if err := syncOnce(cfgOff, out.NoopOff); err != nil {
			return nil, "", err
		}
	}

	progress("notmuch: 100 tag changes, sync")
	ids, err := notmuch("", "search", "--output=messages", "--limit=100", "--sort=oldest-first", "*")
	if err != nil {
		return nil, "", err
	}
	var batch strings.Builder
	for _, id := range strings.Split(strings.TrimSpace(ids), "\n") {
		// notmuch dump's quoting: the id's own double quotes doubled.
		fmt.Fprintf(&batch, "+t100 -- id:\"%s\"\n", strings.ReplaceAll(strings.TrimPrefix(id, "id:"), `"`, `""`))
	}
	if _, err := notmuch(batch.String(), "tag", "--batch"); err != nil {
		return nil, "", err
	}
	if n, err := notmuch("", "count", "tag:t100"); err != nil {
		return nil, "", err
	} else {
		fmt.Sscan(n, &out.Retagged)
	}
	if err := syncOnce(cfgOn, out.Tags100); err != nil {
		return nil, "", err
	}
	progress("notmuch: no-op %.3fs on, %.3fs off; 100 tag changes %.3fs", out.NoopOn.Seconds, out.NoopOff.Seconds, out.Tags100.Seconds)
	return out, "", nil
}

// slack is the no-op with notmuch on over the no-op without, in seconds.
func (n *notmuchResult) slack() (float64, bool) {
	if n.NoopOn == nil || n.NoopOff == nil || n.NoopOn.Exit != 0 || n.NoopOff.Exit != 0 || len(n.NoopOn.Runs) == 0 || len(n.NoopOff.Runs) == 0 {
		return 0, false
	}
	return n.NoopOn.Seconds - n.NoopOff.Seconds, true
}
