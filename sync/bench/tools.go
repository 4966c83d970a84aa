package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// syncTool is one program under measurement. Each dataset is its own
// account (satchel) or channel (mbsync) with its own Maildir, so that each
// run syncs exactly one dataset.
type syncTool interface {
	name() string
	// root is the local Maildir root of dataset ds.
	root(ds string) string
	// sync runs one sync of ds over the given link. trace, when not
	// empty and the tool can, receives a protocol trace.
	sync(ctx context.Context, ds string, via link, trace string) (procResult, error)
	// reset forgets ds locally (Maildir and sync state), so that the
	// next sync is a first sync again. Only for a dataset the tool has
	// not changed on the server.
	reset(ds string) error
}

// link is the way a tool reaches the server.
type link int

const (
	direct  link = iota // loopback
	delayed             // the latency proxy: 25 ms each way
	slow                // the latency proxy with a rate limit (see -rate)
)

var linkNames = []string{"direct", "latency", "slow"}

// satchelTool runs the satchel binary with a configuration file per
// link, one account per dataset.
type satchelTool struct {
	bin     string
	dir     string
	configs []string // by link
	env     []string
}

// newSatchel writes the configuration files; ports are the server's port
// for each link.
func newSatchel(bin, dir string, ports []int, sets []dataset) (*satchelTool, error) {
	t := &satchelTool{bin: bin, dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	t.env = satchelEnv(dir)
	for l, port := range ports {
		path := filepath.Join(dir, "config.yaml")
		if l > 0 {
			path = filepath.Join(dir, "config-"+linkNames[l]+".yaml")
		}
		accts := make([]satchelAccount, len(sets))
		for i, ds := range sets {
			accts[i] = satchelAccount{ds.id, port, t.root(ds.id), filepath.Join(dir, ds.id+".db"), ds.mailboxNames()}
		}
		if err := writeSatchelConfig(path, accts); err != nil {
			return nil, err
		}
		t.configs = append(t.configs, path)
	}
	return t, nil
}

func satchelEnv(dir string) []string {
	return append(os.Environ(), "SATCHEL_CONFIG=", "XDG_DATA_HOME="+filepath.Join(dir, "xdg"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "xdg"), "HOME="+dir)
}

// satchelAccount is one account of a satchel configuration file.
type satchelAccount struct {
	name      string
	port      int
	maildir   string
	index     string
	mailboxes []string
}

func writeSatchelConfig(path string, accts []satchelAccount) error {
	var b strings.Builder
	b.WriteString("accounts:\n")
	for _, a := range accts {
		// Dovecot sessions are PREAUTH: the password is never asked for.
		fmt.Fprintf(&b, "  - name: %s\n    imap: {host: 127.0.0.1, port: %d, tls: none, user: %s, password_command: \"echo x\"}\n",
			a.name, a.port, dovecotUser)
		fmt.Fprintf(&b, "    maildir: %q\n    index: %q\n", a.maildir, a.index)
		fmt.Fprintf(&b, "    mailboxes: {include: [%s]}\n", quoteList(a.mailboxes))
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func (t *satchelTool) name() string          { return "satchel" }
func (t *satchelTool) root(ds string) string { return filepath.Join(t.dir, ds) }

func (t *satchelTool) reset(ds string) error {
	paths, _ := filepath.Glob(filepath.Join(t.dir, ds+".db*"))
	for _, p := range append(paths, t.root(ds)) {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

func (t *satchelTool) sync(ctx context.Context, ds string, via link, trace string) (procResult, error) {
	args := []string{"--config", t.configs[via], "-q"}
	if trace != "" {
		args = append(args, "--trace", trace)
	}
	args = append(args, "sync", ds)
	return runProc(ctx, filepath.Join(t.dir, "satchel.log"), t.env, t.bin, args...)
}

// mbsyncTool runs isync's mbsync with one channel per dataset, and a
// set of channels more per proxied link (delayed, slow), sharing the same
// Maildirs and sync state.
type mbsyncTool struct {
	bin string
	dir string
	rc  string
	env []string
}

func newMbsync(bin, dir string, ports []int, sets []dataset) (*mbsyncTool, error) {
	t := &mbsyncTool{bin: bin, dir: dir, rc: filepath.Join(dir, "mbsyncrc")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	t.env = append(os.Environ(), "HOME="+dir)
	var b strings.Builder
	// The session is PREAUTH: mbsync skips authentication, so User and
	// Pass are only there because the account must name them. Sync
	// state lives beside the mail (SyncState *), so the direct and the
	// proxied channel of a dataset share it.
	for l, port := range ports {
		a := linkNames[l]
		fmt.Fprintf(&b, "IMAPAccount %s\nHost 127.0.0.1\nPort %d\nUser %s\nPass x\nSSLType None\nAuthMechs LOGIN\n\n", a, port, dovecotUser)
		fmt.Fprintf(&b, "IMAPStore %s-far\nAccount %s\n\n", a, a)
	}
	for _, ds := range sets {
		root := t.root(ds.id)
		// mbsync wants the root of a Maildir store to exist.
		if err := os.MkdirAll(root, 0o700); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "MaildirStore %s-near\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n", ds.id, root, root)
		for _, a := range linkNames[:len(ports)] {
			fmt.Fprintf(&b, "Channel %s-%s\nFar :%s-far:\nNear :%s-near:\nPatterns %s\n", ds.id, a, a, ds.id, strings.Join(ds.mailboxNames(), " "))
			b.WriteString("Create Both\nExpunge Both\nSync All\nSyncState *\n\n")
		}
	}
	if err := os.WriteFile(t.rc, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *mbsyncTool) name() string          { return "mbsync" }
func (t *mbsyncTool) root(ds string) string { return filepath.Join(t.dir, ds) }

// reset removes the dataset's Maildir, which holds the sync state too
// (SyncState *), and makes its root again, as mbsync wants it.
func (t *mbsyncTool) reset(ds string) error {
	if err := os.RemoveAll(t.root(ds)); err != nil {
		return err
	}
	return os.MkdirAll(t.root(ds), 0o700)
}

func (t *mbsyncTool) sync(ctx context.Context, ds string, via link, _ string) (procResult, error) {
	ch := ds + "-" + linkNames[via]
	return runProc(ctx, filepath.Join(t.dir, "mbsync.log"), t.env, t.bin, "-c", t.rc, "-q", ch)
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
