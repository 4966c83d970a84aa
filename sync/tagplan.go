package sync

import (
	"context"
	"path/filepath"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
	"github.com/satchel-mail/satchel/sync/tagmap"
)

// The tag sync's plan: the messages read paired with their copies'
// rows, and what the merge decides for each side.

// tagCopy is one copy of a message: its mailbox's row, and its base.
type tagCopy struct {
	mb      mail.Mailbox
	row     mail.Message
	base    *mail.TagBase
	keyword mail.Flags // the keywords to read: the row's, or the plan's
	glabels []string   // label mode: the message's Gmail labels
}

// tagUnit is one message of the tag database with its copies in the
// account's mailboxes.
type tagUnit struct {
	msg    TaggedMessage
	copies []tagCopy
}

// units pairs the tag database's messages with the index rows of their
// files, and the rows the run wrote with their messages (found by the id
// recorded in their base, else by Message-ID).
func (t *tagRun) units(ctx context.Context, msgs []TaggedMessage, rows []rowKey, override map[rowKey]mail.Flags) ([]*tagUnit, error) {
	byID := map[string]*tagUnit{}
	var units []*tagUnit
	for _, m := range msgs {
		if _, dup := byID[m.ID]; !dup {
			u := &tagUnit{msg: m}
			byID[m.ID] = u
			units = append(units, u)
		}
	}
	// Rows the run wrote whose message was not read: look them up.
	var wanted []string
	if len(rows) > 0 {
		type group struct {
			mb   int64
			uidv mail.UIDValidity
		}
		groups := map[group][]mail.UID{}
		for _, k := range rows {
			groups[group{k.mailbox, k.uidv}] = append(groups[group{k.mailbox, k.uidv}], k.uid)
		}
		for g, uids := range groups {
			found, err := t.ix.TagMessagesByUID(ctx, g.mb, g.uidv, uids)
			if err != nil {
				return nil, err
			}
			bases, err := t.ix.TagBases(ctx, g.mb, g.uidv, uids)
			if err != nil {
				return nil, err
			}
			for _, row := range found {
				id := strings.Trim(strings.TrimSpace(row.MessageID), "<>")
				if b, ok := bases[row.UID]; ok && b.NotmuchID != "" {
					id = b.NotmuchID
				}
				if id != "" && byID[id] == nil {
					wanted = append(wanted, id)
					byID[id] = nil
				}
			}
		}
	}
	if len(wanted) > 0 {
		slices.Sort(wanted)
		more, err := t.db.Messages(ctx, slices.Compact(wanted))
		if err != nil {
			return nil, err
		}
		for _, m := range more {
			if byID[m.ID] == nil {
				u := &tagUnit{msg: m}
				byID[m.ID] = u
				units = append(units, u)
			}
		}
	}
	// Each unit's files → rows, a mailbox at a time.
	type ref struct {
		u   *tagUnit
		key string
	}
	perBox := map[int64][]ref{}
	prefix := t.root + string(filepath.Separator)
	for _, u := range units {
		for _, f := range u.msg.Files {
			rel, ok := strings.CutPrefix(f, prefix)
			if !ok {
				continue
			}
			rel = filepath.ToSlash(rel)
			if t.dir != "" {
				if rel, ok = strings.CutPrefix(rel, t.dir+"/"); !ok {
					continue
				}
			}
			sub := pathDir(rel)
			if s := pathBase(sub); s != "cur" && s != "new" {
				continue
			}
			mb, ok := t.boxes[pathDir(sub)]
			if !ok {
				continue
			}
			key, _, _ := strings.Cut(pathBase(rel), ":")
			perBox[mb.ID] = append(perBox[mb.ID], ref{u, key})
		}
	}
	for id, refs := range perBox {
		mb := t.byID[id]
		keys := make([]string, len(refs))
		for i, r := range refs {
			keys[i] = r.key
		}
		if t.gl != nil && t.gl.roles[id] == "" {
			continue // label mode syncs the tags of its mailboxes only
		}
		found, err := t.ix.TagMessagesByKey(ctx, id, mb.UIDValidity, keys)
		if err != nil {
			return nil, err
		}
		var uids []mail.UID
		for _, row := range found {
			uids = append(uids, row.UID)
		}
		bases, err := t.ix.TagBases(ctx, id, mb.UIDValidity, uids)
		if err != nil {
			return nil, err
		}
		var glabels map[mail.UID][]string
		if t.gl != nil {
			if glabels, err = t.gl.ix.GmailLabels(ctx, id, mb.UIDValidity, uids); err != nil {
				return nil, err
			}
			for k, l := range t.gl.read {
				if k.mailbox == id && k.uidv == mb.UIDValidity {
					glabels[k.uid] = l
				}
			}
		}
		if _, ok := t.refused[id]; !ok {
			l, err := t.ix.RefusedKeywords(ctx, id)
			if err != nil {
				return nil, err
			}
			t.refused[id] = map[string]bool{}
			for _, x := range l {
				t.refused[id][x] = true
			}
		}
		for _, r := range refs {
			row, ok := found[r.key]
			if !ok || row.State != mail.StateSynced || slices.ContainsFunc(r.u.copies, func(c tagCopy) bool { return c.mb.ID == id && c.row.UID == row.UID }) {
				continue
			}
			c := tagCopy{mb: mb, row: row, keyword: row.Flags.Keywords(), glabels: glabels[row.UID]}
			if f, ok := override[rowKey{id, row.UIDValidity, row.UID}]; ok {
				c.keyword = f.Keywords()
			}
			if b, ok := bases[row.UID]; ok {
				c.base = &b
			}
			r.u.copies = append(r.u.copies, c)
		}
	}
	return units, nil
}

func pathDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ""
	}
	return p[:i]
}

func pathBase(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// tagPlan is what the merge decided: tag changes, keyword changes per
// copy, and the new bases.
type tagPlan struct {
	tags    []TagChange
	stores  map[int64][]copyChange // by mailbox ID
	bases   []mail.TagBase
	pending map[rowKey]mail.TagBase // bases recorded once the copy's STORE succeeds
	// held: a one-way sync left a message's change pending; the
	// revision recorded stays where it was, so that it is read again.
	held bool
}

type copyChange struct {
	c           tagCopy
	add, remove []string // keywords
	labels      map[string]bool
}

func (p *tagPlan) empty() bool { return len(p.tags) == 0 && len(p.stores) == 0 }

// serverLabels maps keywords to labels, each with its spellings; what
// is not synced is left out.
func (t *tagRun) serverLabels(f mail.Flags) map[string][]string {
	out := map[string][]string{}
	for _, kw := range f.Keywords().List() {
		if _, ok := t.m.Tag(kw); !ok {
			continue
		}
		l := tagmap.Label(kw)
		if _, ok := out[l]; !ok && len(out) >= maxLabels {
			continue
		}
		out[l] = append(out[l], kw)
	}
	return out
}

// tagLabels maps tags to labels, each with its spellings.
func (t *tagRun) tagLabels(tags []string) map[string][]string {
	out := map[string][]string{}
	for _, tg := range slices.Sorted(slices.Values(tags)) {
		kw, ok := t.m.Keyword(tg)
		if !ok || mail.IsSystem(kw) {
			continue
		}
		l := tagmap.Label(kw)
		if _, ok := out[l]; !ok && len(out) >= maxLabels {
			continue
		}
		out[l] = append(out[l], tg)
	}
	return out
}

func (t *tagRun) plan(units []*tagUnit) *tagPlan {
	p := &tagPlan{stores: map[int64][]copyChange{}, pending: map[rowKey]mail.TagBase{}}
	for _, u := range units {
		if len(u.copies) == 0 {
			continue
		}
		var tags map[string][]string
		if t.gl != nil {
			tags = t.gl.tagKeys(u.msg.Tags)
		} else {
			tags = t.tagLabels(u.msg.Tags)
		}
		nm := map[string]bool{}
		for l := range tags {
			nm[l] = true
		}
		copies := make([]labelCopy, len(u.copies))
		servers := make([]map[string][]string, len(u.copies))
		for i, c := range u.copies {
			lc := labelCopy{server: map[string]bool{}, refused: t.refused[c.mb.ID]}
			if t.gl != nil {
				servers[i], lc.refused = t.gl.labelsOf(c), nil
			} else {
				servers[i] = t.serverLabels(c.keyword)
			}
			for l := range servers[i] {
				lc.server[l] = true
			}
			if c.base != nil {
				lc.base = map[string]bool{}
				for _, l := range c.base.Labels {
					lc.base[l] = true
				}
			}
			copies[i] = lc
		}
		result := mergeLabels(nm, copies)
		if t.gl != nil && !slices.ContainsFunc(copies, func(c labelCopy) bool { return c.base != nil }) &&
			!slices.ContainsFunc(u.copies, func(c tagCopy) bool {
				return t.idx.wasUploaded(rowKey{c.mb.ID, c.row.UIDValidity, c.row.UID})
			}) {
			// A message's first label sync takes Gmail's labels: the tags
			// notmuch gave it when it indexed the file (new.tags, often
			// inbox and unread) say nothing of its labels. New local mail,
			// uploaded by this run, is the exception: its tags are the
			// labels it is to have.
			result = map[string]bool{}
			for _, s := range servers {
				for l := range s {
					result[l] = true
				}
			}
		}
		if t.gl != nil {
			// A read-only label is as the server has it.
			for _, s := range servers {
				for l := range s {
					if t.gl.readOnly(l) {
						result[l] = true
					}
				}
			}
			for l := range result {
				if t.gl.readOnly(l) && !slices.ContainsFunc(servers, func(s map[string][]string) bool { _, ok := s[l]; return ok }) {
					delete(result, l)
				}
			}
		}
		// A spelling for each label: the tag's, else a copy's keyword.
		keywordOf := func(l string) string {
			if t.gl != nil {
				return t.gl.labelSpelling(l)
			}
			if sp := tags[l]; len(sp) > 0 {
				kw, _ := t.m.Keyword(sp[0])
				return kw
			}
			for _, s := range servers {
				if sp := s[l]; len(sp) > 0 {
					return sp[0]
				}
			}
			return l
		}
		var ch TagChange
		for _, l := range slices.Sorted(mapKeys(result)) {
			if !nm[l] {
				tg, _ := t.m.Tag(keywordOf(l))
				if t.gl != nil {
					tg = l // the key is the tag
				}
				ch.Add = append(ch.Add, tg)
			}
		}
		for _, l := range slices.Sorted(mapKeys(nm)) {
			if !result[l] {
				ch.Remove = append(ch.Remove, tags[l]...)
			}
		}
		labels := slices.Sorted(mapKeys(result))
		var bases []mail.TagBase
		var changes []copyChange
		for i, c := range u.copies {
			base := mail.TagBase{MailboxID: c.mb.ID, UIDValidity: c.row.UIDValidity, UID: c.row.UID, NotmuchID: u.msg.ID, Labels: labels}
			cc := copyChange{c: c, labels: result}
			for _, l := range labels {
				if !copies[i].server[l] && !t.refused[c.mb.ID][l] {
					cc.add = append(cc.add, keywordOf(l))
				}
			}
			for _, l := range slices.Sorted(mapKeys(servers[i])) {
				if !result[l] {
					cc.remove = append(cc.remove, servers[i][l]...)
				}
			}
			if len(cc.add)+len(cc.remove) == 0 {
				if c.base == nil || c.base.NotmuchID != u.msg.ID || !slices.Equal(c.base.Labels, labels) {
					bases = append(bases, base)
				}
				continue
			}
			changes = append(changes, cc)
		}
		// A one-way sync (sync.direction) leaves a message whose labels
		// would change the side it must not touch as it is, bases
		// included: the difference stays pending (as Options.baseAfter
		// leaves flags).
		if !t.r.opts.pulls() && len(ch.Add)+len(ch.Remove) > 0 || !t.r.opts.pushes() && len(changes) > 0 {
			p.held = true
			continue
		}
		p.bases = append(p.bases, bases...)
		if len(ch.Add)+len(ch.Remove) > 0 {
			ch.ID = u.msg.ID
			p.tags = append(p.tags, ch)
			t.res.TagsAdded += len(ch.Add)
			t.res.TagsRemoved += len(ch.Remove)
			t.res.Changes = append(t.res.Changes, LabelChange{Side: "notmuch", ID: u.msg.ID, Add: ch.Add, Remove: ch.Remove})
		}
		for _, cc := range changes {
			c := cc.c
			p.stores[c.mb.ID] = append(p.stores[c.mb.ID], cc)
			p.pending[rowKey{c.mb.ID, c.row.UIDValidity, c.row.UID}] = mail.TagBase{MailboxID: c.mb.ID, UIDValidity: c.row.UIDValidity, UID: c.row.UID, NotmuchID: u.msg.ID, Labels: labels}
			t.res.KeywordsAdded += len(cc.add)
			t.res.KeywordsRemoved += len(cc.remove)
			t.res.Changes = append(t.res.Changes, LabelChange{Side: "server", Mailbox: c.mb.Name, UID: c.row.UID, ID: u.msg.ID, Add: cc.add, Remove: cc.remove})
		}
	}
	return p
}
