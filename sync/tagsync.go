package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
	"github.com/satchel-mail/satchel/sync/tagmap"
)

// tagMeta is the index's meta key for the tag database's state as of the
// last tag sync: its UUID, the revision read before that sync's changes
// (anything changed later has a higher one), and its root.
const tagMeta = "notmuch"

type tagState struct {
	UUID     string `json:"uuid"`
	Revision uint64 `json:"revision"`
	Root     string `json:"root"`
}

// maxLabels bounds the labels read of one message on either side: a
// message with thousands of keywords syncs its first maxLabels (by name)
// and leaves the rest alone.
const maxLabels = 256

// tagRounds bounds how often one sync reads the changes since the last
// revision again: after writing tags, once more reads this run's own
// writes back (and anything that changed meanwhile), so that the next run
// starts past them.
const tagRounds = 3

// tagRun is the tag sync of one account run (nil when tags are off).
type tagRun struct {
	r     *runner
	db    TagDB
	ix    TagIndex
	m     *tagmap.Map
	idx   *writtenIndex
	err   error
	res   *TagResult
	maild string
	// Filled by prepare.
	root, dir string
	boxes     map[string]mail.Mailbox // by local path
	byID      map[int64]mail.Mailbox
	refused   map[int64]map[string]bool
	indexed   bool
}

// startTags turns the tag sync on for this run, when configured: the
// engine's index is wrapped to note the rows the run writes.
func (r *runner) startTags() *tagRun {
	o := r.opts.Tags
	if o == nil || r.deps.TagDB == nil || r.deps.TagIndex == nil {
		return nil
	}
	t := &tagRun{r: r, db: r.deps.TagDB, ix: r.deps.TagIndex, res: &TagResult{}, maild: o.Maildir}
	t.m, t.err = tagmap.New(o.Keywords, o.Local)
	if t.err != nil {
		t.err = fmt.Errorf("notmuch keywords: %w", t.err)
		return t
	}
	t.idx = &writtenIndex{Index: r.deps.Index, rows: map[rowKey]bool{}}
	r.deps.Index = t.idx
	return t
}

// finish runs the tag sync once every mailbox of the account is applied,
// on the run's first connection for the STOREs.
func (t *tagRun) finish(ctx context.Context, s *session, results []*MailboxResult) *TagResult {
	if t == nil {
		return nil
	}
	if err := ctx.Err(); err != nil && t.err == nil {
		t.err = err
	}
	if t.err == nil {
		t.err = t.run(ctx, s, results)
	}
	if t.err != nil {
		t.res.Err = errors.Join(t.res.Err, t.err)
		t.r.log.Error("tag sync failed", "err", t.err)
	}
	return t.res
}

func (t *tagRun) run(ctx context.Context, s *session, results []*MailboxResult) error {
	ix := t.r.deps.Index
	var st tagState
	if v, ok, err := ix.Meta(ctx, tagMeta); err != nil {
		return err
	} else if ok {
		if err := json.Unmarshal([]byte(v), &st); err != nil {
			st = tagState{}
		}
	}
	mbs, err := ix.Mailboxes(ctx)
	if err != nil {
		return err
	}
	t.boxes, t.byID, t.refused = map[string]mail.Mailbox{}, map[int64]mail.Mailbox{}, map[int64]map[string]bool{}
	for _, mb := range mbs {
		t.boxes[mb.LocalPath] = mb
		t.byID[mb.ID] = mb
	}

	// The one call of a sync that changed nothing: the revision, the
	// UUID, and how many of the account's messages changed since.
	var now TagState
	if st.Root != "" {
		t.root = st.Root
		if t.dir, err = t.scopeDir(); err != nil {
			return err
		}
		if now, err = t.db.State(ctx, t.dir, st.Revision); err != nil {
			return err
		}
	}
	if st.Root == "" || now.UUID != st.UUID {
		// First sync with tags, or a compacted or rebuilt database whose
		// revisions mean nothing against the recorded one: compare every
		// message once.
		if t.root, err = t.db.Root(ctx); err != nil {
			return err
		}
		if t.dir, err = t.scopeDir(); err != nil {
			return err
		}
		st = tagState{Root: t.root}
		if now, err = t.db.State(ctx, t.dir, 0); err != nil {
			return err
		}
		t.res.Full = true
	}
	dry := t.r.opts.DryRun
	if !dry && localChanges(results) {
		// Downloads and renames reach notmuch before any tag is written.
		if err := t.index(ctx); err != nil {
			return err
		}
		if now, err = t.db.State(ctx, t.dir, st.Revision); err != nil {
			return err
		}
	}
	written := t.idx.written()
	var override map[rowKey]mail.Flags
	if dry {
		written, override = t.planned(results)
	}
	since := st.Revision
	if t.res.Full {
		since = 0
	}
	recorded, held := since, false
	for round := 0; ; round++ {
		var msgs []TaggedMessage
		if now.Changed > 0 || t.res.Full && round == 0 {
			if msgs, err = t.db.Changed(ctx, t.dir, since); err != nil {
				return err
			}
		}
		var rows []rowKey
		if round == 0 {
			rows = written
		}
		if len(msgs) == 0 && len(rows) == 0 {
			break
		}
		units, err := t.units(ctx, msgs, rows, override)
		if err != nil {
			return err
		}
		plan := t.plan(units)
		if dry {
			return nil
		}
		held = held || plan.held
		if plan.empty() {
			// Save bases of messages seen for the first time.
			if err := t.ix.SaveTagBases(ctx, plan.bases); err != nil {
				return err
			}
			break
		}
		if err := t.write(ctx, s, plan); err != nil {
			// The recorded revision stays: the next sync reads these
			// messages again, and what was written merges as unchanged.
			return err
		}
		if round+1 >= tagRounds {
			break
		}
		since = now.Revision
		if now, err = t.db.State(ctx, t.dir, since); err != nil {
			return err
		}
	}
	st.UUID, st.Revision = now.UUID, now.Revision
	if held {
		st.Revision = recorded
	}
	v, _ := json.Marshal(st)
	return ix.SetMeta(ctx, tagMeta, string(v))
}

// scopeDir is the account's Maildir relative to the database's root; an
// account whose Maildir is not below the root cannot be synced with it.
func (t *tagRun) scopeDir() (string, error) {
	root, maild := t.root, t.maild
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	if m, err := filepath.EvalSymlinks(maild); err == nil {
		maild = m
	}
	rel, err := filepath.Rel(root, maild)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return "", fmt.Errorf("the notmuch database's root %s is neither the account's Maildir %s nor a directory above it: set notmuch.config to a configuration whose database.mail_root is", t.root, t.maild)
	}
	if rel == "." {
		return "", nil
	}
	return filepath.ToSlash(rel), nil
}

func (t *tagRun) index(ctx context.Context) error {
	unlock := lockTags(t.root)
	defer unlock()
	t.indexed = true
	return t.db.Index(ctx)
}

// localChanges reports whether the run changed files in the Maildir.
func localChanges(results []*MailboxResult) bool {
	for _, m := range results {
		if m.Downloaded+m.FlagsChanged+m.Removed+m.Moved+m.Reassociated > 0 || m.Folder != nil {
			return true
		}
	}
	return false
}

// planned is, for a dry run, the rows whose keywords the plans would
// change, with the keywords they would have.
func (t *tagRun) planned(results []*MailboxResult) ([]rowKey, map[rowKey]mail.Flags) {
	var rows []rowKey
	over := map[rowKey]mail.Flags{}
	for _, mr := range results {
		mb, ok := t.r.mailboxNamed(t.byID, mr.Name)
		if !ok || mr.Plan == nil {
			continue
		}
		add := func(uid mail.UID, f mail.Flags) {
			k := rowKey{mb.ID, mb.UIDValidity, uid}
			rows = append(rows, k)
			over[k] = f
		}
		for _, row := range mr.Plan.Rows {
			add(row.UID, row.Flags)
		}
		for _, f := range mr.Plan.LocalFlags {
			add(f.UID, f.Flags)
		}
		for _, f := range mr.Plan.RemoteFlags {
			add(f.UID, f.Flags)
		}
		for _, d := range mr.Plan.Download {
			if kws := t.serverLabels(d.Flags); len(kws) > 0 {
				var tags []string
				for _, l := range slices.Sorted(mapKeys(kws)) {
					tg, _ := t.m.Tag(kws[l][0])
					tags = append(tags, tg)
				}
				t.res.Changes = append(t.res.Changes, LabelChange{Side: "notmuch", Mailbox: mr.Name, UID: d.UID, ID: fmt.Sprintf("(new UID %d in %s)", d.UID, mr.Name), Add: tags})
				t.res.TagsAdded += len(tags)
			}
		}
	}
	return rows, over
}

func (r *runner) mailboxNamed(byID map[int64]mail.Mailbox, name string) (mail.Mailbox, bool) {
	for _, mb := range byID {
		if mb.Name == name {
			return mb, true
		}
	}
	return mail.Mailbox{}, false
}

// tagCopy is one copy of a message: its mailbox's row, and its base.
type tagCopy struct {
	mb      mail.Mailbox
	row     mail.Message
	base    *mail.TagBase
	keyword mail.Flags // the keywords to read: the row's, or the plan's
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
			c := tagCopy{mb: mb, row: row, keyword: row.Flags.Keywords()}
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
		tags := t.tagLabels(u.msg.Tags)
		nm := map[string]bool{}
		for l := range tags {
			nm[l] = true
		}
		copies := make([]labelCopy, len(u.copies))
		servers := make([]map[string][]string, len(u.copies))
		for i, c := range u.copies {
			servers[i] = t.serverLabels(c.keyword)
			lc := labelCopy{server: map[string]bool{}, refused: t.refused[c.mb.ID]}
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
		// A spelling for each label: the tag's, else a copy's keyword.
		keywordOf := func(l string) string {
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

// write carries out a plan: tags first (after notmuch has seen this
// run's renames), then each mailbox's keywords; the bases of what was
// written are recorded. A mailbox that fails does not stop the others.
func (t *tagRun) write(ctx context.Context, s *session, p *tagPlan) error {
	if len(p.tags) > 0 {
		unlock := lockTags(t.root)
		var err error
		if !t.indexed {
			// Files renamed since notmuch last looked (by a mail reader)
			// must be known before notmuch renames them for flags.
			t.indexed = true
			err = t.db.Index(ctx)
		}
		if err == nil {
			err = t.db.Tag(ctx, p.tags)
		}
		unlock()
		if err != nil {
			return err
		}
	}
	if err := t.ix.SaveTagBases(ctx, p.bases); err != nil {
		return err
	}
	var errs []error
	for _, id := range slices.Sorted(func(yield func(int64) bool) {
		for k := range p.stores {
			if !yield(k) {
				return
			}
		}
	}) {
		if err := t.store(ctx, s, t.byID[id], p.stores[id], p.pending); err != nil {
			errs = append(errs, fmt.Errorf("keywords of %q: %w", t.byID[id].Name, err))
		}
	}
	return errors.Join(errs...)
}
