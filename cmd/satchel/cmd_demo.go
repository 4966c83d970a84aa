package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel"
	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
)

func newDemoCommand(g *globals, code *int) *cli.Command {
	return &cli.Command{
		Name:      "demo",
		Usage:     "sync sample mail from a built-in IMAP server into DIR (default ./satchel-demo)",
		ArgsUsage: "[DIR]",
		Description: `Starts an in-process IMAP server on a loopback port, seeded with sample
mail, and syncs it into DIR/Mail with its index in DIR/satchel.db - the same
code path as a real account, with no network and no configuration.

Examples:
   satchel demo                      # into ./satchel-demo
   satchel demo /tmp/try-satchel
   mutt -f satchel-demo/Mail/INBOX   # then read the result`,
		Action: func(c *cli.Context) error {
			dir := "satchel-demo"
			if c.NArg() > 1 {
				return usageError{fmt.Errorf("demo takes at most one directory")}
			}
			if c.NArg() == 1 {
				dir = c.Args().First()
			}
			*code = runDemo(c.Context, g, dir)
			return nil
		},
	}
}

const demoUser, demoPassword = "demo", "demo"

func runDemo(ctx context.Context, g *globals, dir string) int {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return reportFatal(g, err)
	}
	addr, stop, err := startDemoServer()
	if err != nil {
		return reportFatal(g, fmt.Errorf("start the demo server: %w", err))
	}
	defer stop()
	host, port, _ := net.SplitHostPort(addr)
	var portN int
	fmt.Sscan(port, &portN)
	acc := config.Account{
		Name: "demo",
		IMAP: config.IMAP{
			Host: host, Port: portN, TLS: "none", User: demoUser, Auth: "plain",
			Password: demoPassword, Connections: 1,
		},
		Maildir:   filepath.Join(dir, "Mail"),
		Layout:    "verbatim",
		Index:     filepath.Join(dir, "satchel.db"),
		Mailboxes: config.Mailboxes{Include: []string{"*"}},
	}
	trace, closeTrace, err := openTrace(g)
	if err != nil {
		return reportFatal(g, err)
	}
	defer closeTrace()
	var out outcome
	for i, label := range []string{"first sync", "second sync (nothing changed)"} {
		res, err := syncAccount(ctx, g, acc, syncOptions{}, trace)
		if err != nil {
			out.account(err, nil)
			fmt.Fprintf(g.stderr, "satchel: demo: %s\n", withHint(err))
			return out.code()
		}
		reportAccountErrors(g, res)
		out.account(nil, &res)
		switch {
		case g.json:
			printSyncResults(g, []satsync.Result{res}, false)
		case !g.quiet && res.Err == nil:
			// The demo shows its summaries wherever it runs.
			fmt.Fprintf(g.stdout, "%s: ", label)
			printSummary(g.stdout, res)
		}
		if i == 0 && out.code() != exitOK {
			return out.code()
		}
	}
	// A notmuch configuration for the demo's Maildir, so that one
	// command indexes it.
	nmConfig := filepath.Join(dir, "notmuch-config")
	nm := fmt.Sprintf("[database]\npath=%s\n[new]\nignore=.satchel-id\n[maildir]\nsynchronize_flags=true\n", acc.Maildir)
	if err := os.WriteFile(nmConfig, []byte(nm), 0o600); err != nil {
		return reportFatal(g, fmt.Errorf("write %s: %w", nmConfig, err))
	}
	if !g.quiet && !g.json {
		fmt.Fprintf(g.stdout, `
The mail is in %[1]s (one Maildir per mailbox), the index in %[2]s.
Read it with mutt:     mutt -f %[1]s/INBOX
Or index it with notmuch:
    NOTMUCH_CONFIG=%[3]s notmuch new
Run "make demo" again: the second sync downloads nothing.
`, acc.Maildir, acc.Index, nmConfig)
	}
	return out.code()
}

// startDemoServer serves the embedded sample mail from go-imap's in-memory
// server on a loopback port.
func startDemoServer() (addr string, stop func(), err error) {
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(demoUser, demoPassword)
	if err := seedDemo(user); err != nil {
		return "", nil, err
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// seedDemo appends every message of testdata/demo to its mailbox, with
// CRLF line endings as IMAP requires.
func seedDemo(user *imapmemserver.User) error {
	root := "testdata/demo"
	var files []string
	err := fs.WalkDir(satchel.DemoMail, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".eml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	created := map[string]bool{}
	for _, p := range files {
		box := strings.TrimPrefix(path.Dir(p), root+"/")
		if !created[box] {
			if err := user.Create(box, nil); err != nil {
				return fmt.Errorf("create %q: %w", box, err)
			}
			created[box] = true
		}
		body, err := fs.ReadFile(satchel.DemoMail, p)
		if err != nil {
			return err
		}
		body = bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
		base := strings.TrimSuffix(path.Base(p), ".eml")
		var flags []imap.Flag
		if i := strings.IndexByte(base, '_'); i >= 0 {
			for _, f := range maildir.FlagsFromInfo(base[i+1:]).List() {
				flags = append(flags, imap.Flag(f))
			}
		}
		date := demoDate(body)
		if _, err := user.Append(box, bytes.NewReader(body), &imap.AppendOptions{Flags: flags, Time: date}); err != nil {
			return fmt.Errorf("append to %q: %w", box, err)
		}
	}
	return nil
}

// demoDate takes the INTERNALDATE from the Date header, as a server
// receiving the message would have about then.
func demoDate(body []byte) time.Time {
	for _, line := range strings.Split(string(body), "\r\n") {
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Date: "); ok {
			if t, err := time.Parse(time.RFC1123Z, v); err == nil {
				return t
			}
		}
	}
	return time.Now()
}
