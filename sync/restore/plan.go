package restore

// The restore plan: which mailbox each backup folder goes back to, and
// where its files land in the target account.

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// planner decides where a restore puts each folder: which mailbox of the
// target server, and which folder of the target Maildir.
type planner struct {
	src, dst Account
	// only names the mailboxes to restore (--mailbox); none: all.
	only []string
	// names is how a sync of the target names folders (see Deps.FullNames).
	names   satsync.Options
	inPlace bool
	// sameFolder reports whether two folders of the target Maildir are
	// one directory; nil compares their paths.
	sameFolder func(a, b string) bool
}

// plan maps the source's folders to mailboxes as a sync of the source
// names them, and keeps those the target's configuration and p.only
// select, each with the folder a sync of the target gives its mailbox
// (see place). A folder is the mailbox its path decodes to
// in the source's layout, unless the source's mailboxes.map names it:
// then it is the mailbox of the map entry's key (see mappedMailbox), and
// another folder that decodes to that mailbox is skipped. A folder that
// cannot be named, or that is the same mailbox as another, is kept with
// its error: it fails, alone.
func (p planner) plan(froms []string, list []mail.RemoteMailbox) ([]*Folder, error) {
	delim := listDelim(list)
	keys := mapFolders(p.src)
	// The folders the map names first: each is its mailbox's folder, the
	// one that stays when two folders are the same mailbox.
	order := slices.Clone(froms)
	slices.SortStableFunc(order, func(a, b string) int {
		_, ma := keys[a]
		_, mb := keys[b]
		switch {
		case ma && !mb:
			return -1
		case mb && !ma:
			return 1
		}
		return 0
	})
	byName := map[string]*Folder{}
	var named, bad []*Folder
	for _, rel := range order {
		f := &Folder{From: rel}
		var err error
		if key, ok := keys[rel]; ok {
			f.Mailbox, f.Fallback, err = mappedMailbox(p.src, list, key, rel, delim, p.names)
		} else {
			f.Mailbox, err = decodedMailbox(p.src.Layout, rel, delim, p.names)
		}
		if err != nil {
			f.Err = fmt.Errorf("folder %s cannot be named on the server: %w; skipped", FolderLabel(rel), err)
			bad = append(bad, f)
			continue
		}
		if other, ok := byName[satsync.CanonMailbox(f.Mailbox)]; ok {
			f.Err = fmt.Errorf("folder %s is the same mailbox as folder %s; skipped", FolderLabel(rel), FolderLabel(other.From))
			if other.Fallback == "" && keys[other.From] != "" {
				f.Err = fmt.Errorf("folder %s is mailbox %q, which the account's mailboxes.map gives folder %s; skipped", FolderLabel(rel), f.Mailbox, FolderLabel(other.From))
			}
			bad = append(bad, f)
			continue
		}
		byName[satsync.CanonMailbox(f.Mailbox)] = f
		named = append(named, f)
	}
	for _, n := range p.only {
		if _, ok := byName[satsync.CanonMailbox(n)]; !ok {
			return nil, fmt.Errorf("%q: %w", n, ErrUnknownMailbox)
		}
	}
	out, _, err := p.place(named, list, p.only)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(bad, func(a, b *Folder) int { return strings.Compare(a.From, b.From) })
	if len(p.only) == 0 {
		out = append(out, bad...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the account's mailboxes.include and exclude select none of the Maildir's folders", ErrNothing)
	}
	return out, nil
}

// place keeps the folders whose mailboxes the target's include,
// exclude and only rules select, and gives each the folder a sync of the
// target gives its mailbox: where the target's mailboxes.map (by name, or
// by a special-use attribute the listing shows the mailbox with) and
// layout put it. The selection runs over the whole listing as well, so
// that two mailboxes that would share a folder fail the restore as they
// would fail a sync (sync.ErrNameCollision). In place, a folder whose
// mailbox the account syncs with another folder fails: a sync would not
// upload its files. The result is sorted by mailbox name; levels are the
// folders of the listed \Noselect levels above the folders' mailboxes,
// which a sync of the target makes as plain directories.
func (p planner) place(folders []*Folder, list []mail.RemoteMailbox, only []string) (out []*Folder, levels []string, err error) {
	delim := listDelim(list)
	input := slices.Clone(list)
	byName := map[string]*Folder{}
	for _, f := range folders {
		byName[satsync.CanonMailbox(f.Mailbox)] = f
		i := slices.IndexFunc(input, func(m mail.RemoteMailbox) bool { return satsync.SameMailbox(m.Name, f.Mailbox) })
		if i < 0 {
			input = append(input, mail.RemoteMailbox{Name: f.Mailbox, Delim: delim})
			continue
		}
		// A \Noselect level is created as a mailbox.
		input[i].NoSelect = false
	}
	o := p.names
	o.Include, o.Exclude, o.Only, o.Map = p.dst.Include, p.dst.Exclude, only, p.dst.Map
	sel, err := satsync.SelectMailboxes(input, o, p.dst.Layout.Encode)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range sel {
		f, ok := byName[satsync.CanonMailbox(s.Name)]
		if !ok {
			// A mailbox of the server that the backup has no folder of.
			// A sync makes the folder of a level above a restored one
			// (where mailboxes.map moves the restored one out of it).
			if s.NoSelect && s.Err == nil && s.Delim != 0 && slices.ContainsFunc(folders, func(f *Folder) bool {
				return strings.HasPrefix(f.Mailbox, s.Name+string(s.Delim))
			}) {
				levels = append(levels, s.Local)
			}
			continue
		}
		f.To, f.Err = s.Local, s.Err
		// Compared as directories: on a case-insensitive file system,
		// inbox is the folder INBOX.
		if f.Err == nil && p.inPlace && f.To != f.From && !p.same(f.From, f.To) {
			f.Err = fmt.Errorf("folder %s is mailbox %q, which this account syncs with folder %s (mailboxes.map, layout); move its files there, or restore it with --to to another account; skipped",
				FolderLabel(f.From), f.Mailbox, FolderLabel(f.To))
		}
		out = append(out, f)
	}
	return out, levels, nil
}

// same reports whether two folders of the target Maildir are one.
func (p planner) same(a, b string) bool {
	if p.sameFolder == nil {
		return a == b
	}
	return p.sameFolder(a, b)
}

// replace places the folders again by the server's listing once
// the restore has created their mailboxes: a server may give a mailbox it
// creates a special-use attribute (Dovecot's special_use for a name),
// which the target's mailboxes.map and exclude rules act on. A folder the
// listing no longer selects fails. It returns the folders of the \Noselect
// levels above the folders' mailboxes (see place).
func (p planner) replace(folders []*Folder, list []mail.RemoteMailbox) ([]string, error) {
	var ok []*Folder
	for _, f := range folders {
		if f.Err == nil {
			ok = append(ok, f)
		}
	}
	if len(ok) == 0 {
		return nil, nil
	}
	// The --mailbox names whose folders failed are left out: they need
	// not be on the server.
	var keep []string
	for _, n := range p.only {
		if slices.ContainsFunc(ok, func(f *Folder) bool { return satsync.SameMailbox(f.Mailbox, n) }) {
			keep = append(keep, n)
		}
	}
	sel, levels, err := p.place(ok, list, keep)
	if err != nil {
		return nil, err
	}
	for _, f := range ok {
		if !slices.Contains(sel, f) {
			f.Err = fmt.Errorf("once created, mailbox %q is one the account's mailboxes.include and exclude leave out (the server gave it a special-use attribute?); skipped", f.Mailbox)
		}
	}
	return levels, nil
}

// listDelim is the server's hierarchy delimiter, as its listing shows it:
// "/" when it shows none.
func listDelim(list []mail.RemoteMailbox) rune {
	for _, m := range list {
		if m.Delim != 0 {
			return m.Delim
		}
	}
	return '/'
}

// decodedMailbox is the mailbox a folder's path decodes to in layout: its
// levels joined with the server's delimiter, which none of them may hold.
func decodedMailbox(layout Layout, rel string, delim rune, names satsync.Options) (string, error) {
	levels, err := layout.Decode(rel)
	if err != nil {
		return "", err
	}
	return satsync.MailboxOfFolder(levels, delim, names)
}

// mapFolders inverts an account's mailboxes.map: the folder that each
// entry's local name has in the account's layout, to the entry's key (a
// remote name or a special-use attribute). Where two entries give one
// folder (a sync refuses them both), a remote name wins over an
// attribute, as it does in a sync, then the first key in byte order.
func mapFolders(acc Account) map[string]string {
	keys := slices.Sorted(maps.Keys(acc.Map))
	slices.SortStableFunc(keys, func(a, b string) int {
		switch sa, sb := isSpecialUseKey(a), isSpecialUseKey(b); {
		case !sa && sb:
			return -1
		case sa && !sb:
			return 1
		}
		return 0
	})
	out := map[string]string{}
	for _, key := range keys {
		rel, err := acc.Layout.Encode(strings.Split(acc.Map[key], "/"))
		if err != nil {
			continue // a sync fails that mailbox: it has no folder
		}
		if _, ok := out[rel]; !ok {
			out[rel] = key
		}
	}
	return out
}

// isSpecialUseKey reports whether a mailboxes.map key is a special-use
// attribute: the configuration takes a key with a leading backslash only
// as one of RFC 6154 §2, spelled as the RFC does.
func isSpecialUseKey(key string) bool { return strings.HasPrefix(key, `\`) }

// mappedMailbox is the mailbox of the folder rel, which the source's
// mailboxes.map names under key: the key itself when it is a remote name;
// for a special-use attribute (RFC 6154 §2), the mailbox the target server
// lists with that attribute and that a sync with the source's map places
// in rel (not one whose own name the map keys: a remote name wins over an
// attribute). When the server lists no such mailbox, the folder is
// restored under its local name, the mailbox its path decodes to, and
// fallback is the attribute; when it lists several, the folder fails.
func mappedMailbox(src Account, list []mail.RemoteMailbox, key, rel string, delim rune, names satsync.Options) (name, fallback string, err error) {
	if !isSpecialUseKey(key) {
		return key, "", nil
	}
	var hits []string
	for _, m := range list {
		if m.NoSelect || !m.HasAttr(key) {
			continue
		}
		if at, ok := syncFolder(src, m, names); ok && at == rel {
			hits = append(hits, m.Name)
		}
	}
	switch len(hits) {
	case 0:
		name, err := decodedMailbox(src.Layout, rel, delim, names)
		return name, key, err
	case 1:
		return hits[0], "", nil
	}
	return "", "", fmt.Errorf("mailboxes.map names it by %s, and the server marks %d mailboxes %s (%s)", key, len(hits), key, quoteList(hits))
}

// syncFolder is the folder a sync of acc gives the listed mailbox m: the
// one its mailboxes.map (by name or by m's attributes) and layout put it
// in, as the engine decides it.
func syncFolder(acc Account, m mail.RemoteMailbox, names satsync.Options) (string, bool) {
	o := names
	o.Include, o.Map = []string{"*"}, acc.Map
	sel, err := satsync.SelectMailboxes([]mail.RemoteMailbox{m}, o, acc.Layout.Encode)
	if err != nil || len(sel) != 1 || sel[0].Err != nil {
		return "", false
	}
	return sel[0].Local, true
}

// quoteList quotes names and joins them with commas.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
