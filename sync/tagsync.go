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
	// gl is label mode's state (gmaillabels.go); nil when keywords are
	// synced.
	gl *labelMode
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
	if o := r.opts.GmailLabels; o != nil {
		t.newLabelMode(o)
	}
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
	if t.gl != nil {
		t.prepareLabels()
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
	if t.gl != nil {
		more, err := t.refreshLabels(ctx, s, written)
		if err != nil {
			return err
		}
		written = append(written, more...)
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
		store := t.store
		if t.gl != nil {
			store = t.storeLabels
		}
		if err := store(ctx, s, t.byID[id], p.stores[id], p.pending); err != nil {
			errs = append(errs, fmt.Errorf("keywords of %q: %w", t.byID[id].Name, err))
		}
	}
	return errors.Join(errs...)
}
