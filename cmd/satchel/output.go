package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
)

// withHint adds what to do next to the errors a user meets most.
func withHint(err error) string {
	switch {
	case errors.Is(err, imapremote.ErrAuth):
		return err.Error() + "; check imap.user and password_command (or password)"
	case errors.Is(err, imapremote.ErrConnect):
		return err.Error() + "; check imap.host, imap.port and imap.tls, and that the server is reachable"
	case errors.Is(err, satsync.ErrUIDValidityChanged):
		return err.Error()
	}
	return err.Error()
}

type jsonMailbox struct {
	Name         string `json:"name"`
	Local        string `json:"local"`
	Mode         string `json:"mode,omitempty"`
	Downloaded   int    `json:"downloaded"`
	Bytes        int64  `json:"bytes"`
	FlagsChanged int    `json:"flags_changed"`
	Removed      int    `json:"removed"`
	Held         int    `json:"held"`
	Error        string `json:"error,omitempty"`
	Safety       string `json:"safety,omitempty"`
}

type jsonAccount struct {
	Account   string        `json:"account"`
	Mode      string        `json:"mode,omitempty"`
	Seconds   float64       `json:"seconds"`
	Error     string        `json:"error,omitempty"`
	Mailboxes []jsonMailbox `json:"mailboxes"`
}

// printSyncResults prints one summary line per account (or, with
// --dry-run, each mailbox's plan), or the JSON document.
func printSyncResults(g *globals, results []satsync.Result, dryRun bool) {
	if g.json {
		doc := struct {
			Accounts []jsonAccount `json:"accounts"`
		}{Accounts: []jsonAccount{}}
		for _, r := range results {
			ja := jsonAccount{Account: r.Account, Mode: string(r.Mode), Seconds: r.Duration.Seconds(), Mailboxes: []jsonMailbox{}}
			if r.Err != nil {
				ja.Error = withHint(r.Err)
			}
			for _, m := range r.Mailboxes {
				jm := jsonMailbox{Name: m.Name, Local: m.Local, Mode: string(m.Mode), Downloaded: m.Downloaded, Bytes: m.Bytes, FlagsChanged: m.FlagsChanged, Removed: m.Removed, Held: m.Held}
				if m.Err != nil {
					jm.Error = withHint(m.Err)
				}
				if m.Safety != nil {
					jm.Safety = m.Safety.Error()
				}
				ja.Mailboxes = append(ja.Mailboxes, jm)
			}
			doc.Accounts = append(doc.Accounts, ja)
		}
		writeJSON(g, doc)
		return
	}
	for _, r := range results {
		if dryRun {
			for _, m := range r.Mailboxes {
				if m.Plan != nil {
					fmt.Fprint(g.stdout, m.Plan.String())
				}
				if m.Safety != nil {
					fmt.Fprintf(g.stdout, "  held back (%d): %s\n", m.Held, m.Safety)
				}
			}
			continue
		}
		if g.quiet || r.Err != nil {
			continue
		}
		var down, flags, removed, failed, held int
		var bytes int64
		for _, m := range r.Mailboxes {
			down += m.Downloaded
			bytes += m.Bytes
			flags += m.FlagsChanged
			removed += m.Removed
			if m.Err != nil {
				failed++
			}
			held += m.Held
		}
		fmt.Fprintf(g.stdout, "%s: %d mailboxes, %d downloaded (%s), %d flag updates, %d removed", r.Account, len(r.Mailboxes), down, humanBytes(bytes), flags, removed)
		if failed > 0 {
			fmt.Fprintf(g.stdout, ", %d failed", failed)
		}
		if held > 0 {
			fmt.Fprintf(g.stdout, ", %d held back by safety checks", held)
		}
		fmt.Fprintf(g.stdout, " in %s\n", r.Duration.Round(time.Millisecond))
	}
}

func writeJSON(g *globals, v any) {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
