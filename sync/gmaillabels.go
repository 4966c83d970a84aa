package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/satchel-mail/satchel/sync/mail"
	"github.com/satchel-mail/satchel/sync/tagmap"
)

// Gmail's label mode (gmail.labels: tags). Over IMAP each Gmail label is
// a mailbox showing the messages that carry it, and "All Mail" (special
// use \All) shows every message but those in the Trash and Spam. Label
// mode syncs only All Mail, the Trash and Spam, one file per message,
// and carries each message's labels (X-GM-LABELS, read in All Mail: a
// label mailbox leaves its own label out of what it reports) to notmuch
// tags and back, through the tag sync (tagsync.go, tagplan.go), with
// labels in place of keywords:
//
//   - a user label is the tag of its name ("Projects/Alpha"); \Inbox,
//     \Sent and \Important are inbox, sent and important (tagmap.GmailMap);
//     \Important is read-only: Gmail's classifier sets it;
//   - a message in the Trash carries the tag trash, one in Spam spam;
//     giving a message in All Mail the tag moves it there (UID MOVE),
//     taking it away moves it back to All Mail;
//   - a message deleted locally is moved to the Trash (Options.Trash): an
//     EXPUNGE in All Mail does nothing under Gmail's default setting
//     ("archive"); one deleted from the Trash or Spam is expunged there,
//     which deletes it for good;
//   - keywords are not synced with tags in these mailboxes: a label may be
//     named like a keyword ("$Junk") and is another thing.
//
// Labels are read incrementally: Gmail raises a message's MODSEQ when its
// labels change (the emulation does by default; Google does not document
// it), so a FETCH X-GM-LABELS CHANGEDSINCE the last read finds them. Every
// ScanEvery-th sync reads every message's labels, and a label found
// changed under an old MODSEQ is reported: then only those full reads
// catch changes made elsewhere (at 100,000 messages, one FETCH of about
// 6 MB).

// Roles of the mailboxes of label mode.
const (
	gmailAll   = "all"
	gmailTrash = "trash"
	gmailSpam  = "spam"
)

// GmailLabelOptions configure label mode.
type GmailLabelOptions struct {
	// Labels pairs Gmail's system labels with tags (gmail.system_labels);
	// nil is tagmap.DefaultGmailLabels.
	Labels map[string]string
	// Local are tags that never become labels (gmail.local_tags); nil is
	// tagmap.DefaultGmailLocal.
	Local []string
	// ReadOnly are labels read and never written (gmail.read_only); nil
	// is tagmap.DefaultGmailReadOnly (\Important).
	ReadOnly []string
	// ScanEvery: every ScanEvery-th sync reads every message's labels
	// (gmail.label_scan_every); 0 is 24.
	ScanEvery int
}

// ErrNotGmail: label mode was asked of a server that is not Gmail.
var ErrNotGmail = errors.New("gmail.labels is tags, but the server is not Gmail (no X-GM-EXT-1, or no mailbox with the special use \\All)")

// gmailMailboxes keeps, of a listing, the three mailboxes of label mode,
// found by their special use (their names depend on the account's
// language), and notes their roles. Deleted mail goes to the Trash.
func (r *runner) gmailMailboxes(list []mail.RemoteMailbox) ([]mail.RemoteMailbox, error) {
	roles := map[string]string{}
	var out []mail.RemoteMailbox
	for _, m := range list {
		role := ""
		switch {
		case m.HasAttr(`\All`):
			role = gmailAll
		case m.HasAttr(`\Trash`):
			role = gmailTrash
		case m.HasAttr(`\Junk`):
			role = gmailSpam
		default:
			continue
		}
		if slices.Contains(mapValues(roles), role) {
			continue
		}
		roles[m.Name] = role
		if m.Status != nil {
			if r.gmailSeen == nil {
				r.gmailSeen = map[string]mail.ModSeq{}
			}
			r.gmailSeen[m.Name] = m.Status.HighestModSeq
		}
		out = append(out, m)
	}
	if !slices.Contains(mapValues(roles), gmailAll) {
		return nil, ErrNotGmail
	}
	r.gmailRoles = roles
	for name, role := range roles {
		if role == gmailTrash && r.opts.Trash == "" {
			r.opts.Trash = name
		}
	}
	return out, nil
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// gmailLabelIndex is an index that records Gmail labels.
type gmailLabelIndex interface {
	GmailLabels(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, uids []mail.UID) (map[mail.UID][]string, error)
	SetGmailLabels(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, labels map[mail.UID][]string) error
}

// gmailLabelRemote reads and writes labels in the selected mailbox.
type gmailLabelRemote interface {
	Gmail() bool
	GmailLabels(ctx context.Context, since mail.ModSeq) ([]mail.GmailLabeled, error)
	GmailLabelsOf(ctx context.Context, uids []mail.UID) ([]mail.GmailLabeled, error)
	StoreGmailLabels(ctx context.Context, uids []mail.UID, labels []string, remove bool) (map[mail.UID][]string, error)
}

// labelMode is the tag sync's state in label mode.
type labelMode struct {
	m      *tagmap.GmailMap
	ix     gmailLabelIndex
	every  int
	roles  map[int64]string // mailbox ID → role
	byRole map[string]mail.Mailbox
	// read holds, in a dry run, the labels read from the server, which
	// the index is not told.
	read map[rowKey][]string
}

// gmailLabelMeta is the index's meta key for the labels' read state.
const gmailLabelMeta = "gmail_labels"

// metaReader reads the index's meta values.
type metaReader interface {
	Meta(ctx context.Context, key string) (string, bool, error)
}

// labelStates reads the labels' read state, by mailbox ID; a missing or
// unreadable record is no state (every mailbox read in full again).
func labelStates(ctx context.Context, ix metaReader) (map[int64]*labelReadState, error) {
	states := map[int64]*labelReadState{}
	v, ok, err := ix.Meta(ctx, gmailLabelMeta)
	if err != nil {
		return nil, err
	}
	if ok {
		_ = json.Unmarshal([]byte(v), &states)
	}
	return states, nil
}

// labelReadState is, per mailbox, how far its labels were read.
type labelReadState struct {
	UIDValidity mail.UIDValidity `json:"uidvalidity"`
	ModSeq      mail.ModSeq      `json:"modseq"` // HIGHESTMODSEQ before the last read
	Runs        int              `json:"runs"`   // syncs since the last full read
	Unreliable  bool             `json:"unreliable,omitempty"`
	Role        string           `json:"role,omitempty"` // gmailAll, gmailTrash or gmailSpam
}

// newLabelMode sets the tag run up for label mode, or records why it
// cannot be.
func (t *tagRun) newLabelMode(o *GmailLabelOptions) {
	t.gl, t.err = labelModeFor(t.ix, o)
}

// labelModeFor builds label mode's mapping from o, over an index that
// records labels.
func labelModeFor(tix TagIndex, o *GmailLabelOptions) (*labelMode, error) {
	m, err := tagmap.NewGmail(o.Labels, o.Local, o.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("gmail labels: %w", err)
	}
	ix, ok := tix.(gmailLabelIndex)
	if !ok {
		return nil, errors.New("gmail labels: the index cannot record labels")
	}
	every := o.ScanEvery
	if every <= 0 {
		every = 24
	}
	return &labelMode{m: m, ix: ix, every: every}, nil
}

// prepareLabels finds the mailboxes of the roles among the index's.
func (t *tagRun) prepareLabels() {
	gl := t.gl
	gl.roles, gl.byRole = map[int64]string{}, map[string]mail.Mailbox{}
	for name, role := range t.r.gmailRoles {
		for _, mb := range t.byID {
			if sameMailbox(mb.Name, name) {
				gl.roles[mb.ID] = role
				gl.byRole[role] = mb
			}
		}
	}
}

// refreshLabels reads the labels that changed on the server since the
// last read, records them, and returns the rows whose labels changed (to
// be merged with their tags), with the rows this run wrote whose labels
// were never read.
func (t *tagRun) refreshLabels(ctx context.Context, s *session, written []rowKey) ([]rowKey, error) {
	gl := t.gl
	ix := t.r.deps.Index
	states, err := labelStates(ctx, ix)
	if err != nil {
		return nil, err
	}
	var changed []rowKey
	for _, id := range slices.Sorted(mapKeysInt(gl.roles)) {
		mb := t.byID[id]
		st := states[id]
		if st == nil || st.UIDValidity != mb.UIDValidity {
			st = &labelReadState{UIDValidity: mb.UIDValidity}
			states[id] = st
		}
		st.Role = gl.roles[id]
		var fresh []mail.UID // rows written this run: their labels may be unread
		for _, k := range written {
			if k.mailbox == id && k.uidv == mb.UIDValidity {
				fresh = append(fresh, k.uid)
			}
		}
		if len(fresh) > 0 {
			have, err := gl.ix.GmailLabels(ctx, id, mb.UIDValidity, fresh)
			if err != nil {
				return nil, err
			}
			fresh = slices.DeleteFunc(fresh, func(u mail.UID) bool { _, ok := have[u]; return ok })
		}
		full := st.ModSeq == 0 || st.Runs+1 >= gl.every
		// The mailbox's HIGHESTMODSEQ as the run last saw it: recorded
		// by the sync, or listed (a dry run records nothing).
		seen := max(mb.HighestModSeq, t.r.gmailSeen[mb.Name])
		if !full && len(fresh) == 0 && seen != 0 && seen <= st.ModSeq {
			st.Runs++
			continue
		}
		remote, sel, err := selectRecorded(ctx, s, mb)
		if err != nil {
			return nil, err
		}
		lr, ok := remote.(gmailLabelRemote)
		if !ok || !lr.Gmail() {
			return nil, ErrNotGmail
		}
		since := st.ModSeq
		if full {
			since = 0
		}
		got, err := lr.GmailLabels(ctx, since)
		if err == nil && len(fresh) > 0 {
			var more []mail.GmailLabeled
			more, err = lr.GmailLabelsOf(ctx, fresh)
			got = append(got, more...)
		}
		if err != nil {
			s.close()
			return nil, err
		}
		var uids []mail.UID
		if !full {
			for _, g := range got {
				uids = append(uids, g.UID)
			}
		}
		stored, err := gl.ix.GmailLabels(ctx, id, mb.UIDValidity, uids)
		if err != nil {
			return nil, err
		}
		if full && len(uids) == 0 && stored == nil {
			stored = map[mail.UID][]string{}
		}
		set := map[mail.UID][]string{}
		stale := 0
		for _, g := range got {
			old, known := stored[g.UID]
			if known && sameLabels(old, g.Labels) {
				continue
			}
			if _, dup := set[g.UID]; dup {
				continue
			}
			set[g.UID] = g.Labels
			changed = append(changed, rowKey{id, mb.UIDValidity, g.UID})
			if full && known && st.ModSeq != 0 && g.ModSeq != 0 && g.ModSeq <= st.ModSeq {
				stale++
			}
		}
		if stale > 0 && !st.Unreliable {
			st.Unreliable = true
			t.r.log.Warn("Gmail changed labels without raising MODSEQ: label changes made elsewhere are now found only by the full read every gmail.label_scan_every syncs",
				"mailbox", mb.Name, "messages", stale, "every", gl.every)
		}
		if t.r.opts.DryRun {
			if gl.read == nil {
				gl.read = map[rowKey][]string{}
			}
			for u, l := range set {
				gl.read[rowKey{id, mb.UIDValidity, u}] = l
			}
		} else if err := gl.ix.SetGmailLabels(ctx, id, mb.UIDValidity, set); err != nil {
			return nil, err
		}
		if sel.HighestModSeq > st.ModSeq {
			st.ModSeq = sel.HighestModSeq
		}
		if full {
			st.Runs = 0
		} else {
			st.Runs++
		}
	}
	if !t.r.opts.DryRun {
		v, _ := json.Marshal(states)
		if err := ix.SetMeta(ctx, gmailLabelMeta, string(v)); err != nil {
			return nil, err
		}
	}
	return changed, nil
}

func mapKeysInt[V any](m map[int64]V) func(func(int64) bool) {
	return func(yield func(int64) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func sameLabels(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// labelsOf is, for a label-mode copy, its labels as merge keys (tags),
// each with its spelling on the server; the copy's mailbox adds trash or
// spam.
func (gl *labelMode) labelsOf(c tagCopy) map[string][]string {
	out := map[string][]string{}
	for _, l := range c.glabels {
		if tg, ok := gl.m.Tag(l); ok {
			if _, ok := out[tg]; !ok && len(out) >= maxLabels {
				continue
			}
			out[tg] = append(out[tg], l)
		}
	}
	switch gl.roles[c.mb.ID] {
	case gmailTrash:
		out[tagmap.GmailTrash] = []string{`\Trash`}
	case gmailSpam:
		out[tagmap.GmailSpam] = []string{`\Spam`}
	}
	return out
}

// tagKeys is, in label mode, the tags that are labels (or trash and
// spam), each keyed by itself.
func (gl *labelMode) tagKeys(tags []string) map[string][]string {
	out := map[string][]string{}
	for _, tg := range slices.Sorted(slices.Values(tags)) {
		if _, ok := gl.m.Label(tg); ok || tg == tagmap.GmailTrash || tg == tagmap.GmailSpam {
			if len(out) >= maxLabels {
				continue
			}
			out[tg] = []string{tg}
		}
	}
	return out
}

// readOnly reports whether a key (a tag) is a label never written.
func (gl *labelMode) readOnly(key string) bool {
	l, ok := gl.m.Label(key)
	return ok && gl.m.ReadOnly(l)
}

// storeLabels carries out one label-mode mailbox's part of a plan: labels
// added and removed with STORE X-GM-LABELS, one command per label, and
// messages given or stripped of trash or spam moved between the
// mailboxes. The labels the server shows afterwards are read back and
// recorded; the bases are recorded for the copies whose labels came out
// as planned, so that what the server did not do is merged again.
func (t *tagRun) storeLabels(ctx context.Context, s *session, mb mail.Mailbox, changes []copyChange, pending map[rowKey]mail.TagBase) error {
	gl := t.gl
	remote, _, err := selectRecorded(ctx, s, mb)
	if err != nil {
		return err
	}
	lr, ok := remote.(gmailLabelRemote)
	if !ok || !lr.Gmail() {
		return ErrNotGmail
	}
	role := gl.roles[mb.ID]
	adds, removes := map[string][]mail.UID{}, map[string][]mail.UID{}
	moves := map[string][]mail.UID{} // role → UIDs
	var touched []mail.UID
	for _, c := range changes {
		uid := c.c.row.UID
		dest := ""
		switch {
		case role != gmailTrash && c.labels[tagmap.GmailTrash]:
			dest = gmailTrash
		case role != gmailSpam && c.labels[tagmap.GmailSpam] && !c.labels[tagmap.GmailTrash]:
			dest = gmailSpam
		case role == gmailTrash && !c.labels[tagmap.GmailTrash], role == gmailSpam && !c.labels[tagmap.GmailSpam]:
			dest = gmailAll
		}
		for _, l := range c.add {
			if l != `\Trash` && l != `\Spam` && !gl.m.ReadOnly(l) {
				adds[l] = append(adds[l], uid)
			}
		}
		for _, l := range c.remove {
			if l != `\Trash` && l != `\Spam` && !gl.m.ReadOnly(l) {
				removes[l] = append(removes[l], uid)
			}
		}
		if dest != "" {
			moves[dest] = append(moves[dest], uid)
		}
		touched = append(touched, uid)
	}
	for _, remove := range []bool{false, true} {
		groups := adds
		if remove {
			groups = removes
		}
		for _, l := range slices.Sorted(mapKeys(groups)) {
			if _, err := lr.StoreGmailLabels(ctx, groups[l], []string{l}, remove); err != nil {
				s.close()
				return err
			}
			if remove {
				t.res.KeywordsRemoved += len(groups[l])
			} else {
				t.res.KeywordsAdded += len(groups[l])
			}
		}
	}
	// What the server shows now, of the copies that stay here.
	moved := map[mail.UID]bool{}
	for _, uids := range moves {
		for _, u := range uids {
			moved[u] = true
		}
	}
	stay := slices.DeleteFunc(slices.Clone(touched), func(u mail.UID) bool { return moved[u] })
	now := map[mail.UID][]string{}
	var rows []mail.Message // rows whose MODSEQ moves past this run's label writes
	if len(stay) > 0 {
		got, err := lr.GmailLabelsOf(ctx, stay)
		if err != nil {
			s.close()
			return err
		}
		byUID := map[mail.UID]mail.Message{}
		for _, c := range changes {
			byUID[c.c.row.UID] = c.c.row
		}
		for _, g := range got {
			now[g.UID] = g.Labels
			// A label write raises MODSEQ (where Gmail does) and changes
			// nothing the row holds: the row's MODSEQ follows, so that
			// the next sync can tell this run's writes from others'. A
			// message whose flags changed meanwhile keeps its MODSEQ, and
			// the next sync learns the change.
			if row, ok := byUID[g.UID]; ok && g.HasFlags && g.ModSeq > row.ModSeq && g.Flags.Equal(row.Flags) {
				row.ModSeq = g.ModSeq
				rows = append(rows, row)
			}
		}
		if err := gl.ix.SetGmailLabels(ctx, mb.ID, mb.UIDValidity, now); err != nil {
			return err
		}
		if len(rows) > 0 {
			if err := t.r.deps.Index.PutMessages(ctx, mb.ID, rows); err != nil {
				return err
			}
		}
	}
	var bases []mail.TagBase
	var unconfirmed []mail.UID
	for _, c := range changes {
		uid := c.c.row.UID
		if moved[uid] {
			continue
		}
		labels, ok := now[uid]
		if !ok {
			continue // gone: its row goes with the next sync
		}
		have := gl.labelsOf(tagCopy{mb: mb, glabels: labels})
		done := true
		for key := range c.labels {
			if _, ok := have[key]; !ok && !gl.readOnly(key) {
				done = false
			}
		}
		for key := range have {
			if !c.labels[key] && !gl.readOnly(key) {
				done = false
			}
		}
		if !done {
			unconfirmed = append(unconfirmed, uid)
			continue
		}
		bases = append(bases, pending[rowKey{mb.ID, mb.UIDValidity, uid}])
	}
	for _, dest := range slices.Sorted(mapKeys(moves)) {
		to, ok := gl.byRole[dest]
		if !ok {
			return fmt.Errorf("no %s mailbox to move messages to", dest)
		}
		if _, err := remote.Move(ctx, moves[dest], to.Name); err != nil {
			if errors.Is(err, mail.ErrNoMove) {
				return fmt.Errorf("move to %q: the server has no MOVE", to.Name)
			}
			s.close()
			return err
		}
		t.r.log.Info("moved by tag", "from", mb.Name, "to", to.Name, "messages", len(moves[dest]))
	}
	if err := t.ix.SaveTagBases(ctx, bases); err != nil {
		return err
	}
	if len(unconfirmed) > 0 {
		return fmt.Errorf("Gmail did not take the labels asked for on UIDs %v of %q; the next sync tries again", unconfirmed, mb.Name)
	}
	if len(moves) > 0 {
		return nil // the next sync learns the moves
	}
	// Nothing else changed the mailbox since it was recorded: the state
	// and the labels' read state move past this run's writes, and the
	// next sync selects nothing for them.
	hms, err := t.advance(ctx, remote, mb)
	if err != nil || hms == 0 {
		return err
	}
	return t.labelsReadUpTo(ctx, mb, hms)
}

// labelsReadUpTo records mb's labels as read up to HIGHESTMODSEQ hms.
func (t *tagRun) labelsReadUpTo(ctx context.Context, mb mail.Mailbox, hms mail.ModSeq) error {
	ix := t.r.deps.Index
	states, err := labelStates(ctx, ix)
	if err != nil {
		return err
	}
	st := states[mb.ID]
	if st == nil || st.UIDValidity != mb.UIDValidity || st.ModSeq >= hms {
		return nil
	}
	st.ModSeq = hms
	v, _ := json.Marshal(states)
	return ix.SetMeta(ctx, gmailLabelMeta, string(v))
}

// labelSpelling is the server's spelling of a merge key in label mode.
func (gl *labelMode) labelSpelling(key string) string {
	switch key {
	case tagmap.GmailTrash:
		return `\Trash`
	case tagmap.GmailSpam:
		return `\Spam`
	}
	if l, ok := gl.m.Label(key); ok {
		return l
	}
	return key
}

// labelModeOf sets up label mode for VerifyTags from what the last sync
// recorded: the mailboxes' roles, and their labels in the index.
func labelModeOf(ctx context.Context, ix metaReader, tix TagIndex, o *GmailLabelOptions) (*labelMode, error) {
	gl, err := labelModeFor(tix, o)
	if err != nil {
		return nil, err
	}
	gl.roles, gl.byRole = map[int64]string{}, map[string]mail.Mailbox{}
	states, err := labelStates(ctx, ix)
	if err != nil {
		return nil, err
	}
	for id, st := range states {
		if st.Role != "" {
			gl.roles[id] = st.Role
		}
	}
	if len(gl.roles) == 0 {
		return nil, errors.New("gmail labels: no label-mode sync recorded yet; run satchel sync first")
	}
	return gl, nil
}
