package main

// The restore plan: which mailbox each backup folder goes back to, and
// where its files land in the target account.

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// restorePlan maps the source's folders to mailboxes as a sync of the
// source names them, and keeps those the target's configuration and
// --mailbox select, each with the folder a sync of the target gives its
// mailbox (see placeFolders). A folder is the mailbox its path decodes to
// in the source's layout, unless the source's mailboxes.map names it:
// then it is the mailbox of the map entry's key (see mappedMailbox), and
// another folder that decodes to that mailbox is skipped. A folder that
// cannot be named, or that is the same mailbox as another, is kept with
// its error: it fails, alone.
func restorePlan(froms []string, src, dst config.Account, list []mail.RemoteMailbox, only []string, names satsync.Options) ([]*restoreFolder, error) {
	delim := listDelim(list)
	layout := accountRoot(src).Layout
	keys := mapFolders(src)
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
	byName := map[string]*restoreFolder{}
	var named, bad []*restoreFolder
	for _, rel := range order {
		f := &restoreFolder{from: rel}
		var err error
		if key, ok := keys[rel]; ok {
			f.name, f.fallback, err = mappedMailbox(src, list, key, rel, delim, names)
		} else {
			f.name, err = decodedMailbox(layout, rel, delim, names)
		}
		if err != nil {
			f.err = fmt.Errorf("folder %s cannot be named on the server: %w; skipped", folderLabel(rel), err)
			bad = append(bad, f)
			continue
		}
		if other, ok := byName[satsync.CanonMailbox(f.name)]; ok {
			f.err = fmt.Errorf("folder %s is the same mailbox as folder %s; skipped", folderLabel(rel), folderLabel(other.from))
			if other.fallback == "" && keys[other.from] != "" {
				f.err = fmt.Errorf("folder %s is mailbox %q, which the account's mailboxes.map gives folder %s; skipped", folderLabel(rel), f.name, folderLabel(other.from))
			}
			bad = append(bad, f)
			continue
		}
		byName[satsync.CanonMailbox(f.name)] = f
		named = append(named, f)
	}
	for _, n := range only {
		if _, ok := byName[satsync.CanonMailbox(n)]; !ok {
			return nil, usageError{fmt.Errorf("--mailbox %q: no folder of the Maildir is that mailbox", n)}
		}
	}
	out, _, err := placeFolders(named, list, dst, only, src.Name == dst.Name, names)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(bad, func(a, b *restoreFolder) int { return strings.Compare(a.from, b.from) })
	if len(only) == 0 {
		out = append(out, bad...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the account's mailboxes.include and exclude select none of the Maildir's folders", errNothingToRestore)
	}
	return out, nil
}

// placeFolders keeps the folders whose mailboxes the target's include,
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
func placeFolders(folders []*restoreFolder, list []mail.RemoteMailbox, dst config.Account, only []string, inPlace bool, names satsync.Options) (out []*restoreFolder, levels []string, err error) {
	delim := listDelim(list)
	input := slices.Clone(list)
	byName := map[string]*restoreFolder{}
	for _, f := range folders {
		byName[satsync.CanonMailbox(f.name)] = f
		i := slices.IndexFunc(input, func(m mail.RemoteMailbox) bool { return satsync.SameMailbox(m.Name, f.name) })
		if i < 0 {
			input = append(input, mail.RemoteMailbox{Name: f.name, Delim: delim})
			continue
		}
		// A \Noselect level is created as a mailbox.
		input[i].NoSelect = false
	}
	root := accountRoot(dst)
	o := names
	o.Include, o.Exclude, o.Only, o.Map = dst.Mailboxes.Include, dst.Mailboxes.Exclude, only, dst.Mailboxes.Map
	sel, err := satsync.SelectMailboxes(input, o, root.Path)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range sel {
		f, ok := byName[satsync.CanonMailbox(s.Name)]
		if !ok {
			// A mailbox of the server that the backup has no folder of.
			// A sync makes the folder of a level above a restored one
			// (where mailboxes.map moves the restored one out of it).
			if s.NoSelect && s.Err == nil && s.Delim != 0 && slices.ContainsFunc(folders, func(f *restoreFolder) bool {
				return strings.HasPrefix(f.name, s.Name+string(s.Delim))
			}) {
				levels = append(levels, s.Local)
			}
			continue
		}
		f.to, f.err = s.Local, s.Err
		// Compared as directories: on a case-insensitive file system,
		// inbox is the folder INBOX.
		if f.err == nil && inPlace && f.to != f.from && !samePath(root.Folder(f.from).Dir.Path, root.Folder(f.to).Dir.Path) {
			f.err = fmt.Errorf("folder %s is mailbox %q, which this account syncs with folder %s (mailboxes.map, layout); move its files there, or restore it with --to to another account; skipped",
				folderLabel(f.from), f.name, folderLabel(f.to))
		}
		out = append(out, f)
	}
	return out, levels, nil
}

// replaceFolders places the folders again by the server's listing once
// the restore has created their mailboxes: a server may give a mailbox it
// creates a special-use attribute (Dovecot's special_use for a name),
// which the target's mailboxes.map and exclude rules act on. A folder the
// listing no longer selects fails. It returns the folders of the \Noselect
// levels above the folders' mailboxes (see placeFolders).
func replaceFolders(folders []*restoreFolder, list []mail.RemoteMailbox, dst config.Account, only []string, inPlace bool, names satsync.Options) ([]string, error) {
	var ok []*restoreFolder
	for _, f := range folders {
		if f.err == nil {
			ok = append(ok, f)
		}
	}
	if len(ok) == 0 {
		return nil, nil
	}
	// The --mailbox names whose folders failed are left out: they need
	// not be on the server.
	var keep []string
	for _, n := range only {
		if slices.ContainsFunc(ok, func(f *restoreFolder) bool { return satsync.SameMailbox(f.name, n) }) {
			keep = append(keep, n)
		}
	}
	sel, levels, err := placeFolders(ok, list, dst, keep, inPlace, names)
	if err != nil {
		return nil, err
	}
	for _, f := range ok {
		if !slices.Contains(sel, f) {
			f.err = fmt.Errorf("once created, mailbox %q is one the account's mailboxes.include and exclude leave out (the server gave it a special-use attribute?); skipped", f.name)
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
func decodedMailbox(layout maildir.Layout, rel string, delim rune, names satsync.Options) (string, error) {
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
func mapFolders(acc config.Account) map[string]string {
	root := accountRoot(acc)
	keys := slices.Sorted(maps.Keys(acc.Mailboxes.Map))
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
		rel, err := root.Path(strings.Split(acc.Mailboxes.Map[key], "/"))
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
func mappedMailbox(src config.Account, list []mail.RemoteMailbox, key, rel string, delim rune, names satsync.Options) (name, fallback string, err error) {
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
		name, err := decodedMailbox(accountRoot(src).Layout, rel, delim, names)
		return name, key, err
	case 1:
		return hits[0], "", nil
	}
	return "", "", fmt.Errorf("mailboxes.map names it by %s, and the server marks %d mailboxes %s (%s)", key, len(hits), key, quoteList(hits))
}

// syncFolder is the folder a sync of acc gives the listed mailbox m: the
// one its mailboxes.map (by name or by m's attributes) and layout put it
// in, as the engine decides it.
func syncFolder(acc config.Account, m mail.RemoteMailbox, names satsync.Options) (string, bool) {
	o := names
	o.Include, o.Map = []string{"*"}, acc.Mailboxes.Map
	sel, err := satsync.SelectMailboxes([]mail.RemoteMailbox{m}, o, accountRoot(acc).Path)
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
