package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/mail"
)

func newCheckCommand(g *globals, code *int) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "connect and authenticate, print the server's capabilities and the sync mode; change nothing",
		ArgsUsage: "[ACCOUNT...]",
		Description: `Examples:
   satchel check
   satchel --trace /tmp/imap.log check personal`,
		Action: func(c *cli.Context) error {
			*code = runCheck(c.Context, g, c.Args().Slice())
			return nil
		},
	}
}

type checkAccount struct {
	Account      string   `json:"account"`
	Server       string   `json:"server"`
	Capabilities []string `json:"capabilities,omitempty"`
	Mode         string   `json:"mode,omitempty"`
	Note         string   `json:"note,omitempty"`
	Error        string   `json:"error,omitempty"`
}

func runCheck(ctx context.Context, g *globals, names []string) int {
	var out outcome
	var results []checkAccount
	err := eachAccount(g, names, func(acc config.Account, trace io.Writer) {
		ca := checkAccount{Account: acc.Name, Server: fmt.Sprintf("%s:%d", acc.IMAP.Host, acc.IMAP.Port)}
		c, err := imapremote.Dial(ctx, remoteOptions(acc, trace, g))
		if err != nil {
			ca.Error = withHint(loginError(acc, err))
			out.account(err, nil)
			fmt.Fprintf(g.stderr, "satchel: %s: %s\n", acc.Name, ca.Error)
		} else {
			ca.Capabilities = c.Capabilities()
			ca.Mode = string(c.Mode())
			if c.Has("QRESYNC") && c.Mode() != mail.ModeQResync {
				ca.Note = "the server offers QRESYNC but declined to enable it; satchel uses CONDSTORE"
			}
			c.Close()
			out.account(nil, nil)
		}
		results = append(results, ca)
	})
	if err != nil {
		return reportFatal(g, err)
	}
	if g.json {
		writeJSON(g, struct {
			Accounts []checkAccount `json:"accounts"`
		}{results})
		return out.code()
	}
	for _, ca := range results {
		if ca.Error != "" {
			continue
		}
		fmt.Fprintf(g.stdout, "%s (%s): OK\n  capabilities: %s\n  sync mode: %s\n", ca.Account, ca.Server, strings.Join(ca.Capabilities, " "), ca.Mode)
		if ca.Note != "" {
			fmt.Fprintf(g.stdout, "  note: %s\n", ca.Note)
		}
	}
	return out.code()
}
