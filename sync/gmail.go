package sync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	gosync "sync"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Gmail shows one message in the mailbox of each of its labels, with one
// X-GM-MSGID everywhere (https://developers.google.com/gmail/imap/imap-extensions).
// Synced folder by folder, a message with three labels would be
// downloaded three times and stored three times. Where the server has
// X-GM-EXT-1, a download first asks for the X-GM-MSGIDs of what it is
// about to fetch, and a message the Maildir already holds in another
// folder, or that another folder is downloading in this run, gets a hard
// link to that file instead (a copy across file systems): each message is
// downloaded once.

// gmailRemote is a Remote on a server with Gmail's extensions.
type gmailRemote interface {
	// Gmail reports whether the server has X-GM-EXT-1.
	Gmail() bool
	// GmailIDs returns the X-GM-MSGIDs of uids in the selected
	// mailbox; gone messages are absent.
	GmailIDs(ctx context.Context, uids []mail.UID) (map[mail.UID]uint64, error)
}

// gmailIndex is an Index that records X-GM-MSGIDs.
type gmailIndex interface {
	GmailCopies(ctx context.Context, ids []uint64) (map[uint64]mail.GmailCopy, error)
}

// linkFolder is a Folder that can take a message from another folder's
// file (package maildir's).
type linkFolder interface {
	// StageLink stages under key the message that the durable file src
	// holds: hard-linked, or copied where links fail (copied).
	StageLink(ctx context.Context, key, src string, flags mail.Flags) (staged interface {
		Commit() error
		Abort()
	}, copied bool, err error)
	// Locate returns the path of key's file, looked up first under the
	// name seen gives it.
	Locate(key string, seen mail.Flags) (path string, ok bool, err error)
}

// gmailFiles is one run's knowledge of where each Gmail message is on
// disk: one file per X-GM-MSGID, found in the index or being downloaded
// by one of the run's mailboxes.
type gmailFiles struct {
	ix    gmailIndex
	paths func(ctx context.Context) (map[int64]string, error) // mailbox ID → local path
	open  func(rel string) Folder

	mu     gosync.Mutex
	files  map[uint64]*gmailFile
	mboxes map[int64]string
}

// gmailFile is where one message is, or will be once ready is closed.
type gmailFile struct {
	ready chan struct{}
	// path is a durable file holding the message, "" when its download
	// failed (whoever needs it then downloads it); set before ready is
	// closed. messageID is its Message-ID header.
	path      string
	messageID string
}

// gmailFor returns the run's Gmail file registry when remote is on Gmail
// and the local folders can link, nil otherwise.
func (r *runner) gmailFor(remote Remote, b *box) (gmailRemote, *gmailFiles) {
	gr, ok := remote.(gmailRemote)
	if !ok || !gr.Gmail() {
		return nil, nil
	}
	if _, ok := b.folder.(linkFolder); !ok {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gmail == nil {
		g := &gmailFiles{files: map[uint64]*gmailFile{}, open: r.deps.Folder}
		g.ix, _ = indexAs[gmailIndex](r.deps.Index)
		ix := r.deps.Index
		g.paths = func(ctx context.Context) (map[int64]string, error) {
			mbs, err := ix.Mailboxes(ctx)
			if err != nil {
				return nil, err
			}
			out := make(map[int64]string, len(mbs))
			for _, mb := range mbs {
				out[mb.ID] = mb.LocalPath
			}
			return out, nil
		}
		r.gmail = g
	}
	return gr, r.gmail
}

// gmailPlan sorts one download's messages by where their bodies come
// from.
type gmailPlan struct {
	fetch []mail.RemoteMessage // downloaded here
	link  []gmailLink          // linked now, from a durable file
	later []gmailLink          // linked once another download is done
	owned []*gmailFile         // files this download promised
	ids   map[mail.UID]uint64
}

// gmailLink is a message to be given another folder's file.
type gmailLink struct {
	msg  mail.RemoteMessage
	id   uint64
	file *gmailFile
}

// sort asks the server for the X-GM-MSGIDs of msgs and decides, for
// each, whether it is downloaded, linked now or linked later. A message
// with no id, or whose id the server would not give, is downloaded.
func (g *gmailFiles) sort(ctx context.Context, gr gmailRemote, msgs []mail.RemoteMessage, log *slog.Logger) (*gmailPlan, error) {
	p := &gmailPlan{}
	uids := make([]mail.UID, len(msgs))
	for i, m := range msgs {
		uids[i] = m.UID
	}
	ids, err := gr.GmailIDs(ctx, uids)
	if err != nil {
		return nil, err
	}
	p.ids = ids
	if err := g.lookUp(ctx, ids, log); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range msgs {
		id, ok := ids[m.UID]
		if !ok {
			p.fetch = append(p.fetch, m)
			continue
		}
		f := g.files[id]
		switch {
		case f == nil || f.failed():
			f = &gmailFile{ready: make(chan struct{})}
			g.files[id] = f
			p.owned = append(p.owned, f)
			p.fetch = append(p.fetch, m)
		case f.isReady():
			p.link = append(p.link, gmailLink{msg: m, id: id, file: f})
		default:
			p.later = append(p.later, gmailLink{msg: m, id: id, file: f})
		}
	}
	return p, nil
}

func (f *gmailFile) isReady() bool {
	select {
	case <-f.ready:
		return true
	default:
		return false
	}
}

func (f *gmailFile) failed() bool { return f.isReady() && f.path == "" }

// lookUp adds to the registry the files the index records for ids that
// it does not know yet.
func (g *gmailFiles) lookUp(ctx context.Context, ids map[mail.UID]uint64, log *slog.Logger) error {
	if g.ix == nil {
		return nil
	}
	var unknown []uint64
	g.mu.Lock()
	for _, id := range ids {
		if _, ok := g.files[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	g.mu.Unlock()
	if len(unknown) == 0 {
		return nil
	}
	copies, err := g.ix.GmailCopies(ctx, unknown)
	if err != nil || len(copies) == 0 {
		return err
	}
	g.mu.Lock()
	if g.mboxes == nil {
		g.mu.Unlock()
		paths, err := g.paths(ctx)
		if err != nil {
			return err
		}
		g.mu.Lock()
		g.mboxes = paths
	}
	mboxes := g.mboxes
	g.mu.Unlock()
	for id, c := range copies {
		rel, ok := mboxes[c.MailboxID]
		if !ok {
			continue
		}
		lf, ok := g.open(rel).(linkFolder)
		if !ok {
			continue
		}
		path, ok, err := lf.Locate(c.Row.Key, c.Row.Flags)
		if err != nil || !ok {
			// Gone from its folder since the last sync: downloaded.
			log.Debug("gmail copy not found", "folder", rel, "key", c.Row.Key, "err", err)
			continue
		}
		f := &gmailFile{ready: make(chan struct{}), path: path, messageID: c.Row.MessageID}
		close(f.ready)
		g.mu.Lock()
		if _, ok := g.files[id]; !ok {
			g.files[id] = f
		}
		g.mu.Unlock()
	}
	return nil
}

// done records that this download committed the message with id to
// path (durable, its directory fsynced), for the links waiting on it.
func (g *gmailFiles) done(p *gmailPlan, id uint64, path, messageID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.files[id]
	for i, o := range p.owned {
		if o == f {
			f.path, f.messageID = path, messageID
			close(f.ready)
			p.owned = append(p.owned[:i], p.owned[i+1:]...)
			return
		}
	}
}

// release gives up the files this download promised and did not
// deliver: those waiting on them download the messages themselves.
func (g *gmailFiles) release(p *gmailPlan) {
	if p == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, f := range p.owned {
		close(f.ready)
	}
	p.owned = nil
}

// link gives each message of links a file of its own in b's folder,
// taken from the file that holds it elsewhere, with the same intent
// bookkeeping and durability order as a download: intents recorded,
// files staged and committed, the folder's directories fsynced, then
// the rows committed. It returns the messages whose source was gone, to
// be downloaded.
func (r *runner) link(ctx context.Context, b *box, links []gmailLink, log *slog.Logger) ([]mail.RemoteMessage, error) {
	if len(links) == 0 {
		return nil, nil
	}
	lf := b.folder.(linkFolder)
	ix := r.deps.Index
	ins := make([]mail.Intent, len(links))
	for i, l := range links {
		m := l.msg
		row := mail.Message{UIDValidity: b.mb.UIDValidity, UID: m.UID, Key: b.folder.NewKey(), Flags: m.Flags,
			ModSeq: m.ModSeq, Size: m.Size, InternalDate: m.InternalDate, MessageID: l.file.messageID, GmailID: l.id}
		if old, ok := b.known.get(m.UID); ok {
			row.LocalOnlyFlags = old.LocalOnlyFlags
		}
		ins[i] = mail.Intent{MailboxID: b.mb.ID, Kind: mail.IntentDownload, UID: m.UID, Key: row.Key, Row: row}
	}
	ids, err := ix.AddIntents(ctx, ins)
	if err != nil {
		return nil, err
	}
	var (
		doneIDs, dropped []int64
		doneRows         []mail.RowChange
		missing          []mail.RemoteMessage
		copies           int
		failed           error
	)
	for i, l := range links {
		row := ins[i].Row
		st, copied, err := lf.StageLink(ctx, row.Key, l.file.path, row.Flags.System())
		if err == nil {
			err = st.Commit()
		}
		switch {
		case err == nil:
			doneIDs = append(doneIDs, ids[i])
			doneRows = append(doneRows, mail.RowChange{MailboxID: b.mb.ID, Row: row})
			if copied {
				copies++
			}
		case errors.Is(err, fs.ErrNotExist):
			// Removed by a mail reader since: download it.
			dropped = append(dropped, ids[i])
			missing = append(missing, l.msg)
		default:
			dropped = append(dropped, ids[i])
			failed = fmt.Errorf("link UID %d from %s: %w", l.msg.UID, l.file.path, err)
		}
		if failed != nil {
			for _, id := range ids[i+1:] {
				dropped = append(dropped, id)
			}
			break
		}
	}
	if len(doneRows) > 0 {
		cerr := b.folder.SyncDirs()
		if cerr == nil {
			cerr = ix.CompleteIntents(ctx, doneIDs, doneRows)
		}
		if cerr != nil {
			return nil, errors.Join(failed, cerr)
		}
		b.mu.Lock()
		for _, c := range doneRows {
			b.recorded(c.Row.UID)
			b.res.Linked++
			r.opts.advanceProgress(b.Name, c.Row.Size)
		}
		b.mu.Unlock()
		log.Debug("linked gmail copies", "messages", len(doneRows), "copied", copies)
	}
	if len(dropped) > 0 {
		if derr := ix.CompleteIntents(ctx, dropped, nil); derr != nil {
			return nil, errors.Join(failed, derr)
		}
	}
	return missing, failed
}

// waitLinks waits for the downloads that links wait on and links what
// they delivered; what they failed to deliver is returned, to be
// downloaded here.
func (r *runner) waitLinks(ctx context.Context, b *box, links []gmailLink, log *slog.Logger) ([]mail.RemoteMessage, error) {
	var ready []gmailLink
	var fetch []mail.RemoteMessage
	for _, l := range links {
		select {
		case <-l.file.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if l.file.path == "" {
			fetch = append(fetch, l.msg)
			continue
		}
		ready = append(ready, l)
	}
	missing, err := r.link(ctx, b, ready, log)
	return append(fetch, missing...), err
}

// gmailDelivered tells the links waiting on the messages of rows, just
// committed by a download of plan, where their files are.
func (r *runner) gmailDelivered(b *box, g *gmailFiles, plan *gmailPlan, rows []mail.RowChange) {
	lf := b.folder.(linkFolder)
	for _, c := range rows {
		if c.Row.GmailID == 0 {
			continue
		}
		path, ok, err := lf.Locate(c.Row.Key, c.Row.Flags.System())
		if err != nil || !ok {
			continue // released: a waiting link downloads it
		}
		g.done(plan, c.Row.GmailID, path, c.Row.MessageID)
	}
}

// gmailIDIndex is an index that can be told X-GM-MSGIDs after the fact.
type gmailIDIndex interface {
	SetGmailIDs(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity, ids map[mail.UID]uint64) error
	MissingGmailIDs(ctx context.Context, mailboxID int64, uidvalidity mail.UIDValidity) (int, error)
}

// gmailBackfill records the X-GM-MSGIDs of b's rows that have none: rows
// re-associated after a renumbering or adopted from an existing Maildir
// (matched by their headers, not downloaded), and rows of an index made
// before satchel recorded ids. Their files can then stand in for the
// same message in other mailboxes. The mailbox must be selected. A
// failure is logged, not returned: only links are lost.
func (r *runner) gmailBackfill(ctx context.Context, remote Remote, b *box) {
	gr, ok := remote.(gmailRemote)
	if !ok || !gr.Gmail() {
		return
	}
	ix, ok := indexAs[gmailIDIndex](r.deps.Index)
	if !ok {
		return
	}
	n, err := ix.MissingGmailIDs(ctx, b.mb.ID, b.mb.UIDValidity)
	if err != nil || n == 0 {
		return
	}
	var uids []mail.UID
	err = r.deps.Index.EachMessage(ctx, b.mb.ID, b.mb.UIDValidity, func(m mail.Message) error {
		if m.State.OnServer() {
			uids = append(uids, m.UID)
		}
		return nil
	})
	if err == nil {
		var ids map[mail.UID]uint64
		if ids, err = gr.GmailIDs(ctx, uids); err == nil {
			err = ix.SetGmailIDs(ctx, b.mb.ID, b.mb.UIDValidity, ids)
		}
	}
	if err != nil {
		r.log.Warn("cannot record Gmail message ids: copies in other labels may be downloaded again", "mailbox", b.Name, "err", err)
	}
}

// indexAs returns ix, or the index it wraps, as a T.
func indexAs[T any](ix Index) (T, bool) {
	for {
		if t, ok := ix.(T); ok {
			return t, true
		}
		w, ok := ix.(interface{ unwrapIndex() Index })
		if !ok {
			var zero T
			return zero, false
		}
		ix = w.unwrapIndex()
	}
}
