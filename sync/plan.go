package sync

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/conflict"
	"github.com/satchel-mail/satchel/sync/mail"
)

// Plan is what one sync of one mailbox will do, decided before anything
// is changed. It is what --dry-run prints and what tests assert.
type Plan struct {
	Mailbox string
	Mode    mail.SyncMode
	Status  mail.MailboxStatus
	// Download: on the server, to be written locally (new messages, and
	// restores of locally deleted ones), by ascending UID.
	Download []mail.RemoteMessage
	// Stream: the UIDs of a first sync downloaded in windows, each
	// window's metadata asked as it is downloaded (stream.go).
	Stream []mail.UID
	// Upload: local files to append to the server (new local mail, and
	// restores of messages the server expunged).
	Upload []Upload
	// LocalFlags: local files to rename for new flags.
	LocalFlags []FlagUpdate
	// RemoteFlags: flag changes to store on the server.
	RemoteFlags []FlagUpdate
	// RemoveLocal: files to delete because the server expunged them.
	RemoveLocal []mail.Message
	// DeleteRemote: messages to delete on the server (or move to the
	// trash) because the user deleted them locally.
	DeleteRemote []mail.Message
	// MoveOut: messages the user moved from this mailbox to another.
	MoveOut []Move
	// Adopt: local files that are a new server message of this mailbox
	// (moved on the server): moved into this folder instead of a download.
	Adopt []Adoption
	// Rows: index rows that change without touching either side (new
	// bases, one-sided states); Forget: rows to drop.
	Rows   []mail.Message
	Forget []mail.UID
	// Conflicts: the cases the conflict rules decided, for the log.
	Conflicts []string
}

// Upload is a local file to append.
type Upload struct {
	Key string
	// Replaces is the row of a message the server expunged that is
	// restored by this upload; nil for new local mail.
	Replaces *mail.Message
}

// FlagUpdate is a message's merged flags.
type FlagUpdate struct {
	UID  mail.UID
	Key  string
	Base mail.Message // the index row before the update
	// Flags is the merged result; Remote what the server has now (for
	// RemoteFlags), ModSeq its MODSEQ.
	Flags  mail.Flags
	Remote mail.Flags
	ModSeq mail.ModSeq
	// Local is what the local file has now (for LocalFlags).
	Local mail.Flags
}

// Move is a message the user moved to another mailbox.
type Move struct {
	Row    mail.Message
	To     *box
	ToKey  string
	Source *box
}

// Adoption pairs a new server message with a local file found in another
// folder.
type Adoption struct {
	Remote  mail.RemoteMessage
	Key     string
	FromRel string
	From    *box
	// Row is the index row the file belonged to, in RowBox; it is
	// removed when the adoption completes.
	Row    *mail.Message
	RowBox *box
}

// Empty reports whether the plan changes nothing on either side.
func (p *Plan) Empty() bool {
	return len(p.Download)+len(p.Stream)+len(p.Upload)+len(p.LocalFlags)+len(p.RemoteFlags)+len(p.RemoveLocal)+
		len(p.DeleteRemote)+len(p.MoveOut)+len(p.Adopt) == 0
}

// String is the plan as --dry-run prints it.
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %d to download, %d to upload, %d local flag updates, %d server flag updates, %d to remove locally, %d to delete on the server, %d to move\n",
		p.Mailbox, p.Mode, len(p.Download)+len(p.Adopt), len(p.Upload), len(p.LocalFlags), len(p.RemoteFlags), len(p.RemoveLocal), len(p.DeleteRemote), len(p.MoveOut))
	for _, m := range p.Download {
		fmt.Fprintf(&b, "  download UID %d (%d bytes, flags %q)\n", m.UID, m.Size, m.Flags)
	}
	for _, a := range p.Adopt {
		fmt.Fprintf(&b, "  take UID %d from local folder %s (moved on the server)\n", a.Remote.UID, a.FromRel)
	}
	for _, u := range p.Upload {
		fmt.Fprintf(&b, "  upload %s\n", u.Key)
	}
	for _, f := range p.LocalFlags {
		fmt.Fprintf(&b, "  local flags of UID %d -> %q\n", f.UID, f.Flags)
	}
	for _, f := range p.RemoteFlags {
		fmt.Fprintf(&b, "  server flags of UID %d %q -> %q\n", f.UID, f.Remote, f.Flags)
	}
	for _, m := range p.RemoveLocal {
		fmt.Fprintf(&b, "  remove UID %d locally (expunged on the server)\n", m.UID)
	}
	for _, m := range p.DeleteRemote {
		fmt.Fprintf(&b, "  delete UID %d on the server (deleted locally)\n", m.UID)
	}
	for _, m := range p.MoveOut {
		fmt.Fprintf(&b, "  move UID %d to %s\n", m.Row.UID, m.To.Name)
	}
	for _, c := range p.Conflicts {
		fmt.Fprintf(&b, "  conflict: %s\n", c)
	}
	return b.String()
}

// planner decides the plans of all mailboxes of an account together, so
// that a message moved from one mailbox to another is seen as a move, not
// as a deletion and a new message.
type planner struct {
	opts Options
	log  *slog.Logger
	// info caches LocalInfo of unknown local files, per box and key.
	info map[*box]map[string]mail.LocalInfo
	// boxes are the mailboxes planned; newRemote indexes their new
	// server messages by size, built when first needed (see serverNew).
	boxes     []*box
	newRemote map[idSize][]adoptTarget
}

func (o Options) pulls() bool { return o.Direction != "push" }

// baseAfter is the base recorded once a message's flags are merged. Both
// ways it is the merged flags, which both sides now hold. A one-way sync
// leaves the other side's differences pending instead of settling them:
// pull records the server's flags (so local changes stay local changes)
// and push the Maildir's (so server changes are neither copied nor
// undone).
func (o Options) baseAfter(merged, localFile, remote mail.Flags) mail.Flags {
	switch {
	case !o.pushes():
		return remote
	case !o.pulls():
		return localFile.System().Union(merged.Keywords())
	}
	return merged
}
func (o Options) pushes() bool { return o.Direction != "pull" }

// localMayLose and remoteMayLose apply sync.expunge.
func (o Options) localMayLose() bool {
	return o.Expunge == "" || o.Expunge == "both" || o.Expunge == "local"
}
func (o Options) remoteMayLose() bool {
	return o.Expunge == "" || o.Expunge == "both" || o.Expunge == "remote"
}

// localInfo describes an unknown local file, once.
func (pl *planner) localInfo(b *box, key string) (mail.LocalInfo, bool) {
	if pl.info[b] == nil {
		pl.info[b] = map[string]mail.LocalInfo{}
	}
	if in, ok := pl.info[b][key]; ok {
		return in, in.Size > 0
	}
	in, err := b.folder.Info(key, b.files[key])
	if err != nil {
		pl.log.Warn("cannot read local message", "mailbox", b.Name, "key", key, "err", err)
		in = mail.LocalInfo{}
	}
	pl.info[b][key] = in
	return in, err == nil
}

type idSize struct {
	id   string
	size int64
}

// planAll decides every mailbox's plan. What was learned of a mailbox
// and is not needed to apply its plan is dropped afterwards: a large
// mailbox's server delta is then not held while it is applied.
func (pl *planner) planAll(boxes, failed []*box) error {
	// Which files are unknown, and which known messages lost their file.
	unknown := map[*box]map[string]bool{}
	vanished := map[*box][]mail.Message{}
	all := append(append([]*box{}, boxes...), failed...)
	pl.boxes, pl.newRemote = all, nil
	defer func() {
		for _, b := range all {
			b.changed, b.gone, b.limbo = nil, nil, nil
			b.known.dropKeyIndex()
		}
	}()
	for _, b := range all {
		unknown[b] = map[string]bool{}
		for k := range b.files {
			if !b.known.hasKey(k) && !b.limbo.hasKey(k) {
				unknown[b][k] = true
			}
		}
		var missing []mail.Message
		for m := range b.known.all() {
			if _, ok := b.files[m.Key]; m.State.OnLocal() && !ok {
				missing = append(missing, m)
			}
		}
		if len(missing) > 0 {
			// Not in the listing: listed again, once, before any is
			// called deleted (a mail reader may have renamed one from
			// new/ to cur/ under the listing).
			again, err := b.folder.ScanShared(nil)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				// A folder deleted with sync.remove_folders is not
				// re-created before apply: it has no files.
				return err
			}
			for _, m := range missing {
				if f, ok := again[m.Key]; ok {
					b.files[m.Key] = f
					continue
				}
				vanished[b] = append(vanished[b], m)
			}
		}
		b.plan = &Plan{Mailbox: b.Name, Mode: b.mode, Status: b.st, Stream: b.stream}
		b.stream = nil
	}
	boxes = all
	isFailed := map[*box]bool{}
	for _, b := range failed {
		isFailed[b] = true
	}

	// Unknown local files by Message-ID and size, for local moves.
	var unknownByID map[idSize][]fileRef
	needIDs := false
	for _, b := range boxes {
		if len(vanished[b]) > 0 {
			needIDs = true
		}
	}
	if needIDs {
		unknownByID = map[idSize][]fileRef{}
		for _, b := range boxes {
			for _, k := range sortedKeys(unknown[b]) {
				if in, ok := pl.localInfo(b, k); ok && in.MessageID != "" {
					unknownByID[idSize{in.MessageID, in.Size}] = append(unknownByID[idSize{in.MessageID, in.Size}], fileRef{b, k})
				}
			}
		}
	}
	moved := map[*box]map[mail.UID]bool{}
	claimed := map[*box]map[string]bool{}
	adopted := map[*box]map[mail.UID]bool{}
	for _, b := range boxes {
		moved[b], claimed[b], adopted[b] = map[mail.UID]bool{}, map[string]bool{}, map[mail.UID]bool{}
	}
	// Local moves: a vanished file that turns up in another folder under
	// the same key, or as a file with the same Message-ID and size.
	for _, src := range boxes {
		for _, row := range vanished[src] {
			dst, key := pl.findMoved(boxes, src, row, unknown, claimed, unknownByID)
			if dst == nil {
				continue
			}
			if isFailed[src] || isFailed[dst] {
				// A move out of (or into) a mailbox that could not be
				// synced: do nothing now rather than upload a copy.
				claimed[dst][key] = true
				moved[src][row.UID] = true
				continue
			}
			if src.gone[row.UID] || !row.State.OnServer() {
				// Moved locally while expunged on the server: if the
				// server moved it too, its move wins and the local copy
				// follows; otherwise the local copy is uploaded where the
				// user put it (an ordinary unknown file).
				if t, ok := pl.takeServerMove(row, nil, adopted); ok {
					claimed[dst][key] = true
					moved[src][row.UID] = true
					r := row
					t.box.plan.Adopt = append(t.box.plan.Adopt, Adoption{Remote: t.msg, Key: key, FromRel: dst.rel, From: dst, Row: &r, RowBox: src})
				}
				continue
			}
			claimed[dst][key] = true
			moved[src][row.UID] = true
			if pl.opts.pushes() {
				src.plan.MoveOut = append(src.plan.MoveOut, Move{Row: row, To: dst, ToKey: key, Source: src})
			} else {
				// pull: the server keeps it where it was; the local move
				// stays local.
				row.State = mail.StateRemoteOnly
				src.plan.Rows = append(src.plan.Rows, row)
			}
		}
	}

	for _, b := range boxes {
		if !isFailed[b] {
			pl.planBox(b, unknown[b], claimed[b], moved[b], adopted)
		}
	}
	// A mailbox planned before the one a message was moved out of on the
	// server planned it as new; the source's plan adopted it since.
	for _, b := range boxes {
		if b.plan != nil {
			b.plan.Download = slices.DeleteFunc(b.plan.Download, func(m mail.RemoteMessage) bool { return adopted[b][m.UID] })
		}
	}
	return nil
}

type fileRef struct {
	b   *box
	key string
}

type adoptTarget struct {
	box *box
	msg mail.RemoteMessage
}

// findMoved looks for the file of a vanished row in the other folders.
func (pl *planner) findMoved(boxes []*box, src *box, row mail.Message, unknown map[*box]map[string]bool, claimed map[*box]map[string]bool, byID map[idSize][]fileRef) (*box, string) {
	for _, b := range boxes {
		if b != src && unknown[b][row.Key] && !claimed[b][row.Key] {
			return b, row.Key
		}
	}
	if row.MessageID == "" {
		return nil, ""
	}
	for _, f := range byID[idSize{row.MessageID, row.Size}] {
		if f.b != src && !claimed[f.b][f.key] {
			return f.b, f.key
		}
	}
	return nil, ""
}

// serverNew returns the new server messages of every mailbox by size, for
// messages moved on the server. It is built on first use: a sync in which
// no message disappeared from a folder or from the server needs none, and
// on a first sync it would hold every message once more.
func (pl *planner) serverNew() map[idSize][]adoptTarget {
	if pl.newRemote != nil {
		return pl.newRemote
	}
	pl.newRemote = map[idSize][]adoptTarget{}
	for _, b := range pl.boxes {
		for _, m := range b.changed {
			if !b.known.has(m.UID) {
				// The Message-ID of a new message is not known before its
				// download; moved messages are matched on size and the
				// Message-ID of the row that vanished (below).
				pl.newRemote[idSize{"", m.Size}] = append(pl.newRemote[idSize{"", m.Size}], adoptTarget{b, m})
			}
		}
	}
	return pl.newRemote
}

// takeServerMove finds a new server message that is row moved on the
// server: same size (the row's Message-ID is checked after download is
// avoided, so size and a unique candidate decide), in a mailbox other than
// except. The one it returns is marked adopted: it is not downloaded, so
// the caller must adopt it.
func (pl *planner) takeServerMove(row mail.Message, except *box, adopted map[*box]map[mail.UID]bool) (adoptTarget, bool) {
	var found []adoptTarget
	for _, t := range pl.serverNew()[idSize{"", row.Size}] {
		if t.box != except && !adopted[t.box][t.msg.UID] && t.msg.InternalDate.Equal(row.InternalDate) {
			found = append(found, t)
		}
	}
	if len(found) != 1 {
		return adoptTarget{}, false
	}
	adopted[found[0].box][found[0].msg.UID] = true
	return found[0], true
}

// planBox decides one mailbox's plan from its rows, its server delta and
// its files.
func (pl *planner) planBox(b *box, unknown, claimed map[string]bool, moved map[mail.UID]bool, adopted map[*box]map[mail.UID]bool) {
	p := b.plan
	o := pl.opts
	outside := o.outsideLimits(b)
	for row := range b.known.all() {
		if moved[row.UID] {
			continue
		}
		rm, changed := b.remoteChange(row.UID)
		remoteFlags := row.Flags
		remoteModSeq := row.ModSeq
		if changed {
			remoteFlags, remoteModSeq = rm.Flags, rm.ModSeq
		}
		onServer := row.State.OnServer() && !b.gone[row.UID]
		lf, onLocal := b.files[row.Key]

		switch row.State {
		case mail.StateLocalOnly:
			if !onLocal {
				p.Forget = append(p.Forget, row.UID)
			}
			continue
		case mail.StateRemoteOnly, mail.StateSkipped:
			switch {
			case !onServer:
				p.Forget = append(p.Forget, row.UID)
			case row.State == mail.StateSkipped && o.pulls() && !outside[row.UID]:
				// A limit was raised, or --fetch-skipped: download it now.
				p.Download = append(p.Download, mail.RemoteMessage{UID: row.UID, Flags: remoteFlags, ModSeq: remoteModSeq, Size: row.Size, InternalDate: row.InternalDate})
			case changed && (!remoteFlags.Equal(row.Flags) || remoteModSeq != row.ModSeq):
				row.Flags, row.ModSeq = remoteFlags, remoteModSeq
				p.Rows = append(p.Rows, row)
			}
			continue
		}

		// A Maildir name cannot carry keywords, and the server cannot
		// store local-only flags: each side is read as unchanged there.
		local := conflict.State{Present: onLocal, Flags: lf.Union(row.Flags.Keywords())}
		remote := conflict.State{Present: onServer, Flags: remoteFlags.Union(row.LocalOnlyFlags)}
		out := conflict.Decide(row.Flags, true, local, remote, o.Conflict)
		if out.Conflict {
			note := fmt.Sprintf("UID %d: base %q, local %q, server %q -> %s %q", row.UID, row.Flags, describe(local), describe(remote), out.Action, out.Flags)
			p.Conflicts = append(p.Conflicts, note)
			pl.log.Info("conflict", "mailbox", b.Name, "uid", row.UID, "base", row.Flags.String(), "local", describe(local), "remote", describe(remote), "decision", out.Action.String())
		}
		switch out.Action {
		case conflict.Keep:
			pl.keep(b, row, out.Flags, lf, remoteFlags, remoteModSeq)
		case conflict.DeleteLocal:
			if o.localMayLose() && o.pulls() {
				// A new message of the same size and date in the same
				// mailbox is another message: one expunged and one
				// delivered are no move (and it must be downloaded).
				if t, ok := pl.takeServerMove(row, b, adopted); ok {
					// Moved on the server: the local file follows it.
					r := row
					t.box.plan.Adopt = append(t.box.plan.Adopt, Adoption{Remote: t.msg, Key: row.Key, FromRel: b.rel, From: b, Row: &r, RowBox: b})
					continue
				}
				p.RemoveLocal = append(p.RemoveLocal, row)
			} else {
				row.State = mail.StateLocalOnly
				p.Rows = append(p.Rows, row)
			}
		case conflict.DeleteRemote:
			if o.remoteMayLose() && o.pushes() {
				p.DeleteRemote = append(p.DeleteRemote, row)
			} else {
				row.State = mail.StateRemoteOnly
				row.Flags, row.ModSeq = remoteFlags, remoteModSeq
				p.Rows = append(p.Rows, row)
			}
		case conflict.RestoreLocal:
			if o.pulls() {
				p.Download = append(p.Download, mail.RemoteMessage{UID: row.UID, Flags: out.Flags, ModSeq: remoteModSeq, Size: row.Size, InternalDate: row.InternalDate})
				if !out.Flags.Equal(remoteFlags) {
					pl.keepRemote(b, row, out.Flags, remoteFlags, remoteModSeq)
				}
			} else {
				row.State = mail.StateRemoteOnly
				p.Rows = append(p.Rows, row)
			}
		case conflict.RestoreRemote:
			if o.pushes() {
				r := row
				p.Upload = append(p.Upload, Upload{Key: row.Key, Replaces: &r})
			} else {
				row.State = mail.StateLocalOnly
				p.Rows = append(p.Rows, row)
			}
		case conflict.Forget:
			p.Forget = append(p.Forget, row.UID)
		}
	}
	// New on the server. The list is sized first: on a first sync it
	// holds every message of the mailbox, and growing it would leave
	// copies behind.
	news := 0
	for _, m := range b.changed {
		if !b.known.has(m.UID) {
			news++
		}
	}
	if o.pulls() {
		p.Download = slices.Grow(p.Download, news)
	}
	for _, m := range b.changed {
		if b.known.has(m.UID) || adopted[b][m.UID] || !o.pulls() {
			continue
		}
		if outside[m.UID] {
			// Recorded, so that it is neither downloaded by the next run
			// nor taken for a deletion: it has no file on purpose.
			p.Rows = append(p.Rows, skippedRow(b.mb.UIDValidity, m))
			continue
		}
		p.Download = append(p.Download, m)
	}
	// New locally.
	if o.pushes() {
		for _, k := range sortedKeys(unknown) {
			if !claimed[k] {
				p.Upload = append(p.Upload, Upload{Key: k})
			}
		}
	}
}

// keep plans the flag updates of a message both sides keep.
func (pl *planner) keep(b *box, row mail.Message, merged, localFile, remoteFlags mail.Flags, remoteModSeq mail.ModSeq) {
	p := b.plan
	if pl.opts.pulls() && !merged.System().Equal(localFile.System()) {
		p.LocalFlags = append(p.LocalFlags, FlagUpdate{UID: row.UID, Key: row.Key, Base: row, Flags: merged, Local: localFile})
	}
	storable := storableFlags(b.st, merged)
	if pl.opts.pushes() && !storable.Equal(storableFlags(b.st, remoteFlags)) {
		pl.keepRemote(b, row, merged, remoteFlags, remoteModSeq)
		return
	}
	// Nothing to send: the new base is recorded now.
	base := pl.opts.baseAfter(merged, localFile, remoteFlags)
	localOnly := merged.Minus(storable)
	if !base.Equal(row.Flags) || remoteModSeq != row.ModSeq || !localOnly.Equal(row.LocalOnlyFlags) {
		row.Flags, row.ModSeq = base, remoteModSeq
		if pl.opts.pushes() {
			row.LocalOnlyFlags = localOnly
		}
		p.Rows = append(p.Rows, row)
	}
}

// keepRemote plans a server flag update.
func (pl *planner) keepRemote(b *box, row mail.Message, merged, remoteFlags mail.Flags, remoteModSeq mail.ModSeq) {
	b.plan.RemoteFlags = append(b.plan.RemoteFlags, FlagUpdate{UID: row.UID, Key: row.Key, Base: row, Flags: merged, Remote: remoteFlags, ModSeq: remoteModSeq})
}

// storableFlags is the part of f the server can store: what PERMANENTFLAGS
// lists, and anything when it lists \* (RFC 9051 §7.1: new keywords may be
// created; some servers list only the system flags in use, so \* is read
// as "any flag").
func storableFlags(st mail.MailboxStatus, f mail.Flags) mail.Flags {
	var l []string
	for _, x := range f.List() {
		if st.PermanentFlags.Has(x) || st.CanCreateKeywords {
			l = append(l, x)
		}
	}
	return mail.NewFlags(l...)
}

func describe(s conflict.State) string {
	if !s.Present {
		return "(gone)"
	}
	return s.Flags.String()
}

// goneUIDs returns the known UIDs that should be on the server and are
// missing from present, which it sorts.
func goneUIDs(known *rows, present []mail.UID) []mail.UID {
	slices.Sort(present)
	var out []mail.UID
	for m := range known.all() {
		if _, ok := slices.BinarySearch(present, m.UID); m.State.OnServer() && !ok {
			out = append(out, m.UID)
		}
	}
	return out
}

// byUID returns the values of a map keyed by UID, in UID order.
func byUID[T any](m map[mail.UID]T) []T {
	out := make([]T, 0, len(m))
	for _, u := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[u])
	}
	return out
}

func sortedRows(m map[mail.UID]mail.Message) []mail.Message { return byUID(m) }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
