package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// The Gmail row: a first sync of an account whose every message carries
// two labels (\Inbox and a user label), so that Gmail shows it in three
// mailboxes: INBOX, the label's and "[Gmail]/All Mail". satchel, in folder
// mode (the default), downloads each message once and hard-links its
// other copies by X-GM-MSGID; mbsync downloads every copy. The server is
// sync/imaptest's Gmail emulation, run as a program of its own
// (sync/imaptest/gmailserve): the bench links no satchel package.

// gmailResult is what the Gmail row found.
type gmailResult struct {
	Messages int     `json:"messages"`
	Copies   int     `json:"copies"` // mailbox entries showing the messages
	Labels   int     `json:"user_labels"`
	SeedSecs float64 `json:"seed_seconds"`
	Satchel  *result `json:"satchel"`
	Mbsync   *result `json:"mbsync,omitempty"`
	// Downloaded and Linked sum the mailboxes' "downloaded" and "linked"
	// of satchel's `sync --json`, from the last timed run.
	Downloaded int `json:"downloaded"`
	Linked     int `json:"linked"`
	// Wire counts the BODY[] responses in the --trace of one more first
	// sync, run apart so that tracing does not slow the timed ones; -1
	// when it was not counted.
	Wire int `json:"bodies_on_the_wire"`
	// Distinct is how many distinct files (inodes) the Maildir's message
	// files are, per tool: satchel's links make one file of a message's
	// copies.
	Distinct       int      `json:"distinct_files"`
	MbsyncDistinct int      `json:"mbsync_distinct_files,omitempty"`
	Errors         []string `json:"errors,omitempty"` // from satchel's --json
}

// pass says whether the requirement holds: every message downloaded
// once, every other copy linked, on the wire too when counted.
func (g *gmailResult) pass() bool {
	return g.Satchel != nil && g.Satchel.Exit == 0 && len(g.Errors) == 0 &&
		g.Downloaded == g.Messages && g.Linked == g.Copies-g.Messages && (g.Wire < 0 || g.Wire == g.Messages)
}

// gmailServer is a running gmailserve and what it printed once seeded.
type gmailServer struct {
	cmd   *exec.Cmd
	stdin io.Closer
	Addr  string `json:"addr"`
	Host  string `json:"host"`
	Port  int    `json:"port"`
	User  string `json:"user"`
	// Password is the emulation's fixed test password for its one
	// loopback account; the bench hands it to both tools.
	Password string   `json:"password"`
	Messages int      `json:"messages"`
	Copies   int      `json:"copies"`
	Labels   []string `json:"labels"`
	SeedSecs float64  `json:"seed_seconds"`
}

// startGmail builds gmailserve into dir and starts it with n messages;
// it returns once the account is seeded.
func startGmail(ctx context.Context, dir string, n int, seed uint64) (*gmailServer, error) {
	bin := filepath.Join(dir, "gmailserve")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/satchel-mail/satchel/sync/imaptest/gmailserve")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build gmailserve: %w", err)
	}
	log, err := os.Create(filepath.Join(dir, "gmailserve.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	// Not CommandContext: stop ends it, by closing its stdin.
	cmd := exec.Command(bin, "-messages", fmt.Sprint(n), "-seed", fmt.Sprint(seed))
	cmd.Stderr = log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gmailserve: %w", err)
	}
	g := &gmailServer{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, g)
	}
	if err != nil {
		g.stop()
		return nil, fmt.Errorf("gmailserve did not say where it listens (%v); see %s", err, log.Name())
	}
	return g, nil
}

// stop closes gmailserve's stdin, which ends it, and kills it if it has
// not ended within 10 s.
func (g *gmailServer) stop() {
	g.stdin.Close()
	done := make(chan struct{})
	go func() {
		g.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		g.cmd.Process.Kill()
		<-done
	}
}

func measureGmail(ctx context.Context, o options, work, satchelBin, mbsyncBin string) (*gmailResult, error) {
	dir := filepath.Join(work, "gmail")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	progress("gmail: building gmailserve and seeding %s messages", thousands(o.gmailMsgs))
	srv, err := startGmail(ctx, dir, o.gmailMsgs, o.seed)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	out := &gmailResult{Messages: srv.Messages, Copies: srv.Copies, Labels: len(srv.Labels), SeedSecs: srv.SeedSecs, Wire: -1}
	progress("gmail: emulation on %s, %s messages in %s mailbox entries, seeded in %.1fs", srv.Addr, thousands(srv.Messages), thousands(srv.Copies), srv.SeedSecs)

	// satchel: the whole account, in folder mode (the default).
	sdir := filepath.Join(dir, "satchel")
	maildir, index := filepath.Join(sdir, "mail"), filepath.Join(sdir, "gmail.db")
	cfg := filepath.Join(sdir, "config.yaml")
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("accounts:\n  - name: gmail\n    imap: {host: 127.0.0.1, port: %d, tls: none, user: %q, auth: plain, password_command: %q}\n    maildir: %q\n    index: %q\n",
		srv.Port, srv.User, "printf '%s' '"+srv.Password+"'", maildir, index)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	env := satchelEnv(sdir)
	logPath := filepath.Join(sdir, "satchel.log")
	reset := func() error {
		paths, _ := filepath.Glob(index + "*")
		for _, p := range append(paths, maildir) {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
		return nil
	}
	res := &result{}
	for i := 0; i < max(1, o.firstRuns); i++ {
		if err := reset(); err != nil {
			return nil, err
		}
		progress("gmail: satchel first sync")
		var stdout bytes.Buffer
		pr, err := runProcOut(ctx, logPath, &stdout, env, satchelBin, "--config", cfg, "--json", "sync", "gmail")
		if err != nil {
			return nil, err
		}
		res.add(pr)
		out.Downloaded, out.Linked, out.Errors = satchelCounts(stdout.Bytes())
	}
	res.Seconds = median(res.Runs)
	out.Satchel = res
	res.WantFiles = srv.Copies
	if res.Files, out.Distinct, err = distinctFiles(maildir); err != nil {
		return nil, err
	}
	progress("gmail: satchel: %.2fs, %.1f MB, %d downloaded, %d linked, exit %d", res.Seconds, res.PeakRSSMB, out.Downloaded, out.Linked, res.Exit)

	// The wire: one more first sync, traced.
	if err := reset(); err != nil {
		return nil, err
	}
	trace := filepath.Join(sdir, "first.trace")
	if pr, err := runProc(ctx, logPath, env, satchelBin, "--config", cfg, "-q", "--trace", trace, "sync", "gmail"); err != nil {
		return nil, err
	} else if pr.exit == 0 {
		if out.Wire, err = bodiesInTrace(trace); err != nil {
			return nil, err
		}
		progress("gmail: %d bodies on the wire in a traced first sync", out.Wire)
	}
	if !o.keep {
		os.Remove(trace)
	}

	if mbsyncBin != "" {
		mdir := filepath.Join(dir, "mbsync")
		root := filepath.Join(mdir, "mail")
		if err := os.MkdirAll(root, 0o700); err != nil {
			return nil, err
		}
		// Every mailbox, as satchel syncs it; the emulation offers LOGIN
		// besides AUTHENTICATE PLAIN.
		rc := filepath.Join(mdir, "mbsyncrc")
		conf := fmt.Sprintf("IMAPAccount gmail\nHost 127.0.0.1\nPort %d\nUser %s\nPass %s\nSSLType None\nAuthMechs LOGIN\n\n"+
			"IMAPStore gmail-far\nAccount gmail\n\nMaildirStore gmail-near\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"+
			"Channel gmail\nFar :gmail-far:\nNear :gmail-near:\nPatterns *\nCreate Both\nExpunge Both\nSync All\nSyncState *\n",
			srv.Port, srv.User, srv.Password, root, root)
		if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		mres := &result{WantFiles: srv.Copies}
		menv := append(os.Environ(), "HOME="+mdir)
		for i := 0; i < max(1, o.firstRuns); i++ {
			if err := os.RemoveAll(root); err != nil {
				return nil, err
			}
			if err := os.MkdirAll(root, 0o700); err != nil {
				return nil, err
			}
			progress("gmail: mbsync first sync")
			pr, err := runProc(ctx, filepath.Join(mdir, "mbsync.log"), menv, mbsyncBin, "-c", rc, "-q", "gmail")
			if err != nil {
				return nil, err
			}
			mres.add(pr)
		}
		mres.Seconds = median(mres.Runs)
		if mres.Files, out.MbsyncDistinct, err = distinctFiles(root); err != nil {
			return nil, err
		}
		out.Mbsync = mres
		progress("gmail: mbsync: %.2fs, %.1f MB, %d files, exit %d", mres.Seconds, mres.PeakRSSMB, mres.Files, mres.Exit)
	}
	return out, nil
}

// satchelCounts sums "downloaded" and "linked" over the mailboxes of
// `satchel sync --json` output, and collects its errors.
func satchelCounts(doc []byte) (downloaded, linked int, errs []string) {
	var out struct {
		Accounts []struct {
			Account   string `json:"account"`
			Error     string `json:"error"`
			Mailboxes []struct {
				Name       string `json:"name"`
				Downloaded int    `json:"downloaded"`
				Linked     int    `json:"linked"`
				Error      string `json:"error"`
			} `json:"mailboxes"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(doc, &out); err != nil {
		return 0, 0, []string{fmt.Sprintf("read sync --json: %v", err)}
	}
	for _, a := range out.Accounts {
		if a.Error != "" {
			errs = append(errs, a.Account+": "+a.Error)
		}
		for _, m := range a.Mailboxes {
			downloaded += m.Downloaded
			linked += m.Linked
			if m.Error != "" {
				errs = append(errs, m.Name+": "+m.Error)
			}
		}
	}
	return downloaded, linked, errs
}

// distinctFiles counts the message files under root, and how many
// distinct files (inodes) they are.
func distinctFiles(root string) (files, distinct int, err error) {
	paths, err := mailFiles(root)
	if err != nil {
		return 0, 0, err
	}
	seen := map[uint64]bool{}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return 0, 0, err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return 0, 0, errors.New("no inode numbers here")
		}
		seen[st.Ino] = true
	}
	return len(paths), len(seen), nil
}

// fetchBody is a server record that starts a message body: a FETCH
// response carrying BODY[] as a literal (or literal8). Body lines are
// records too, but the generated mail holds no line that looks like this.
var fetchBody = regexp.MustCompile(`^S: \* \d+ FETCH \(.*BODY\[\] ~?\{`)

// bodiesInTrace counts the bodies a `satchel --trace` file shows coming
// from the server.
func bodiesInTrace(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	br := bufio.NewReaderSize(f, 256<<10)
	for {
		// Records are at most 64 KiB (a longer line is cut into several),
		// well within the buffer.
		rec, err := br.ReadSlice('\n')
		if len(rec) > 0 && rec[0] == 'S' && fetchBody.Match(rec) {
			n++
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", path, err)
		}
	}
}

// detail is the requirement's evidence: what satchel's JSON, the wire
// and the Maildir say.
func (g *gmailResult) detail() string {
	d := fmt.Sprintf("%s downloaded, %s linked, of %s copies", thousands(g.Downloaded), thousands(g.Linked), thousands(g.Copies))
	if g.Wire >= 0 {
		d += fmt.Sprintf("; %s bodies on the wire (a traced first sync)", thousands(g.Wire))
	}
	if s := g.Satchel; s != nil {
		d += fmt.Sprintf("; %s message files, %s distinct", thousands(s.Files), thousands(g.Distinct))
	}
	return d
}

// table renders the row: satchel against mbsync, one line each.
func (g *gmailResult) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s msgs with two labels each (\\Inbox and one of %d user labels: %s copies in INBOX, the labels and All Mail), sync/imaptest's Gmail emulation, first sync of every mailbox, loopback (seeded in %.1f s):\n\n",
		thousands(g.Messages), g.Labels, thousands(g.Copies), g.SeedSecs)
	rows := [][]string{{"tool", "first sync s", "peak RSS MB", "bodies downloaded", "copies linked", "bodies on the wire", "message files (distinct)"}}
	if s := g.Satchel; s != nil {
		wire := "–"
		if g.Wire >= 0 {
			wire = thousands(g.Wire)
		}
		rows = append(rows, []string{"satchel", secs(s), rss(s), thousands(g.Downloaded), thousands(g.Linked), wire,
			fmt.Sprintf("%s (%s)", thousands(s.Files), thousands(g.Distinct))})
	}
	if m := g.Mbsync; m != nil {
		// mbsync writes each body it downloads to a file of its own.
		rows = append(rows, []string{"mbsync", secs(m), rss(m), thousands(g.MbsyncDistinct), "–", "–",
			fmt.Sprintf("%s (%s)", thousands(m.Files), thousands(g.MbsyncDistinct))})
	}
	b.WriteString(markdownTable(rows, 1))
	return b.String()
}
