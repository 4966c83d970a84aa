package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/verify"
)

type verifyOptions struct {
	accounts  []string
	mailboxes []string
	// deep compares contents; restart forgets an interrupted deep run's
	// progress; wait waits for the account's lock.
	deep, restart, wait bool
}

func newVerifyCommand(g *globals, code *int) *cli.Command {
	var opts verifyOptions
	return &cli.Command{
		Name:      "verify",
		Usage:     "compare the server, the Maildir and the index; change nothing",
		ArgsUsage: "[ACCOUNT...]",
		Description: `For every message: present on both sides (or on one side by the
account's policy, as the index records), the same size (the server's
RFC822.SIZE against the file in CRLF form) and the same flags (system
flags against the file name, keywords against the index); no local file
the index does not know, no index row whose file is gone. --deep also
fetches every message (BODY.PEEK[], streamed) and compares its SHA-256,
as a download would store it, with the file's.

Nothing is changed: mailboxes are EXAMINEd, the index is read from a
private copy, and the only file written is the progress of a --deep run
(INDEX.verify-progress), so that an interrupted run resumes where it
stopped; it is removed when a deep run completes.

Exit status: 0 when everything matches, 1 with the list of differences.

Examples:
   satchel verify
   satchel verify personal --mailbox INBOX --deep
   satchel --json verify personal`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "mailbox", Usage: "verify only this mailbox (repeatable)"},
			&cli.BoolFlag{Name: "deep", Usage: "also compare every message's content (fetches every message)", Destination: &opts.deep},
			&cli.BoolFlag{Name: "restart", Usage: "with --deep: forget what an interrupted deep run verified", Destination: &opts.restart},
			&cli.BoolFlag{Name: "wait", Usage: "wait for another satchel run on the account to finish instead of exiting 75", Destination: &opts.wait},
		},
		Action: func(c *cli.Context) error {
			opts.mailboxes = c.StringSlice("mailbox")
			args, err := tailFlags{
				lists: map[string]*[]string{"mailbox": &opts.mailboxes},
				bools: map[string]*bool{"deep": &opts.deep, "restart": &opts.restart, "wait": &opts.wait},
			}.parse(c.Args().Slice())
			if err != nil {
				return err
			}
			opts.accounts = args
			*code = runVerify(c.Context, g, opts)
			return nil
		},
	}
}

// errNeverSynced: the account has no index, so there is no backup to
// verify.
var errNeverSynced = errors.New("never synced: there is nothing to verify")

// runVerify verifies the selected accounts one after another and returns
// the exit code: 0 when everything matches, 1 when something differs or
// an account could not be verified; 2, 4, 130 and 75 as for sync; 3 when
// some mailboxes could not be verified and the rest match.
func runVerify(ctx context.Context, g *globals, opts verifyOptions) int {
	var results []verifiedAccount
	var codes []int
	err := eachAccount(g, opts.accounts, func(acc config.Account, trace io.Writer) {
		res, err := verifyAccount(ctx, g, acc, opts, trace)
		if err != nil {
			res = verifiedAccount{Result: verify.Result{Account: acc.Name, Err: err}}
		}
		if res.Err != nil {
			if !errors.Is(res.Err, store.ErrLocked) || !g.quiet {
				fmt.Fprintf(g.stderr, "satchel: %s: %s\n", acc.Name, withHint(res.Err))
			}
		}
		for _, m := range res.Mailboxes {
			if m.Err != nil {
				fmt.Fprintf(g.stderr, "satchel: %s: %s: %s\n", acc.Name, m.Name, withHint(m.Err))
			}
		}
		if res.tagErr != nil {
			fmt.Fprintf(g.stderr, "satchel: %s: %s\n", acc.Name, withHint(res.tagErr))
		}
		codes = append(codes, verifyCode(res))
		results = append(results, res)
	})
	if err != nil {
		return reportFatal(g, err)
	}
	printVerifyResults(g, results, opts.deep)
	return worstVerifyCode(codes)
}

// verifiedAccount is what verify found in an account: the server, the
// Maildir and the index compared, and with notmuch enabled the tags
// compared with the keywords.
type verifiedAccount struct {
	verify.Result
	// tags lists the messages whose tags and keywords differ; tagErr
	// says why they could not be compared.
	tags   []satsync.TagDifference
	tagErr error
}

// count is the number of differences, tags included.
func (r verifiedAccount) count() int { return r.Count() + len(r.tags) }

// complete reports whether everything was verified to the end.
func (r verifiedAccount) complete() bool { return r.Complete() && r.tagErr == nil }

// verifyCode is one account's exit code.
func verifyCode(res verifiedAccount) int {
	switch {
	case res.Err != nil && !errors.Is(res.Err, context.Canceled):
		return exitCodeOf(res.Err)
	case res.Err != nil:
		return exitInterrupted
	case res.count() > 0:
		return exitFailure
	case res.tagErr != nil && errors.Is(res.tagErr, context.Canceled):
		return exitInterrupted
	case res.tagErr != nil:
		return exitPartial
	}
	for _, m := range res.Mailboxes {
		if m.Err != nil {
			if errors.Is(m.Err, context.Canceled) {
				return exitInterrupted
			}
			return exitPartial
		}
	}
	return exitOK
}

// worstVerifyCode applies the precedence 2, 130, 1, 4, 3, 75.
func worstVerifyCode(codes []int) int {
	for _, c := range []int{exitUsage, exitInterrupted, exitFailure, exitSafety, exitPartial, exitLocked} {
		for _, got := range codes {
			if got == c {
				return c
			}
		}
	}
	return exitOK
}

// verifyAccount opens the account under its lock (so that no sync
// changes it meanwhile), reading a private copy of its index, with its
// Maildir checked to be the index's, and verifies; with notmuch enabled
// it then compares the tags with the keywords verify listed.
func verifyAccount(ctx context.Context, g *globals, acc config.Account, opts verifyOptions, trace io.Writer) (verifiedAccount, error) {
	a, err := openAccount(ctx, g, acc, trace, openMode{command: "verify", lock: lockAlways, wait: opts.wait, indexed: true, readOnly: true, guard: true})
	if errors.Is(err, errNotSynced) {
		return verifiedAccount{}, fmt.Errorf("%w (no index at %s); run satchel sync %s", errNeverSynced, acc.Index, acc.Name)
	}
	if err != nil {
		return verifiedAccount{}, err
	}
	defer a.close()
	var progress *verify.ProgressFile
	if opts.deep {
		path := acc.Index + ".verify-progress"
		if opts.restart {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return verifiedAccount{}, fmt.Errorf("forget verify progress: %w", err)
			}
		}
		if progress, err = verify.OpenProgress(path); err != nil {
			return verifiedAccount{}, err
		}
		defer progress.Close()
		if n := progress.Len(); n > 0 {
			g.log.Info("resuming an interrupted deep verification", "account", acc.Name, "verified", n)
		}
	}
	local := a.root
	keywords := &serverKeywords{}
	deps := verify.Deps{
		Connect: func(ctx context.Context) (verify.Remote, error) {
			c, err := imapremote.Dial(ctx, a.remote)
			if err != nil {
				return nil, err
			}
			return keywords.wrap(c), nil
		},
		Index:     a.ix,
		Folder:    func(rel string) verify.Folder { return readFolder{local.Folder(rel)} },
		LocalPath: local.Path,
		Folders:   func() ([]string, error) { return folderPaths(local) },
		Stored:    func(w io.Writer) io.WriteCloser { return maildir.NewLFWriter(w) },
	}
	if progress != nil {
		deps.Progress = progress
	}
	res := verify.Account(ctx, verify.Options{
		Account: acc.Name,
		Include: acc.Mailboxes.Include,
		Exclude: acc.Mailboxes.Exclude,
		Map:     acc.Mailboxes.Map,
		Prefix:  acc.IMAP.Prefix,
		Only:    opts.mailboxes,
		Deep:    opts.deep,
		Logger:  g.log,
	}, deps)
	out := verifiedAccount{Result: res}
	if acc.Notmuch.Enabled && res.Err == nil {
		out.tags, out.tagErr = verifyTags(ctx, acc, a.ix, trace, keywords)
	}
	return out, nil
}

// jsonTagDifference is a message whose notmuch tags and server keywords
// differ, in verify --json.
type jsonTagDifference struct {
	Mailbox      string   `json:"mailbox"`
	UID          uint32   `json:"uid"`
	ID           string   `json:"message_id"`
	OnlyTags     []string `json:"only_tags"`
	OnlyKeywords []string `json:"only_keywords"`
}

type jsonDifference struct {
	Kind   string `json:"kind"`
	UID    uint32 `json:"uid,omitempty"`
	Key    string `json:"key,omitempty"`
	Detail string `json:"detail"`
}

type jsonVerifyMailbox struct {
	Name        string           `json:"name"`
	Local       string           `json:"local"`
	Remote      int              `json:"messages_remote"`
	Files       int              `json:"messages_local"`
	Compared    int              `json:"compared"`
	Deep        int              `json:"contents_compared"`
	Resumed     int              `json:"contents_resumed"`
	Shared      int              `json:"contents_shared,omitempty"`
	Error       string           `json:"error,omitempty"`
	Differences []jsonDifference `json:"differences"`
}

type jsonVerifyAccount struct {
	Account     string              `json:"account"`
	OK          bool                `json:"ok"`
	Complete    bool                `json:"complete"`
	Error       string              `json:"error,omitempty"`
	Mailboxes   []jsonVerifyMailbox `json:"mailboxes"`
	Differences []jsonDifference    `json:"differences"`
	// Tags is there when notmuch is enabled.
	Tags      []jsonTagDifference `json:"tags,omitempty"`
	TagsError string              `json:"tags_error,omitempty"`
}

func jsonDifferences(ds []verify.Difference) []jsonDifference {
	out := make([]jsonDifference, 0, len(ds))
	for _, d := range ds {
		out = append(out, jsonDifference{Kind: string(d.Kind), UID: uint32(d.UID), Key: d.Key, Detail: d.Detail})
	}
	return out
}

// printVerifyResults prints, per account, one line per mailbox and one
// per difference, or the JSON document.
func printVerifyResults(g *globals, results []verifiedAccount, deep bool) {
	if g.json {
		doc := struct {
			Accounts []jsonVerifyAccount `json:"accounts"`
		}{Accounts: []jsonVerifyAccount{}}
		for _, r := range results {
			ja := jsonVerifyAccount{Account: r.Account, OK: r.complete() && r.count() == 0, Complete: r.complete(),
				Mailboxes: []jsonVerifyMailbox{}, Differences: jsonDifferences(r.Differences)}
			if r.Err != nil {
				ja.Error = withHint(r.Err)
			}
			for _, d := range r.tags {
				ja.Tags = append(ja.Tags, jsonTagDifference{Mailbox: d.Mailbox, UID: uint32(d.UID), ID: d.ID,
					OnlyTags: nonNil(d.OnlyTags), OnlyKeywords: nonNil(d.OnlyKeywords)})
			}
			if r.tagErr != nil {
				ja.TagsError = withHint(r.tagErr)
			}
			for _, m := range r.Mailboxes {
				jm := jsonVerifyMailbox{Name: m.Name, Local: m.Local, Remote: m.Remote, Files: m.Files, Compared: m.Compared,
					Deep: m.Deep, Resumed: m.Resumed, Shared: m.Shared, Differences: jsonDifferences(m.Differences)}
				if m.Err != nil {
					jm.Error = withHint(m.Err)
				}
				ja.Mailboxes = append(ja.Mailboxes, jm)
			}
			doc.Accounts = append(doc.Accounts, ja)
		}
		writeJSON(g, doc)
		return
	}
	for _, r := range results {
		if r.Err != nil && len(r.Mailboxes) == 0 {
			continue
		}
		n := r.count()
		if g.quiet && n == 0 {
			continue
		}
		var compared, contents, resumed, shared int
		for _, m := range r.Mailboxes {
			compared += m.Compared
			contents += m.Deep
			resumed += m.Resumed
			shared += m.Shared
		}
		summary := fmt.Sprintf("%s: %d mailboxes, %d messages compared", r.Account, len(r.Mailboxes), compared)
		if deep {
			summary += fmt.Sprintf(", %d contents compared", contents)
			if shared > 0 {
				summary += fmt.Sprintf(" (and %d Gmail copies against them)", shared)
			}
			if resumed > 0 {
				summary += fmt.Sprintf(" (and %d by an interrupted run)", resumed)
			}
		}
		switch {
		case n == 0 && r.complete():
			summary += ": everything matches"
		case n == 0:
			summary += ": no difference in what could be verified"
		default:
			summary += ": " + plural(n, "difference")
		}
		fmt.Fprintln(g.stdout, summary)
		for _, m := range r.Mailboxes {
			state := "ok"
			switch {
			case m.Err != nil:
				state = "not verified to the end"
			case len(m.Differences) > 0:
				state = plural(len(m.Differences), "difference")
			}
			if g.quiet && state == "ok" {
				continue
			}
			fmt.Fprintf(g.stdout, "  %s (%s): %d on the server, %d local: %s\n", m.Name, m.Local, m.Remote, m.Files, state)
			for _, d := range m.Differences {
				fmt.Fprintf(g.stdout, "    %s\n", strings.TrimSpace(d.String()))
			}
		}
		for _, d := range r.Differences {
			fmt.Fprintf(g.stdout, "  %s\n", d.String())
		}
		if len(r.tags) > 0 {
			fmt.Fprintf(g.stdout, "  notmuch tags: %s\n", plural(len(r.tags), "message"))
			for _, d := range r.tags {
				fmt.Fprintf(g.stdout, "    %s\n", d)
			}
		}
	}
}

// nonNil is s, or an empty list for nil: a JSON list is never null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// plural counts things: "1 difference", "2 differences".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
