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
	// Compression is "on" when the connection is compressed with
	// COMPRESS=DEFLATE (RFC 4978), "off" otherwise. Printed, not yet in
	// the JSON document: README.md's "JSON output" section describes
	// every field, and this one is not there yet.
	Compression string `json:"compression,omitempty"`
	// Namespaces as NAMESPACE reports them (RFC 2342); nil without it.
	Namespaces *checkNamespaces `json:"namespaces,omitempty"`
	// Prefix is the personal prefix satchel uses (imap.prefix or NAMESPACE).
	Prefix *string `json:"prefix,omitempty"`
	// Gmail is the account's gmail.labels ("folders" or "tags") where the
	// server has Gmail's extensions (X-GM-EXT-1); "" elsewhere.
	Gmail string `json:"gmail,omitempty"`
	Note  string `json:"note,omitempty"`
	Error string `json:"error,omitempty"`
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
			ca.Compression = "off"
			if c.Compressed() {
				ca.Compression = "on"
			}
			if c.Has("QRESYNC") && c.Mode() != mail.ModeQResync {
				ca.Note = "the server offers QRESYNC but declined to enable it; satchel uses CONDSTORE"
			}
			switch {
			case c.Gmail():
				ca.Gmail = acc.Gmail.Labels
			case acc.Gmail.Labels == "tags":
				ca.Note = "gmail.labels is tags, but the server is not Gmail (no X-GM-EXT-1): sync fails; set labels: folders"
			}
			if ns, err := c.Namespaces(ctx); err == nil {
				ca.Namespaces, ca.Prefix = namespacesOf(ns, acc.IMAP.Prefix)
			} else {
				fmt.Fprintf(g.stderr, "satchel: %s: %v\n", acc.Name, err)
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
		fmt.Fprintf(g.stdout, "%s (%s): OK\n  capabilities: %s\n  sync mode: %s\n  compression: %s\n", ca.Account, ca.Server, strings.Join(ca.Capabilities, " "), ca.Mode, ca.Compression)
		if ns := ca.Namespaces; ns != nil {
			fmt.Fprintf(g.stdout, "  namespaces: personal %s; other users %s; shared %s\n", namespaceList(ns.Personal), namespaceList(ns.Other), namespaceList(ns.Shared))
		} else {
			fmt.Fprintf(g.stdout, "  namespaces: not reported (no NAMESPACE)\n")
		}
		if ca.Prefix != nil {
			fmt.Fprintf(g.stdout, "  folder names: the prefix %q is left out (imap.prefix sets it)\n", *ca.Prefix)
		}
		switch ca.Gmail {
		case "folders":
			fmt.Fprintf(g.stdout, "  gmail: labels as folders (gmail.labels); a message in several is downloaded once, the other copies hard-linked\n")
		case "tags":
			fmt.Fprintf(g.stdout, "  gmail: labels as notmuch tags (gmail.labels); All Mail, the Trash and Spam are synced\n")
		}
		if ca.Note != "" {
			fmt.Fprintf(g.stdout, "  note: %s\n", ca.Note)
		}
	}
	return out.code()
}

type checkNamespaces struct {
	Personal []checkNamespace `json:"personal"`
	Other    []checkNamespace `json:"other"`
	Shared   []checkNamespace `json:"shared"`
}

type checkNamespace struct {
	Prefix    string `json:"prefix"`
	Separator string `json:"separator"` // "" where the namespace has no hierarchy
}

// namespacesOf describes NAMESPACE's answer, and the personal prefix a
// sync leaves out of folder names: the configured one, else the first
// personal namespace's (nil where there is none to leave out).
func namespacesOf(ns mail.Namespaces, configured *string) (*checkNamespaces, *string) {
	conv := func(l []mail.Namespace) []checkNamespace {
		out := []checkNamespace{}
		for _, n := range l {
			sep := ""
			if n.Delim != 0 {
				sep = string(n.Delim)
			}
			out = append(out, checkNamespace{Prefix: n.Prefix, Separator: sep})
		}
		return out
	}
	prefix := configured
	if prefix == nil && len(ns.Personal) > 0 && ns.Personal[0].Prefix != "" {
		prefix = &ns.Personal[0].Prefix
	}
	if !ns.Known {
		return nil, prefix
	}
	return &checkNamespaces{Personal: conv(ns.Personal), Other: conv(ns.Other), Shared: conv(ns.Shared)}, prefix
}

// namespaceList writes namespaces as `"INBOX." (separator ".")`.
func namespaceList(l []checkNamespace) string {
	if len(l) == 0 {
		return "none"
	}
	var parts []string
	for _, n := range l {
		sep := "no hierarchy"
		if n.Separator != "" {
			sep = fmt.Sprintf("separator %q", n.Separator)
		}
		parts = append(parts, fmt.Sprintf("%q (%s)", n.Prefix, sep))
	}
	return strings.Join(parts, ", ")
}
