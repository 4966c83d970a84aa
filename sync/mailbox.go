package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Download batches: one UID FETCH streams up to this many messages or
// about this many bytes, so that a failure costs little and memory stays
// flat (bodies are streamed to files, never held).
const (
	batchMessages = 64
	batchBytes    = 16 << 20
)

// mailbox syncs one mailbox from the server to its local folder.
func (r *runner) mailbox(ctx context.Context, b mailboxEntry) (res MailboxResult) {
	res = MailboxResult{Name: b.Name, Local: b.local}
	log := r.log.With("mailbox", b.Name)

	remote, err := r.remote(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	res.Mode = remote.Mode()
	ix := r.deps.Index
	mb, err := ix.EnsureMailbox(ctx, b.Name, b.local)
	if err != nil {
		res.Err = err
		return res
	}
	st, err := remote.Select(ctx, b.Name)
	if err != nil {
		res.Err = err
		return res
	}
	if mb.UIDValidity != 0 && st.UIDValidity != mb.UIDValidity {
		res.Err = fmt.Errorf("%w in %q (was %d, now %d): the server renumbered its messages; nothing in this mailbox was changed",
			ErrUIDValidityChanged, b.Name, mb.UIDValidity, st.UIDValidity)
		return res
	}
	folder := r.deps.Folder(b.local)
	if !r.opts.DryRun {
		if err := folder.Init(); err != nil {
			res.Err = fmt.Errorf("create folder %s: %w", b.local, err)
			return res
		}
		if mb.UIDValidity == 0 {
			// Record UIDVALIDITY before the first message, so that rows
			// written by an interrupted first sync are never read under
			// another numbering.
			mb.UIDValidity = st.UIDValidity
			if err := ix.SaveMailbox(ctx, mb); err != nil {
				res.Err = err
				return res
			}
		}
	}
	known, err := ix.Messages(ctx, mb.ID, st.UIDValidity)
	if err != nil {
		res.Err = err
		return res
	}

	mode, delta, err := r.remoteDelta(ctx, remote, mb, st, known)
	if err != nil {
		res.Err = err
		return res
	}
	res.Mode = mode
	plan, err := decide(b.Name, st, mode, known, delta, folder.Find)
	if err != nil {
		res.Err = err
		return res
	}
	res.Plan = plan
	if r.opts.DryRun {
		return res
	}
	if err := r.apply(ctx, remote, folder, mb, known, plan, &res, log); err != nil {
		res.Err = err
		return res
	}
	// The index's HIGHESTMODSEQ advances only now that everything it
	// covers is committed (RFC 7162 §3.1: a later CHANGEDSINCE from the
	// old value would otherwise miss what failed).
	mb.UIDNext = st.UIDNext
	mb.HighestModSeq = st.HighestModSeq
	mb.Messages = st.Messages
	mb.Mode = mode
	mb.LastSync = r.opts.Now()
	if err := ix.SaveMailbox(ctx, mb); err != nil {
		res.Err = err
	}
	return res
}

// remoteDelta asks the server what changed since the index's state, as
// cheaply as its capabilities allow, and completes the metadata of new
// messages.
func (r *runner) remoteDelta(ctx context.Context, remote Remote, mb mail.Mailbox, st mail.MailboxStatus, known map[mail.UID]mail.Message) (mail.SyncMode, remoteDelta, error) {
	var d remoteDelta
	mode := remote.Mode()
	incremental := mode != mail.ModeFull && mb.HighestModSeq != 0 && st.HighestModSeq != 0 &&
		st.HighestModSeq >= mb.HighestModSeq
	if mode != mail.ModeFull && !incremental {
		// First sync, NOMODSEQ, or a HIGHESTMODSEQ that went backwards
		// (a restored server): nothing to compare against.
		mode = mail.ModeFull
	}
	if incremental {
		if st.HighestModSeq == mb.HighestModSeq && int(st.Messages) == len(known) {
			// No message changed or arrived since the last sync (both
			// raise HIGHESTMODSEQ, RFC 7162 §3.1.1) and none was
			// expunged: the count still matches.
			return mode, d, nil
		}
		changed, err := remote.Changes(ctx, mb.HighestModSeq)
		if err != nil {
			return mode, d, err
		}
		d.changed = changed
		news := 0
		for _, m := range changed {
			if _, ok := known[m.UID]; !ok {
				news++
			}
		}
		// With CONDSTORE alone an expunge need not raise HIGHESTMODSEQ;
		// the message count tells whether there were any.
		if int(st.Messages) != len(known)+news {
			uids, err := remote.UIDs(ctx)
			if err != nil {
				return mode, d, err
			}
			d.gone = goneUIDs(known, uids)
		}
	} else {
		all, err := remote.Scan(ctx)
		if err != nil {
			return mode, d, err
		}
		d.changed = all
		uids := make([]mail.UID, len(all))
		for i, m := range all {
			uids[i] = m.UID
		}
		d.gone = goneUIDs(known, uids)
	}
	// New messages need size and INTERNALDATE as well as flags.
	var news []mail.UID
	for _, m := range d.changed {
		if _, ok := known[m.UID]; !ok {
			news = append(news, m.UID)
		}
	}
	if len(news) == 0 {
		return mode, d, nil
	}
	meta, err := remote.Meta(ctx, news)
	if err != nil {
		return mode, d, err
	}
	full := make(map[mail.UID]mail.RemoteMessage, len(meta))
	for _, m := range meta {
		full[m.UID] = m
	}
	kept := d.changed[:0]
	for _, m := range d.changed {
		if _, isKnown := known[m.UID]; isKnown {
			kept = append(kept, m)
		} else if fm, ok := full[m.UID]; ok {
			kept = append(kept, fm)
		}
		// A new message missing from Meta was expunged meanwhile.
	}
	d.changed = kept
	return mode, d, nil
}

// apply carries out a plan: downloads, then flag updates, then removals,
// each step committed to the index right after the Maildir change it
// records is durable.
func (r *runner) apply(ctx context.Context, remote Remote, folder Folder, mb mail.Mailbox, known map[mail.UID]mail.Message, p *Plan, res *MailboxResult, log *slog.Logger) error {
	if err := r.download(ctx, remote, folder, mb, p.Download, res, log); err != nil {
		return err
	}
	// New bases are committed together after the renames: if a crash
	// comes between, the next run sees the server's flags on both sides
	// and merges them to the same result.
	var bases []mail.Message
	for _, fc := range p.Flags {
		if err := ctx.Err(); err != nil {
			return err
		}
		if fc.FileChanged {
			if err := folder.SetFlags(fc.Key, fc.File); err != nil {
				return fmt.Errorf("set flags of UID %d: %w", fc.UID, err)
			}
			res.FlagsChanged++
			log.Debug("flags updated", "uid", fc.UID, "flags", fc.File.String())
		}
		if m, ok := known[fc.UID]; ok {
			m.Flags, m.ModSeq = fc.Base, fc.ModSeq
			bases = append(bases, m)
		}
	}
	if len(bases) > 0 {
		if err := r.deps.Index.PutMessages(ctx, mb.ID, bases); err != nil {
			return err
		}
	}
	var removed []mail.UID
	for _, m := range p.Remove {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := folder.Remove(m.Key); err != nil {
			return fmt.Errorf("remove UID %d: %w", m.UID, err)
		}
		removed = append(removed, m.UID)
		res.Removed++
	}
	if len(removed) > 0 {
		if err := r.deps.Index.DeleteMessages(ctx, mb.ID, mb.UIDValidity, removed); err != nil {
			return err
		}
	}
	return nil
}

// download fetches new messages in batches, each streamed from the socket
// into its file; a message's index row is committed after its file is
// durable.
func (r *runner) download(ctx context.Context, remote Remote, folder Folder, mb mail.Mailbox, msgs []mail.RemoteMessage, res *MailboxResult, log *slog.Logger) error {
	byUID := make(map[mail.UID]mail.RemoteMessage, len(msgs))
	for _, m := range msgs {
		byUID[m.UID] = m
	}
	for start := 0; start < len(msgs); {
		end, bytes := start, int64(0)
		for end < len(msgs) && end-start < batchMessages && (end == start || bytes+msgs[end].Size <= batchBytes) {
			bytes += msgs[end].Size
			end++
		}
		batch := make([]mail.UID, 0, end-start)
		for _, m := range msgs[start:end] {
			batch = append(batch, m.UID)
		}
		err := remote.FetchBodies(ctx, batch, func(uid mail.UID, size int64, body io.Reader) error {
			m, ok := byUID[uid]
			if !ok {
				// Not asked for: drain it (the caller must read it all).
				_, err := io.Copy(io.Discard, body)
				return err
			}
			key, msgID, err := folder.Deliver(ctx, body, m.Flags, m.InternalDate)
			if err != nil {
				return fmt.Errorf("download UID %d: %w", uid, err)
			}
			row := mail.Message{
				UIDValidity: mb.UIDValidity, UID: uid, Key: key, Flags: m.Flags, ModSeq: m.ModSeq,
				Size: m.Size, InternalDate: m.InternalDate, MessageID: msgID,
			}
			if err := r.deps.Index.PutMessages(ctx, mb.ID, []mail.Message{row}); err != nil {
				// Without its row the file would look like new local
				// mail on the next run: take it back.
				if rerr := folder.Remove(key); rerr != nil {
					log.Error("cannot remove unrecorded message file", "key", key, "err", rerr)
				}
				return err
			}
			delete(byUID, uid)
			res.Downloaded++
			res.Bytes += m.Size
			log.Debug("downloaded", "uid", uid, "size", m.Size)
			return nil
		})
		if err != nil {
			return err
		}
		start = end
	}
	if len(byUID) > 0 && errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return nil
}
