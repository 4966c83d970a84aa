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

// Account syncs one account in three phases over one connection: learn
// what changed on both sides of every selected mailbox, plan all of them
// together (so a message moved between folders is a move), then apply
// each mailbox's plan. One mailbox failing does not stop the others; its
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
	entries, err := r.selectMailboxes(list)
	if err != nil {
		res.Err = err
		return res
	}

	// Learn.
	var boxes, failed []*box
	results := make([]*MailboxResult, 0, len(entries))
	for _, e := range entries {
		if ctx.Err() != nil {
			res.Err = ctx.Err()
			return res
		}
		mr := &MailboxResult{Name: e.Name, Local: e.rel}
		if e.err != nil {
			mr.Err = e.err
			results = append(results, mr)
			continue
		}
		if e.NoSelect {
			if !opts.DryRun && opts.pulls() {
				if err := deps.MkdirAll(e.rel); err != nil {
					mr.Err = err
					results = append(results, mr)
				}
			}
			continue
		}
		results = append(results, mr)
		b := &box{mailboxEntry: e, res: mr}
		remote, err := r.remote(ctx)
		if err == nil {
			err = r.learn(ctx, remote, b)
		}
		mr.Mode = b.mode
		if err != nil {
			r.fail(b, err)
			if r.learnLocal(ctx, b) == nil {
				failed = append(failed, b)
			}
			continue
		}
		boxes = append(boxes, b)
	}

	// Plan.
	pl := &planner{opts: opts, log: r.log, info: map[*box]map[string]mail.LocalInfo{}}
	if err := pl.planAll(boxes, failed); err != nil {
		res.Err = err
		return res
	}
	boxes = guardPlans(boxes, opts, r.log)

	// Apply.
	for _, b := range boxes {
		b.res.Plan = b.plan
		if opts.DryRun {
			continue
		}
		if ctx.Err() != nil {
			res.Err = ctx.Err()
			break
		}
		remote, err := r.remote(ctx)
		if err == nil {
			err = r.apply(ctx, remote, b)
		}
		if err == nil {
			err = r.finish(ctx, b)
		}
		if err != nil {
			r.fail(b, err)
		}
	}
	for _, mr := range results {
		res.Mailboxes = append(res.Mailboxes, *mr)
	}
	if ctx.Err() != nil {
		res.Err = ctx.Err()
	}
	return res
}

// fail records a mailbox's error. Unless the error leaves the connection
// in a known state, the next mailbox starts on a fresh one.
func (r *runner) fail(b *box, err error) {
	b.res.Err = err
	r.log.Error("mailbox failed", "mailbox", b.Name, "err", err)
	if !errors.Is(err, ErrUIDValidityChanged) {
		r.closeRemote()
	}
}

// finish records the mailbox's server state as of the learn phase, now
// that everything it covers is committed (RFC 7162 §3.1: a later
// CHANGEDSINCE from an older value would otherwise miss what failed).
func (r *runner) finish(ctx context.Context, b *box) error {
	mb := b.mb
	mb.UIDNext = b.st.UIDNext
	mb.HighestModSeq = b.st.HighestModSeq
	mb.Messages = b.st.Messages
	mb.Mode = b.mode
	mb.LastSync = r.opts.Now()
	return r.deps.Index.SaveMailbox(ctx, mb)
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
	c, err := r.connect(ctx)
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

// mailboxEntry is a listed mailbox with its local folder, or the reason
// it cannot have one.
type mailboxEntry struct {
	mail.RemoteMailbox
	rel string
	err error
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
			// That mailbox fails, not the account. The name is cut: it
			// may be thousands of bytes long.
			out = append(out, mailboxEntry{RemoteMailbox: m, err: fmt.Errorf("mailbox %.80q (%d bytes): %w", m.Name, len(m.Name), err)})
			continue
		}
		if other, ok := byLocal[strings.ToLower(rel)]; ok {
			if other == m.Name {
				continue // listed twice: one mailbox
			}
			// Compared case-insensitively: the Maildir may live on a
			// case-insensitive file system.
			return nil, fmt.Errorf("%w: %q and %q (%s); exclude one of them", ErrNameCollision, other, m.Name, rel)
		}
		byLocal[strings.ToLower(rel)] = m.Name
		out = append(out, mailboxEntry{RemoteMailbox: m, rel: rel})
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
