package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/store"
)

func newMailboxesCommand(g *globals, code *int) *cli.Command {
	return &cli.Command{
		Name:      "mailboxes",
		Usage:     "print a muttrc \"mailboxes\" line with the account's local folders",
		ArgsUsage: "[ACCOUNT...]",
		Description: `Prints, for each account (all when none is named), one line for mutt or
neomutt: "mailboxes" followed by the Maildir folder of every mailbox synced
so far, INBOX first, as absolute paths in single quotes. It reads the index
and the Maildir; it does not connect to the server.

In a muttrc:
   source 'satchel mailboxes personal|'

Examples:
   satchel mailboxes personal
   satchel --json mailboxes`,
		Action: func(c *cli.Context) error {
			*code = runMailboxes(c.Context, g, c.Args().Slice())
			return nil
		},
	}
}

type mailboxesAccount struct {
	Account string   `json:"account"`
	Folders []string `json:"folders"`
}

func runMailboxes(ctx context.Context, g *globals, names []string) int {
	accounts, err := loadAccounts(g, names)
	if err != nil {
		return reportFatal(g, err)
	}
	var all []mailboxesAccount
	for _, acc := range accounts {
		folders, err := localFolders(ctx, g, acc)
		if err != nil {
			return reportFatal(g, fmt.Errorf("%s: %w", acc.Name, err))
		}
		all = append(all, mailboxesAccount{Account: acc.Name, Folders: folders})
	}
	if g.json {
		writeJSON(g, struct {
			Accounts []mailboxesAccount `json:"accounts"`
		}{all})
		return exitOK
	}
	for _, a := range all {
		var b strings.Builder
		b.WriteString("mailboxes")
		for _, f := range a.Folders {
			b.WriteString(" " + muttQuote(f))
		}
		fmt.Fprintln(g.stdout, b.String())
	}
	return exitOK
}

// localFolders returns the absolute paths of the folders of the
// account's synced mailboxes that exist on disk, INBOX first, then by
// mailbox name. It creates nothing.
func localFolders(ctx context.Context, g *globals, acc config.Account) ([]string, error) {
	a, err := openAccount(ctx, g, acc, nil, openMode{lock: lockNever, indexed: true})
	if errors.Is(err, errNotSynced) {
		return nil, fmt.Errorf("%w (no index at %s); run satchel sync %s", errNotSynced, acc.Index, acc.Name)
	}
	if err != nil {
		return nil, err
	}
	defer a.close()
	ix := a.ix
	boxes, err := ix.Mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	// Mailboxes come sorted by name; INBOX goes first, as mail readers
	// show it.
	slices.SortStableFunc(boxes, func(a, b store.Mailbox) int {
		ai, bi := strings.EqualFold(a.Name, "INBOX"), strings.EqualFold(b.Name, "INBOX")
		switch {
		case ai && !bi:
			return -1
		case bi && !ai:
			return 1
		}
		return 0
	})
	root, err := filepath.Abs(acc.Maildir)
	if err != nil {
		return nil, err
	}
	folders := []string{}
	for _, b := range boxes {
		dir := filepath.Join(root, filepath.FromSlash(b.LocalPath))
		// A folder is there once its cur/ is: a mailbox whose first
		// sync never got that far is left out.
		if fi, err := os.Stat(filepath.Join(dir, "cur")); err != nil || !fi.IsDir() {
			continue
		}
		folders = append(folders, dir)
	}
	return folders, nil
}

// muttQuote quotes s as one muttrc word. Within single quotes muttrc
// takes every character as it is (no backslash escapes, no $variable or
// `command` expansion). A single quote in s ends the quoted part, is
// escaped, and a new quoted part begins; as in sh, parts next to each
// other make one word:
//
//	it's  ->  'it'\''s'
func muttQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
