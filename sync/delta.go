package sync

import (
	"context"
	"slices"

	"github.com/satchel-mail/satchel/sync/mail"
)

// A delta sync reads only what changed. The sync people run every few
// minutes finds a mailbox of 100,000 messages with a handful changed on the
// server and its folder as the last sync left it: its cost should follow
// the changes, not the mailbox. When
//
//   - the folder's stamp is the one recorded when both sides last agreed,
//     and old enough to trust (stampWait): no file was added, removed or
//     renamed since, so the folder is what the index records; or, where
//     the last run changed the folder and recorded no stamp, the folder
//     is compared with the index now (agreedStamp, in constant memory for
//     a large folder) and agrees;
//   - the server tells what changed since the recorded HIGHESTMODSEQ
//     (QRESYNC, RFC 7162 §3.2.5; or CONDSTORE, §3.1.4.1, with the message
//     count showing that nothing was expunged);
//   - no step is pending and no partial-sync limit needs every row,
//
// learn reads the index rows of the changed and expunged messages only,
// and takes their files from those rows instead of listing the folder.
// QRESYNC is then asked without known UIDs (RFC 7162 §3.2.5.2 lets the
// client leave them out): the server reports every UID expunged since the
// MODSEQ, and those without a row are nothing to this sync.
//
// Everything else (a first sync, a renumbering, a folder that changed, a
// CONDSTORE server that expunged) reads every row, as before.

// deltaReady reports whether a known mailbox can be learned as a delta:
// its folder is as the index records it and nothing needs every row. It
// takes the folder's stamp (b.stamp) when it says yes.
func (r *runner) deltaReady(ctx context.Context, remote Remote, b *box, mb mail.Mailbox) bool {
	o := r.opts
	if remote.Mode() == mail.ModeFull || mb.HighestModSeq == 0 ||
		o.Reindex || o.Force || o.FetchSkipped || o.limited() || b.vanished || b.folderGone {
		return false
	}
	if ins, err := r.deps.Index.Intents(ctx, mb.ID); err != nil || len(ins) > 0 {
		return false
	}
	// Followed from before its stamp is taken: what the run changes in
	// it after, and anything else changed there, is then known by name.
	watch := r.watchFolder(b.rel)
	defer func() {
		if b.watch != watch && watch != nil {
			watch.Close()
		}
	}()
	stamp, latest, err := r.deps.Folder(b.rel).Stamp()
	if err != nil || stampWait(latest) > 0 {
		return false
	}
	if mb.LocalStamp == "" && mb.LocalPath == b.rel && !b.compared {
		// Not known to agree: the last run changed the folder (a delta
		// that downloaded or removed). Compared now, locally, as for a
		// mailbox unchanged on the server; otherwise every row and the
		// whole folder would be read into memory for a few changes. Not
		// again when unchanged already compared them in this run and
		// found them apart.
		mb.LocalStamp = r.agreedStamp(ctx, &box{mailboxEntry: b.mailboxEntry, mb: mb, folder: r.deps.Folder(b.rel)})
	}
	if stamp != mb.LocalStamp {
		return false
	}
	b.stamp = stamp
	b.watch = watch
	return true
}

// learnDelta learns a mailbox deltaReady accepted, once it is selected
// (see the comment at the top of this file). It reports false, having
// learned nothing, when the server's answer needs every row after all: a
// HIGHESTMODSEQ that went backwards or NOMODSEQ, or, with CONDSTORE
// alone, a message count that shows expunges.
func (r *runner) learnDelta(ctx context.Context, remote Remote, b *box, qresync bool, qchanged []mail.RemoteMessage, qgone []mail.UID) (bool, error) {
	mb, st := b.mb, b.st
	if st.HighestModSeq == 0 || st.HighestModSeq < mb.HighestModSeq {
		return false, nil
	}
	var changed []mail.RemoteMessage
	if qresync {
		changed = qchanged
		if st.UIDNext > mb.UIDNext {
			// New messages are above the last UIDNEXT. Asked without
			// known UIDs, QRESYNC reported them too, with flags but no
			// size or date: one FETCH gets all of that.
			changed = slices.DeleteFunc(changed, func(m mail.RemoteMessage) bool { return m.UID >= mb.UIDNext })
			news, err := remote.Since(ctx, mb.UIDNext)
			if err != nil {
				return false, err
			}
			changed = append(changed, news...)
		}
	} else if st.HighestModSeq != mb.HighestModSeq || st.Messages != mb.Messages {
		var err error
		if changed, err = remote.Changes(ctx, mb.HighestModSeq); err != nil {
			return false, err
		}
	}
	uids := make([]mail.UID, 0, len(changed)+len(qgone))
	for _, m := range changed {
		uids = append(uids, m.UID)
	}
	uids = append(uids, qgone...)
	known := newRows(mb.UIDValidity)
	if err := r.deps.Index.MessagesOf(ctx, mb.ID, mb.UIDValidity, uids, func(m mail.Message) error {
		known.add(m)
		return nil
	}); err != nil {
		return false, err
	}
	known.done()
	present, local, err := r.deps.Index.CountRows(ctx, mb.ID, mb.UIDValidity)
	if err != nil {
		return false, err
	}
	if !qresync {
		// With CONDSTORE alone an expunge need not raise HIGHESTMODSEQ
		// (RFC 7162 §3.1): the count tells whether there was one, and
		// finding which needs every UID.
		news := 0
		for _, m := range changed {
			if k, ok := known.get(m.UID); !ok || !k.State.OnServer() {
				news++
			}
		}
		if int(st.Messages) != present+news {
			b.changes = changed // remoteDelta need not ask again
			return false, nil
		}
	}
	b.mode = remote.Mode()
	b.known = known
	b.localFiles = local
	b.gone = map[mail.UID]bool{}
	for _, u := range qgone {
		if known.has(u) {
			b.gone[u] = true
		}
	}
	if err := r.completeNew(ctx, remote, b, changed); err != nil {
		return false, err
	}
	// The folder is as the index records it (deltaReady): each row's file
	// carries its flags, as agreedStamp checked when the stamp was kept.
	b.files = make(map[string]mail.Flags, known.len())
	for m := range known.all() {
		if m.State.OnLocal() {
			b.files[known.sameKey(m.Key)] = m.Flags.Union(m.LocalOnlyFlags).System()
		}
	}
	return true, nil
}

// onServerUIDs lists the UIDs of the known messages on the server, for
// QRESYNC's known-uids; nil for a delta learn, which leaves them out.
func onServerUIDs(known *rows) []mail.UID {
	if known == nil {
		return nil
	}
	uids := []mail.UID{}
	for m := range known.all() {
		if m.State.OnServer() {
			uids = append(uids, m.UID)
		}
	}
	return slices.Clip(uids)
}
