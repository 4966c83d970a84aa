package main

// The notmuch tag sync, as the commands wire it: the account's notmuch
// keys turned into the engine's options, the notmuch adapter, and what
// sync and verify print about tags.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	gosync "sync"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
	"github.com/satchel-mail/satchel/sync/notmuch"
	"github.com/satchel-mail/satchel/sync/tagmap"
	"github.com/satchel-mail/satchel/sync/verify"
)

// tagKeywords is notmuch.keywords over the built-in pairs
// (tagmap.DefaultKeywords): a pair of the file replaces a built-in one
// with the same keyword (keywords are case-insensitive) or the same tag.
func tagKeywords(n config.Notmuch) map[string]string {
	out := maps.Clone(tagmap.DefaultKeywords)
	for kw, tag := range n.Keywords {
		for dkw, dtag := range tagmap.DefaultKeywords {
			if tagmap.Label(dkw) == tagmap.Label(kw) || dtag == tag {
				delete(out, dkw)
			}
		}
	}
	maps.Copy(out, n.Keywords)
	return out
}

// tagOptions is the engine's tag sync options for the account; nil when
// notmuch.enabled is off.
func tagOptions(acc config.Account) *satsync.TagOptions {
	if !acc.Notmuch.Enabled {
		return nil
	}
	return &satsync.TagOptions{Maildir: acc.Maildir, Keywords: tagKeywords(acc.Notmuch), Local: acc.Notmuch.LocalTags}
}

// checkTagMaps checks every account's notmuch.keywords as the tag sync
// will build its mapping, so that a bad pair is a configuration error
// with its line, before anything runs, whether notmuch is enabled or
// not. A pair that is wrong on its own is reported at its entry; one
// that clashes with another (a keyword or tag named twice) at the map.
func checkTagMaps(cfg *config.Config) error {
	for i, acc := range cfg.Accounts {
		n := acc.Notmuch
		if _, err := tagmap.New(tagKeywords(n), n.LocalTags); err == nil {
			continue
		} else {
			key := fmt.Sprintf("accounts[%d].notmuch.keywords", i)
			for _, kw := range slices.Sorted(maps.Keys(n.Keywords)) {
				if _, err1 := tagmap.New(map[string]string{kw: n.Keywords[kw]}, n.LocalTags); err1 != nil {
					return cfg.KeyError(fmt.Sprintf(`%s["%s"]`, key, kw), "%v", err1)
				}
			}
			return cfg.KeyError(key, "%v; each keyword and each tag may be named once (the built-in pair $Junk: spam included, unless a pair with its keyword or tag replaces it)", err)
		}
	}
	return nil
}

// tagDB is the account's notmuch database, with the --trace writer (nil
// without --trace) given each notmuch command run.
func tagDB(acc config.Account, trace io.Writer) *notmuch.DB {
	return notmuch.Open(notmuch.Options{Config: acc.Notmuch.Config, Trace: trace})
}

// wireTags turns the tag sync on in the engine's options and
// dependencies when the account has notmuch enabled: the index that
// records the tag sync is the engine's own.
func wireTags(acc config.Account, ix *store.Index, trace io.Writer, o *satsync.Options, deps *satsync.Deps) {
	if o.Tags = tagOptions(acc); o.Tags == nil {
		return
	}
	if acc.Gmail.Labels == "tags" {
		o.GmailLabels = &satsync.GmailLabelOptions{ScanEvery: acc.Gmail.LabelScanEvery, ReadOnly: acc.Gmail.ReadOnly}
	}
	deps.TagDB = tagDB(acc, trace)
	deps.TagIndex = ix
}

// reportTags prints, after an account's sync, the tag sync's failure and
// the mailboxes that refused keywords in this run, one line each (a
// refusal is remembered, so each is reported once). A dry run's refusals
// are in its plan instead.
func reportTags(g *globals, res satsync.Result, dryRun bool) {
	t := res.Tags
	if t == nil {
		return
	}
	if t.Err != nil {
		fmt.Fprintf(g.stderr, "satchel: %s: notmuch tags: %s\n", res.Account, withHint(t.Err))
	}
	if dryRun || g.quiet {
		return
	}
	for _, mb := range slices.Sorted(maps.Keys(t.Refused)) {
		fmt.Fprintf(g.stderr, "satchel: %s: %s: the server refused keywords %s: their tags stay local, and are not sent again\n",
			res.Account, mb, strings.Join(t.Refused[mb], " "))
	}
}

// serverKeywords is a verify.Remote that keeps the flags of every
// message it lists in the mailbox it examined, so that verify's tag
// comparison reads the server's keywords as verify found them, without
// fetching them again. Verify may use several connections at once.
type serverKeywords struct {
	mu    gosync.Mutex
	flags map[string]map[mail.UID]mail.Flags // mailbox → UID → flags
}

// wrap returns r, noting what it lists.
func (s *serverKeywords) wrap(r verify.Remote) verify.Remote {
	return &keywordRemote{Remote: r, s: s}
}

// get returns the flags of uid in mailbox, as verify listed them; false
// when verify did not list that mailbox or message.
func (s *serverKeywords) get(mailbox string, uid mail.UID) (mail.Flags, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.flags[mailbox][uid]
	return f, ok
}

type keywordRemote struct {
	verify.Remote
	s        *serverKeywords
	examined string
}

// Gmail and GmailIDs pass on what a deep verify asks of Gmail.
func (r *keywordRemote) Gmail() bool {
	g, ok := r.Remote.(interface{ Gmail() bool })
	return ok && g.Gmail()
}

func (r *keywordRemote) GmailIDs(ctx context.Context, uids []mail.UID) (map[mail.UID]uint64, error) {
	g, ok := r.Remote.(interface {
		GmailIDs(ctx context.Context, uids []mail.UID) (map[mail.UID]uint64, error)
	})
	if !ok {
		return nil, errors.New("the server connection cannot read Gmail message ids")
	}
	return g.GmailIDs(ctx, uids)
}

func (r *keywordRemote) Examine(ctx context.Context, name string) (mail.MailboxStatus, error) {
	r.examined = ""
	st, err := r.Remote.Examine(ctx, name)
	if err == nil {
		r.examined = name
	}
	return st, err
}

func (r *keywordRemote) Since(ctx context.Context, from mail.UID) ([]mail.RemoteMessage, error) {
	msgs, err := r.Remote.Since(ctx, from)
	if err != nil || r.examined == "" {
		return msgs, err
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.flags == nil {
		r.s.flags = map[string]map[mail.UID]mail.Flags{}
	}
	m := r.s.flags[r.examined]
	if m == nil {
		m = map[mail.UID]mail.Flags{}
		r.s.flags[r.examined] = m
	}
	for _, msg := range msgs {
		m[msg.UID] = msg.Flags
	}
	return msgs, nil
}

// verifyTags compares the account's notmuch tags with the server's
// keywords as verify listed them, for the mailboxes verify listed.
func verifyTags(ctx context.Context, acc config.Account, ix *store.Index, trace io.Writer, kw *serverKeywords) ([]satsync.TagDifference, error) {
	o := tagOptions(acc)
	mailboxes, err := ix.Mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	var gmail *satsync.GmailLabelOptions
	if acc.Gmail.Labels == "tags" {
		gmail = &satsync.GmailLabelOptions{ReadOnly: acc.Gmail.ReadOnly}
	}
	ds, err := satsync.VerifyTags(ctx, *o, gmail, tagDB(acc, trace), ix, mailboxes, kw.get)
	if err != nil {
		return nil, fmt.Errorf("notmuch tags: %w", err)
	}
	return ds, nil
}
