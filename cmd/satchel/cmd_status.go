package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/sync/mail"
)

func newStatusCommand(g *globals, code *int) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show, per mailbox, messages local and remote, the last sync and its mode",
		ArgsUsage: "[ACCOUNT...]",
		Description: `Reads the index and the Maildir; does not connect to the server.
Remote counts are as of the last sync.

Examples:
   satchel status
   satchel --json status personal`,
		Action: func(c *cli.Context) error {
			*code = runStatus(c.Context, g, c.Args().Slice())
			return nil
		},
	}
}

type statusMailbox struct {
	Name    string `json:"name"`
	Local   string `json:"local"`
	LocalN  int    `json:"messages_local"`
	RemoteN uint32 `json:"messages_remote"`
	// Skipped counts the messages a partial-sync limit kept on the
	// server only (sync.since, max_size, max_messages).
	Skipped  int        `json:"skipped"`
	LastSync *time.Time `json:"last_sync"`
	Mode     string     `json:"mode"`
}

type statusAccount struct {
	Account   string          `json:"account"`
	Maildir   string          `json:"maildir"`
	Index     string          `json:"index"`
	Synced    bool            `json:"synced"`
	Mailboxes []statusMailbox `json:"mailboxes"`
}

func runStatus(ctx context.Context, g *globals, names []string) int {
	accounts, err := loadAccounts(g, names)
	if err != nil {
		return reportFatal(g, err)
	}
	var all []statusAccount
	for _, acc := range accounts {
		st, err := accountStatus(ctx, g, acc)
		if err != nil {
			return reportFatal(g, fmt.Errorf("%s: %w", acc.Name, err))
		}
		all = append(all, st)
	}
	if g.json {
		writeJSON(g, struct {
			Accounts []statusAccount `json:"accounts"`
		}{all})
		return exitOK
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	for _, a := range all {
		fmt.Fprintf(tw, "%s\t(%s)\n", a.Account, a.Maildir)
		if !a.Synced {
			fmt.Fprintf(tw, "  never synced: run satchel sync %s\n", a.Account)
			continue
		}
		fmt.Fprintf(tw, "  MAILBOX\tLOCAL\tREMOTE\tSKIPPED\tLAST SYNC\tMODE\n")
		for _, m := range a.Mailboxes {
			last := "never"
			if m.LastSync != nil {
				last = m.LastSync.Local().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\t%s\n", m.Name, m.LocalN, m.RemoteN, m.Skipped, last, m.Mode)
		}
	}
	tw.Flush()
	return exitOK
}

// accountStatus reads an account's index, if it has one, and counts its
// local folders. It creates nothing, and takes no lock: a running sync
// does not hold it up.
func accountStatus(ctx context.Context, g *globals, acc config.Account) (statusAccount, error) {
	st := statusAccount{Account: acc.Name, Maildir: acc.Maildir, Index: acc.Index, Mailboxes: []statusMailbox{}}
	a, err := openAccount(ctx, g, acc, nil, openMode{lock: lockNever, indexed: true})
	if errors.Is(err, errNotSynced) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	defer a.close()
	ix := a.ix
	boxes, err := ix.Mailboxes(ctx)
	if err != nil {
		return st, err
	}
	st.Synced = true
	for _, b := range boxes {
		n, err := a.root.Folder(b.LocalPath).Count()
		if err != nil {
			return st, err
		}
		rows, err := ix.Messages(ctx, b.ID, b.UIDValidity)
		if err != nil {
			return st, err
		}
		m := statusMailbox{Name: b.Name, Local: b.LocalPath, LocalN: n, RemoteN: b.Messages, Mode: string(b.Mode)}
		for _, r := range rows {
			if r.State == mail.StateSkipped {
				m.Skipped++
			}
		}
		if !b.LastSync.IsZero() {
			t := b.LastSync
			m.LastSync = &t
		}
		st.Mailboxes = append(st.Mailboxes, m)
	}
	return st, nil
}
