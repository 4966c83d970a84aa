package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Account syncs one account: every selected mailbox, one after another
// over one connection. One mailbox failing does not stop the others; its
// error is in its MailboxResult.
func Account(ctx context.Context, opts Options, deps Deps) Result {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	start := opts.Now()
	res := Result{Account: opts.Account}
	defer func() { res.Duration = opts.Now().Sub(start) }()

	r := &runner{opts: opts, deps: deps, log: opts.Logger.With("account", opts.Account)}
	defer r.closeRemote()
	remote, err := r.remote(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	res.Mode = remote.Mode()
	list, err := remote.List(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	boxes, err := r.selectMailboxes(list)
	if err != nil {
		res.Err = err
		return res
	}
	for _, b := range boxes {
		if ctx.Err() != nil {
			res.Err = ctx.Err()
			return res
		}
		if b.NoSelect {
			if !opts.DryRun {
				if err := deps.MkdirAll(b.local); err != nil {
					res.Mailboxes = append(res.Mailboxes, MailboxResult{Name: b.Name, Local: b.local, Err: err})
				}
			}
			continue
		}
		mr := r.mailbox(ctx, b)
		if mr.Err != nil {
			r.log.Error("mailbox failed", "mailbox", b.Name, "err", mr.Err)
			if !errors.Is(mr.Err, ErrUIDValidityChanged) {
				// The connection may be mid-command: start afresh.
				r.closeRemote()
			}
		}
		res.Mailboxes = append(res.Mailboxes, mr)
	}
	if ctx.Err() != nil {
		res.Err = ctx.Err()
	}
	return res
}

type runner struct {
	opts Options
	deps Deps
	log  *slog.Logger
	conn Remote
}

func (r *runner) remote(ctx context.Context) (Remote, error) {
	if r.conn != nil {
		return r.conn, nil
	}
	c, err := r.deps.Connect(ctx)
	if err != nil {
		return nil, err
	}
	r.conn = c
	return c, nil
}

func (r *runner) closeRemote() {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

// mailboxEntry is a listed mailbox with its local folder.
type mailboxEntry struct {
	mail.RemoteMailbox
	local string
}

// selectMailboxes filters the listing by the include, exclude and only
// rules and maps each mailbox to its local folder, refusing two that
// would share one.
func (r *runner) selectMailboxes(list []mail.RemoteMailbox) ([]mailboxEntry, error) {
	include, err := compileGlobs(r.opts.Include)
	if err != nil {
		return nil, err
	}
	exclude, err := compileGlobs(r.opts.Exclude)
	if err != nil {
		return nil, err
	}
	var out []mailboxEntry
	byLocal := map[string]string{}
	for _, m := range list {
		if !matchAny(include, m) || matchAny(exclude, m) {
			continue
		}
		if len(r.opts.Only) > 0 && !slices.ContainsFunc(r.opts.Only, func(n string) bool { return sameMailbox(n, m.Name) }) {
			continue
		}
		levels := m.Path()
		if m.Name == "INBOX" {
			levels = []string{"INBOX"}
		}
		rel, err := r.deps.LocalPath(levels)
		if err != nil {
			return nil, fmt.Errorf("mailbox %q: %w", m.Name, err)
		}
		if other, ok := byLocal[strings.ToLower(rel)]; ok {
			// Compared case-insensitively: the Maildir may live on a
			// case-insensitive file system.
			return nil, fmt.Errorf("%w: %q and %q (%s); exclude one of them", ErrNameCollision, other, m.Name, rel)
		}
		byLocal[strings.ToLower(rel)] = m.Name
		out = append(out, mailboxEntry{RemoteMailbox: m, local: rel})
	}
	for _, n := range r.opts.Only {
		if !slices.ContainsFunc(out, func(e mailboxEntry) bool { return sameMailbox(n, e.Name) }) {
			return nil, fmt.Errorf("mailbox %q: not on the server (or excluded by the configuration)", n)
		}
	}
	slices.SortFunc(out, func(a, b mailboxEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func sameMailbox(a, b string) bool {
	if strings.EqualFold(a, "INBOX") {
		return strings.EqualFold(b, "INBOX")
	}
	return a == b
}

type glob struct {
	re *regexp.Regexp
	// delimiter-dependent patterns compile per delimiter
	pattern string
}

func compileGlobs(pats []string) ([]glob, error) {
	var out []glob
	for _, p := range pats {
		if _, err := globRegexp(p, '/'); err != nil {
			return nil, fmt.Errorf("mailbox pattern %q: %w", p, err)
		}
		out = append(out, glob{pattern: p})
	}
	return out, nil
}

// globRegexp turns a mailbox pattern into a regular expression: "*" is any
// run of characters, "%" any run within one hierarchy level (as in LIST,
// RFC 9051 §6.3.9), "?" one character; everything else is literal.
func globRegexp(p string, delim rune) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for _, c := range p {
		switch c {
		case '*':
			b.WriteString(".*")
		case '%':
			if delim == 0 {
				b.WriteString(".*")
			} else {
				b.WriteString("[^" + regexp.QuoteMeta(string(delim)) + "]*")
			}
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

func matchAny(gs []glob, m mail.RemoteMailbox) bool {
	for _, g := range gs {
		re, err := globRegexp(g.pattern, m.Delim)
		if err != nil {
			continue
		}
		if re.MatchString(m.Name) || m.Name == "INBOX" && strings.EqualFold(g.pattern, "INBOX") {
			return true
		}
	}
	return false
}
