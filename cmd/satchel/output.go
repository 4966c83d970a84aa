package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/mail"
)

// withHint is an error as the user reads it: what happened, then what to
// do next. An error that already says what to do (after "; ", as satchel's
// own errors do) is left as it is.
func withHint(err error) string {
	msg := err.Error()
	var ce *config.Error
	switch {
	case errors.Is(err, context.Canceled):
		// The canceled operation adds nothing the user can act on.
		return "interrupted; what was synced is kept, and the next sync carries on from there"
	case errors.Is(err, mail.ErrOverQuota):
		// The account stopped (sync.ErrOverQuota's story): one line for it.
		return "stopped: the server says the account is over its bandwidth or command limit (Gmail allows about 2.5 GB of downloads a day); nothing was lost, and the next sync resumes where this one stopped (" + msg + ")"
	case hinted(msg), errors.As(err, new(usageError)):
		return msg
	case errors.Is(err, imapremote.ErrAuth):
		return msg + "; check imap.user and the password (password_command or password)"
	case errors.Is(err, imapremote.ErrConnect), errors.Is(err, imapremote.ErrTimeout):
		return msg + "; " + connectHint(err)
	case errors.As(err, &ce) && errors.Is(err, fs.ErrNotExist):
		return msg + "; create it (config.example.yaml documents every key), or name another with --config"
	case errors.Is(err, store.ErrTooNew):
		return msg + "; use that satchel, or a newer one than this"
	case errors.Is(err, syscall.ENOSPC):
		return msg + "; the disk is full: free some space and sync again (nothing half-written is kept)"
	case errors.Is(err, fs.ErrPermission):
		return msg + "; check the permissions of that path (accounts.maildir, accounts.index)"
	case errors.Is(err, mail.ErrTransient):
		return msg + "; the connection failed: what was synced is kept, and the next sync carries on from there"
	}
	return msg
}

// hinted reports whether an error message already says what to do.
func hinted(msg string) bool {
	return strings.Contains(msg, "; ")
}

// connectHint says what to check when the server could not be reached or
// spoke something else than expected.
func connectHint(err error) string {
	var dns *net.DNSError
	var rec tls.RecordHeaderError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var badCert x509.CertificateInvalidError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return "check imap.host: there is no such host"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "check imap.host and imap.port (993 with tls: implicit, 143 with tls: starttls), and that the server is running"
	case errors.As(err, &rec):
		return "the server does not speak TLS on that port: with port 143 use tls: starttls, or check imap.port"
	case errors.As(err, &unknownCA), errors.As(err, &badHost), errors.As(err, &badCert):
		return "the server's certificate is not trusted: check imap.host is the name on it, or pin the server's key with imap.tls_fingerprint"
	case errors.Is(err, imapremote.ErrTimeout), errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, context.DeadlineExceeded):
		return "the server did not answer in time: check imap.host, imap.port and the network, or try again later"
	}
	return "check imap.host, imap.port and imap.tls, and that the server is reachable"
}

// loginError gives a failed login the hint that fits the account's
// configuration: the token command, the password command or the
// password.
func loginError(acc config.Account, err error) error {
	if !errors.Is(err, imapremote.ErrAuth) || hinted(err.Error()) {
		return err
	}
	var hint string
	switch {
	case acc.IMAP.OAuth2TokenCommand != "":
		hint = "check imap.user, and that oauth2_token_command prints a valid access token for it"
	case acc.IMAP.PasswordCommand != "":
		hint = "check imap.user, and that password_command prints its password"
	default:
		hint = "check imap.user and imap.password"
	}
	return fmt.Errorf("%w; %s", err, hint)
}

// The JSON documents below are a contract: their fields are documented
// in README.md ("JSON output") and tested against that description. Add
// fields there when adding them here; never rename one.

// jsonSync is what sync --json prints.
type jsonSync struct {
	DryRun   bool          `json:"dry_run"`
	Accounts []jsonAccount `json:"accounts"`
}

type jsonAccount struct {
	Account   string        `json:"account"`
	Mode      string        `json:"mode,omitempty"`
	Seconds   float64       `json:"seconds"`
	Error     string        `json:"error,omitempty"`
	Mailboxes []jsonMailbox `json:"mailboxes"`
}

type jsonMailbox struct {
	Name         string      `json:"name"`
	Local        string      `json:"local"`
	Mode         string      `json:"mode,omitempty"`
	Unchanged    bool        `json:"unchanged"`
	Downloaded   int         `json:"downloaded"`
	Bytes        int64       `json:"bytes"`
	Uploaded     int         `json:"uploaded"`
	FlagsChanged int         `json:"flags_changed"`
	FlagsPushed  int         `json:"flags_pushed"`
	Removed      int         `json:"removed"`
	Deleted      int         `json:"deleted"`
	Moved        int         `json:"moved"`
	Deferred     int         `json:"deferred"`
	Conflicts    int         `json:"conflicts"`
	Reassociated int         `json:"reassociated"`
	Linked       int         `json:"linked,omitempty"`
	Held         int         `json:"held"`
	Created      bool        `json:"created,omitempty"`
	Folder       *jsonFolder `json:"folder,omitempty"`
	Error        string      `json:"error,omitempty"`
	Safety       string      `json:"safety,omitempty"`
	Plan         *jsonPlan   `json:"plan,omitempty"`
}

// jsonFolder is what became of a mailbox as a whole.
type jsonFolder struct {
	Change string `json:"change"`
	Action string `json:"action"`
	From   string `json:"from,omitempty"`
	Detail string `json:"detail"`
}

// jsonPlan counts a mailbox's plan, as --dry-run prints it.
type jsonPlan struct {
	Download      int   `json:"download"`
	DownloadBytes int64 `json:"download_bytes"`
	Upload        int   `json:"upload"`
	LocalFlags    int   `json:"local_flags"`
	ServerFlags   int   `json:"server_flags"`
	RemoveLocal   int   `json:"remove_local"`
	DeleteServer  int   `json:"delete_server"`
	Move          int   `json:"move"`
}

func newJSONSync(results []satsync.Result, dryRun bool) jsonSync {
	doc := jsonSync{DryRun: dryRun, Accounts: []jsonAccount{}}
	for _, r := range results {
		ja := jsonAccount{Account: r.Account, Mode: string(r.Mode), Seconds: r.Duration.Seconds(), Mailboxes: []jsonMailbox{}}
		if r.Err != nil {
			ja.Error = withHint(r.Err)
		}
		for _, m := range r.Mailboxes {
			jm := jsonMailbox{
				Name: m.Name, Local: m.Local, Mode: string(m.Mode), Unchanged: m.Unchanged,
				Downloaded: m.Downloaded, Bytes: m.Bytes, Uploaded: m.Uploaded,
				FlagsChanged: m.FlagsChanged, FlagsPushed: m.FlagsPushed,
				Removed: m.Removed, Deleted: m.Deleted, Moved: m.Moved, Deferred: m.Deferred,
				Conflicts: m.Conflicts, Reassociated: m.Reassociated, Linked: m.Linked, Held: m.Held, Created: m.Created,
			}
			if f := m.Folder; f != nil {
				jm.Folder = &jsonFolder{Change: string(f.Change), Action: string(f.Action), From: f.From, Detail: f.Detail}
			}
			if m.Err != nil {
				jm.Error = withHint(m.Err)
			}
			if m.Safety != nil {
				jm.Safety = m.Safety.Error()
			}
			if dryRun && m.Plan != nil {
				p := m.Plan
				var bytes int64
				for _, d := range p.Download {
					bytes += d.Size
				}
				jm.Plan = &jsonPlan{
					Download: len(p.Download) + len(p.Adopt), DownloadBytes: bytes, Upload: len(p.Upload),
					LocalFlags: len(p.LocalFlags), ServerFlags: len(p.RemoteFlags),
					RemoveLocal: len(p.RemoveLocal), DeleteServer: len(p.DeleteRemote), Move: len(p.MoveOut),
				}
			}
			ja.Mailboxes = append(ja.Mailboxes, jm)
		}
		doc.Accounts = append(doc.Accounts, ja)
	}
	return doc
}

// printSyncResults prints what a sync did: with --json the JSON document,
// with --dry-run each mailbox's plan (both always: they are the answer
// asked for), otherwise one summary line per account when showSummary
// says so (on a terminal or with -v; never with -q).
func printSyncResults(g *globals, results []satsync.Result, dryRun bool) {
	if g.json {
		writeJSON(g, newJSONSync(results, dryRun))
		return
	}
	for _, r := range results {
		printSyncResult(g, r, dryRun)
	}
}

// printSyncResult prints one account's part of printSyncResults' text.
func printSyncResult(g *globals, r satsync.Result, dryRun bool) {
	switch {
	case g.json:
	case dryRun:
		for _, m := range r.Mailboxes {
			if m.Folder != nil {
				fmt.Fprintf(g.stdout, "%s: %s\n", m.Name, m.Folder)
			}
			if m.Plan != nil {
				fmt.Fprint(g.stdout, m.Plan.String())
			}
			if m.Safety != nil {
				fmt.Fprintf(g.stdout, "  held back (%d): %s\n", m.Held, m.Safety)
			}
		}
		fmt.Fprint(g.stdout, r.Tags.String())
	case g.showSummary() && r.Err == nil:
		printSummary(g.stdout, r)
	}
}

// printSummary prints an account's summary line:
//
//	personal: 6 mailboxes, 11 downloaded (12.3 KiB), 1 uploaded, 3 flag updates, 0 removed locally, 1 deleted on the server, 0 moved, 0 conflicts in 1.2s
//
// followed by what failed or was held back, when anything was.
func printSummary(w io.Writer, r satsync.Result) {
	var t satsync.MailboxResult
	var failed int
	for _, m := range r.Mailboxes {
		t.Downloaded += m.Downloaded
		t.Linked += m.Linked
		t.Bytes += m.Bytes
		t.Uploaded += m.Uploaded
		t.FlagsChanged += m.FlagsChanged + m.FlagsPushed
		t.Removed += m.Removed
		t.Deleted += m.Deleted
		t.Moved += m.Moved
		t.Conflicts += m.Conflicts
		t.Deferred += m.Deferred
		t.Held += m.Held
		if m.Err != nil {
			failed++
		}
	}
	fmt.Fprintf(w, "%s: %d mailboxes, %d downloaded (%s), %d uploaded, %d flag updates, %d removed locally, %d deleted on the server, %d moved, %d conflicts",
		r.Account, len(r.Mailboxes), t.Downloaded, humanBytes(t.Bytes), t.Uploaded, t.FlagsChanged, t.Removed, t.Deleted, t.Moved, t.Conflicts)
	if t.Linked > 0 {
		fmt.Fprintf(w, ", %d Gmail copies linked", t.Linked)
	}
	if failed > 0 {
		fmt.Fprintf(w, ", %d mailboxes failed", failed)
	}
	if t.Held > 0 {
		fmt.Fprintf(w, ", %d held back by safety checks", t.Held)
	}
	if t.Deferred > 0 {
		fmt.Fprintf(w, ", %d left flagged \\Deleted on the server", t.Deferred)
	}
	fmt.Fprintf(w, " in %s\n", r.Duration.Round(time.Millisecond))
	for _, m := range r.Mailboxes {
		if m.Folder != nil {
			fmt.Fprintf(w, "  %s: %s\n", m.Name, m.Folder)
		}
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
