package sync

import (
	"cmp"
	"context"
	"regexp"
	"slices"
	"strconv"

	"github.com/satchel-mail/satchel/sync/mail"
)

// limbo is the UIDVALIDITY under which the index keeps local messages it
// cannot pair with a server message after a renumbering, an adoption or a
// reindex: their files are neither uploaded nor deleted. No server uses 0
// (RFC 9051 §2.3.1.1: UIDVALIDITY is a non-zero number).
const limbo mail.UIDValidity = 0

// identity is how messages are paired when UIDs cannot say: the same
// Message-ID, size and INTERNALDATE. Message-IDs repeat (a message filed
// twice, a list copy), so pairing takes them as a multiset.
type identity struct {
	id   string
	size int64
	date int64
}

// rebase re-associates a renumbered mailbox's messages with their new
// UIDs (its UIDVALIDITY changed: a server migration, an index rebuild on
// the server) instead of downloading everything again. Each old row is
// paired with a server message of the same identity and keeps its key,
// its base flags and so its pending local changes: offline flag changes
// and deletions still apply. Server messages left unpaired are new and
// downloaded; local messages left unpaired stay local, in limbo, never
// uploaded and never deleted because their old UID vanished.
func (r *runner) rebase(ctx context.Context, remote Remote, b *box, st mail.MailboxStatus) (int, error) {
	ix := r.deps.Index
	mb := b.mb
	old, err := ix.Messages(ctx, mb.ID, mb.UIDValidity)
	if err != nil {
		return 0, err
	}
	server, err := remote.Identify(ctx)
	if err != nil {
		return 0, err
	}
	pool := map[identity][]mail.Message{}
	for _, m := range sortedRows(old) {
		k := identity{m.MessageID, m.Size, m.InternalDate.Unix()}
		pool[k] = append(pool[k], m)
	}
	var changes []mail.RowChange
	paired := 0
	slices.SortFunc(server, func(a, b mail.RemoteMessage) int { return cmp.Compare(a.UID, b.UID) })
	for _, s := range server {
		k := identity{s.MessageID, s.Size, s.InternalDate.Unix()}
		list := pool[k]
		if len(list) == 0 {
			continue
		}
		o := list[0]
		pool[k] = list[1:]
		changes = append(changes, mail.RowChange{MailboxID: mb.ID, Row: o, Delete: true})
		n := o
		n.UIDValidity, n.UID, n.ModSeq = st.UIDValidity, s.UID, s.ModSeq
		if n.State == mail.StateLocalOnly || n.State == mail.StateHeld {
			// On the server after all: both sides have it.
			n.State = mail.StateSynced
		}
		changes = append(changes, mail.RowChange{MailboxID: mb.ID, Row: n})
		paired++
	}
	// What is left locally waits in limbo.
	nextLimbo, err := r.nextLimboUID(ctx, mb.ID)
	if err != nil {
		return 0, err
	}
	kept := 0
	for _, list := range pool {
		for _, o := range list {
			changes = append(changes, mail.RowChange{MailboxID: mb.ID, Row: o, Delete: true})
			if !o.State.OnLocal() {
				continue // on the server only, and gone from it
			}
			n := o
			n.UIDValidity, n.UID, n.State = limbo, nextLimbo, mail.StateLocalOnly
			nextLimbo++
			changes = append(changes, mail.RowChange{MailboxID: mb.ID, Row: n})
			kept++
		}
	}
	if err := ix.Apply(ctx, changes); err != nil {
		return 0, err
	}
	r.log.Warn("mailbox renumbered on the server (UIDVALIDITY changed); messages re-associated",
		"mailbox", b.Name, "was", mb.UIDValidity, "now", st.UIDValidity, "paired", paired, "kept_locally", kept,
		"new_on_server", len(server)-paired)
	// The next delta is a full one.
	b.mb.UIDValidity, b.mb.HighestModSeq, b.mb.UIDNext = st.UIDValidity, 0, 0
	return paired, ix.SaveMailbox(ctx, b.mb)
}

func (r *runner) nextLimboUID(ctx context.Context, mailboxID int64) (mail.UID, error) {
	rows, err := r.deps.Index.Messages(ctx, mailboxID, limbo)
	if err != nil {
		return 0, err
	}
	next := mail.UID(1)
	for u := range rows {
		if u >= next {
			next = u + 1
		}
	}
	return next, nil
}

// uidHint reads the UID another tool put in a file name: mbsync's and
// OfflineIMAP's ",U=123".
var uidHint = regexp.MustCompile(`,U=([0-9]+)`)

// adoptExisting pairs the files of a folder satchel has never synced (a
// Maildir made by mbsync or OfflineIMAP, or copied from elsewhere) with
// the server's messages, so that the first sync neither uploads nor
// downloads what both sides already have. A file is paired by the UID
// its name carries (",U=") when that message has the same Message-ID,
// else by Message-ID and size. Paired messages get no common history:
// their flags settle as conflict.Decide does without a base (the union,
// \Deleted following the server). Unpaired files are new local mail,
// unless reindex is set: then they wait in limbo.
func (r *runner) adoptExisting(ctx context.Context, remote Remote, b *box, reindex bool) (int, error) {
	files, err := b.folder.ScanShared(nil)
	if err != nil || len(files) == 0 {
		return 0, err
	}
	server, err := remote.Identify(ctx)
	if err != nil {
		return 0, err
	}
	byUID := map[mail.UID]int{}
	type idSize2 struct {
		id   string
		size int64
	}
	pool := map[idSize2][]int{}
	for i, s := range server {
		byUID[s.UID] = i
		if s.MessageID != "" {
			pool[idSize2{s.MessageID, s.Size}] = append(pool[idSize2{s.MessageID, s.Size}], i)
		}
	}
	taken := map[int]bool{}
	var changes []mail.RowChange
	var unpaired []string
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		info, err := b.folder.Info(k, files[k])
		if err != nil {
			return 0, err
		}
		pick := -1
		if m := uidHint.FindStringSubmatch(k); m != nil {
			if u, err := strconv.ParseUint(m[1], 10, 32); err == nil {
				// The hint is trusted when the message agrees: the same
				// Message-ID, or, without one, the same size.
				if i, ok := byUID[mail.UID(u)]; ok && !taken[i] && (info.MessageID != "" && server[i].MessageID == info.MessageID ||
					info.MessageID == "" && server[i].MessageID == "" && server[i].Size == info.Size) {
					pick = i
				}
			}
		}
		if pick < 0 && info.MessageID != "" {
			for _, i := range pool[idSize2{info.MessageID, info.Size}] {
				if !taken[i] {
					pick = i
					break
				}
			}
		}
		if pick < 0 && info.MessageID == "" && slices.ContainsFunc(server, func(s mail.RemoteMessage) bool {
			return s.MessageID == "" && s.Size == info.Size
		}) {
			// Without a Message-ID (and without a UID in its name, as in
			// a folder satchel renamed and a crash kept it from
			// recording): the untaken message of the same size and the
			// same header. Unpaired, it would be uploaded and the
			// server's copy downloaded: the message twice on each side.
			exclude := map[mail.UID]bool{}
			for i := range taken {
				exclude[server[i].UID] = true
			}
			u, err := remote.FindNew(ctx, 1, info.Size, info.HeaderHash, exclude)
			if err != nil {
				return 0, err
			}
			if i, ok := byUID[u]; ok && u != 0 && !taken[i] && server[i].MessageID == "" {
				pick = i
			}
		}
		if pick < 0 {
			unpaired = append(unpaired, k)
			continue
		}
		taken[pick] = true
		s := server[pick]
		local := files[k].Union(s.Flags.Keywords())
		changes = append(changes, mail.RowChange{MailboxID: b.mb.ID, Row: mail.Message{
			UIDValidity: b.st.UIDValidity, UID: s.UID, Key: k, Flags: noBaseBase(local, s.Flags),
			ModSeq: 0, Size: s.Size, InternalDate: s.InternalDate, MessageID: s.MessageID,
		}})
	}
	if reindex && len(unpaired) > 0 {
		next, err := r.nextLimboUID(ctx, b.mb.ID)
		if err != nil {
			return 0, err
		}
		for _, k := range unpaired {
			changes = append(changes, mail.RowChange{MailboxID: b.mb.ID, Row: mail.Message{
				UIDValidity: limbo, UID: next, Key: k, Flags: files[k], State: mail.StateLocalOnly}})
			next++
		}
	}
	if len(changes) == 0 {
		return 0, nil
	}
	if err := r.deps.Index.Apply(ctx, changes); err != nil {
		return 0, err
	}
	r.log.Info("adopted existing local messages", "mailbox", b.Name, "paired", len(taken), "unpaired", len(unpaired))
	return len(taken), nil
}

// noBaseBase is the base that makes a three-way merge settle two sides
// with no common history the way conflict.Decide does without a base:
// every flag set on either side is kept (the base holds only what both
// have), except \Deleted, which follows the server (the base holds the
// local value, so only the server's counts as a change).
func noBaseBase(local, remote mail.Flags) mail.Flags {
	base := local.Minus(local.Minus(remote))
	return base.With(mail.FlagDeleted, local.Has(mail.FlagDeleted))
}
