package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
)

type migrateOptions struct {
	accounts []string
	dryRun   bool
}

func newMigrateCommand(g *globals, code *int) *cli.Command {
	var opts migrateOptions
	return &cli.Command{
		Name:      "migrate-folders",
		Usage:     "move folders named with the server's namespace prefix (INBOX/Archive) to names without it (Archive)",
		ArgsUsage: "[ACCOUNT...]",
		Description: `On a server that puts your mailboxes under a prefix (hosting panels'
"INBOX.", Courier, Cyrus), satchel leaves the prefix out of folder names:
INBOX.Archive is the folder Archive. An index made by an earlier version
keeps INBOX.Archive in INBOX/Archive until this command moves the folders
and records their new places. Nothing is downloaded or uploaded, and
nothing changes on the server. Mail readers' paths change: update mutt's
mailboxes lines, notmuch folder: queries and saved searches. Sync first.

A folder whose new place is taken fails alone, naming both; the rest move,
and folder names keep the prefix until the command runs again with the
place cleared. An interrupted run is finished by running it again.

Examples:
   satchel sync personal && satchel migrate-folders personal
   satchel migrate-folders --dry-run     # print the moves; change nothing`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "print the moves and change nothing", Destination: &opts.dryRun},
		},
		Action: func(c *cli.Context) error {
			args, err := tailFlags{bools: map[string]*bool{"dry-run": &opts.dryRun}}.parse(c.Args().Slice())
			if err != nil {
				return err
			}
			opts.accounts = args
			*code = runMigrate(c.Context, g, opts)
			return nil
		},
	}
}

// migrateWarning is said before anything is done: the folders mail
// readers know by path move.
const migrateWarning = `satchel: migrate-folders moves folders named with the server's namespace prefix to names without it (INBOX/Archive becomes Archive).
satchel: mail readers' paths change with them: update mutt's mailboxes lines, notmuch folder: queries and saved searches.
satchel: sync first, so that nothing made or changed in the old folders is left unsynced.
`

type migrateAccount struct {
	Account  string        `json:"account"`
	Prefix   string        `json:"prefix,omitempty"`
	Nothing  string        `json:"nothing,omitempty"`
	DryRun   bool          `json:"dry_run,omitempty"`
	Migrated bool          `json:"migrated"`
	Moves    []migrateMove `json:"moves"`
	Error    string        `json:"error,omitempty"`
}

type migrateMove struct {
	Mailbox string `json:"mailbox"`
	From    string `json:"from"`
	To      string `json:"to,omitempty"`
	Done    bool   `json:"done"`
	Error   string `json:"error,omitempty"`
}

// runMigrate migrates the selected accounts one after another and
// returns the exit code: 3 when a folder could not move.
func runMigrate(ctx context.Context, g *globals, opts migrateOptions) int {
	if !g.quiet {
		fmt.Fprint(g.stderr, migrateWarning)
	}
	var out outcome
	var results []migrateAccount
	err := eachAccount(g, opts.accounts, func(acc config.Account, trace io.Writer) {
		res, err := migrateFolders(ctx, g, acc, opts.dryRun, trace)
		ma := migrateAccount{Account: acc.Name, Prefix: res.Prefix, Nothing: res.Nothing, DryRun: opts.dryRun, Migrated: res.Migrated, Moves: []migrateMove{}}
		for _, mv := range res.Moves {
			m := migrateMove{Mailbox: mv.Mailbox, From: mv.From, To: mv.To, Done: mv.Done}
			if mv.Err != nil {
				m.Error = mv.Err.Error()
				fmt.Fprintf(g.stderr, "satchel: %s: %s: %s\n", acc.Name, mv.Mailbox, mv.Err)
				out.failures++
			}
			ma.Moves = append(ma.Moves, m)
		}
		if err != nil {
			ma.Error = withHint(err)
			if !errors.Is(err, store.ErrLocked) || !g.quiet {
				fmt.Fprintf(g.stderr, "satchel: %s: %s\n", acc.Name, ma.Error)
			}
		}
		out.account(err, nil)
		results = append(results, ma)
	})
	if err != nil {
		return reportFatal(g, err)
	}
	if g.json {
		writeJSON(g, struct {
			Accounts []migrateAccount `json:"accounts"`
		}{results})
		return out.code()
	}
	if !g.quiet {
		for _, ma := range results {
			printMigration(g.stdout, ma)
		}
	}
	return out.code()
}

// printMigration writes one account's moves, one line each
// ("INBOX.Archive: INBOX/Archive → Archive"), and what became of it.
func printMigration(w io.Writer, ma migrateAccount) {
	switch {
	case ma.Error != "":
		return
	case ma.Nothing != "":
		fmt.Fprintf(w, "%s: nothing to do: %s\n", ma.Account, ma.Nothing)
		return
	}
	failed := 0
	for _, m := range ma.Moves {
		line := fmt.Sprintf("%s: %s → %s", m.Mailbox, m.From, m.To)
		if m.To == "" {
			line = fmt.Sprintf("%s: %s", m.Mailbox, m.From)
		}
		if m.Error != "" {
			failed++
			line += " (not moved)"
		}
		fmt.Fprintf(w, "%s: %s\n", ma.Account, line)
	}
	switch {
	case ma.DryRun:
		fmt.Fprintf(w, "%s: dry run: %s would move to names without the prefix %q; nothing was changed\n", ma.Account, plural(len(ma.Moves)-failed, "folder"), ma.Prefix)
	case failed > 0:
		fmt.Fprintf(w, "%s: %s not moved; folder names keep the prefix %q until satchel migrate-folders runs again\n", ma.Account, plural(failed, "folder"), ma.Prefix)
	case ma.Migrated:
		fmt.Fprintf(w, "%s: folder names leave the prefix %q out from now on\n", ma.Account, ma.Prefix)
	}
}

// migrateFolders opens the account (lock, index, identity check, run
// marker; a dry run reads a private copy of the index and creates
// nothing) and runs the migration. An account never synced has nothing
// to migrate.
func migrateFolders(ctx context.Context, g *globals, acc config.Account, dryRun bool, trace io.Writer) (satsync.MigrateResult, error) {
	res := satsync.MigrateResult{Account: acc.Name}
	mode := openMode{lock: lockAlways, indexed: true, guard: true}
	if dryRun {
		mode.lock, mode.readOnly = lockIfPresent, true
	}
	a, err := openAccount(ctx, g, acc, trace, mode)
	if errors.Is(err, errNotSynced) {
		res.Nothing = fmt.Sprintf("not synced yet (no index at %s)", acc.Index)
		return res, nil
	}
	if err != nil {
		return res, err
	}
	defer a.close()
	deps := syncDeps(a, dryRun)
	return satsync.MigrateFolderNames(ctx, satsync.Options{
		Account: acc.Name,
		Prefix:  acc.IMAP.Prefix,
		Map:     acc.Mailboxes.Map,
		DryRun:  dryRun,
		Logger:  g.log,
	}, satsync.Deps{
		Connect:      deps.Connect,
		Index:        deps.Index,
		Folder:       func(rel string) satsync.Folder { return a.root.Folder(rel) },
		LocalPath:    deps.LocalPath,
		RenameFolder: deps.RenameFolder,
		RemoveFolder: deps.RemoveFolder,
	})
}
