package verify

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/satchel-mail/satchel/sync/mail"
)

// limbo is the UIDVALIDITY under which the index keeps local messages it
// could not pair with a server message (see the engine's rebase): local
// only by policy. No server uses 0 (RFC 9051 §2.3.1.1).
const limbo mail.UIDValidity = 0

// pair is a message found on both sides, for the content comparison.
type pair struct {
	row    mail.Message
	remote mail.RemoteMessage
	info   mail.LocalInfo
}

// mailbox verifies one listed mailbox; row is its index row, nil if the
// index has none. An error means the mailbox could not be verified to the
// end; mr holds what was found before.
func (v *verifier) mailbox(ctx context.Context, remote Remote, mr *MailboxResult, row *mail.Mailbox) error {
	st, err := remote.Examine(ctx, mr.Name)
	if err != nil {
		return err
	}
	var server []mail.RemoteMessage
	if st.Messages > 0 {
		if server, err = remote.Since(ctx, 1); err != nil {
			return err
		}
	}
	mr.Remote = len(server)
	folder := v.deps.Folder(mr.Local)
	files, err := folder.Scan()
	if err != nil {
		return fmt.Errorf("list folder %s: %w", mr.Local, err)
	}
	mr.Files = len(files)
	diff := func(d Difference) { mr.Differences = append(mr.Differences, d) }

	if row == nil || row.UIDValidity == 0 {
		if len(server)+len(files) > 0 {
			diff(Difference{Kind: NotSynced, Detail: fmt.Sprintf("never synced: %d messages on the server, %d files in %s", len(server), len(files), mr.Local)})
		}
		return nil
	}
	if row.UIDValidity != st.UIDValidity {
		diff(Difference{Kind: Renumbered, Detail: fmt.Sprintf("the server renumbered this mailbox (UIDVALIDITY %d, the index has %d): its messages cannot be compared until a sync re-associates them", st.UIDValidity, row.UIDValidity)})
		return nil
	}
	ix := v.deps.Index
	known, err := ix.Messages(ctx, row.ID, row.UIDValidity)
	if err != nil {
		return fmt.Errorf("read the index: %w", err)
	}
	limboRows, err := ix.Messages(ctx, row.ID, limbo)
	if err != nil {
		return fmt.Errorf("read the index: %w", err)
	}
	intents, err := ix.Intents(ctx, row.ID)
	if err != nil {
		return fmt.Errorf("read the index: %w", err)
	}
	// Files and messages an interrupted sync was handling are neither
	// known nor unknown until a sync completes the steps.
	pendingKeys := map[string]bool{}
	if len(intents) > 0 {
		for _, in := range intents {
			pendingKeys[in.Key] = true
		}
		diff(Difference{Kind: Pending, Detail: fmt.Sprintf("an interrupted sync left %d steps; the next sync completes them", len(intents))})
	}

	byUID := make(map[mail.UID]mail.RemoteMessage, len(server))
	for _, m := range server {
		byUID[m.UID] = m
	}
	keys := map[string]bool{}
	var both []pair
	for _, r := range sortedRows(known) {
		keys[r.Key] = true
		srv, onServer := byUID[r.UID]
		flags, onLocal := files[r.Key]
		if !onLocal && r.State.OnLocal() {
			// Not in the listing: a mail reader may have renamed it under
			// the listing; look again in cur/ and new/.
			f, ok, err := folder.Find(r.Key)
			if err != nil {
				return fmt.Errorf("look up %s in %s: %w", r.Key, mr.Local, err)
			}
			flags, onLocal = f, ok
		}
		if r.State.OnServer() && !onServer && !pendingKeys[r.Key] {
			diff(Difference{Kind: MissingRemote, UID: r.UID, Key: keyIfLocal(r, onLocal), Detail: "the index has it on the server, the server does not"})
		}
		if r.State.OnLocal() && !onLocal {
			diff(Difference{Kind: MissingLocal, UID: r.UID, Key: r.Key, Detail: "the index has it in the Maildir, its file is gone"})
		}
		if r.State != mail.StateSynced || !onServer || !onLocal {
			continue
		}
		mr.Compared++
		info, err := folder.Info(r.Key, flags)
		if err != nil {
			diff(Difference{Kind: Unreadable, UID: r.UID, Key: r.Key, Detail: err.Error()})
			continue
		}
		if info.Size != srv.Size {
			diff(Difference{Kind: Size, UID: r.UID, Key: r.Key, Detail: fmt.Sprintf("%d bytes on the server, %d locally (with CRLF line ends)", srv.Size, info.Size)})
		} else {
			both = append(both, pair{row: r, remote: srv, info: info})
		}
		// Flags the server cannot store stay local by design.
		localOnly := r.LocalOnlyFlags
		if s, l := srv.Flags.System().Minus(localOnly), flags.System().Minus(localOnly); !s.Equal(l) {
			diff(Difference{Kind: Flags, UID: r.UID, Key: r.Key, Detail: fmt.Sprintf("server %s, file %s", quoteFlags(s), quoteFlags(l))})
		}
		if s, l := srv.Flags.Keywords().Minus(localOnly), r.Flags.Keywords().Minus(localOnly); !s.Equal(l) {
			diff(Difference{Kind: Keywords, UID: r.UID, Key: r.Key, Detail: fmt.Sprintf("server %s, index %s", quoteFlags(s), quoteFlags(l))})
		}
	}
	for _, r := range sortedRows(limboRows) {
		keys[r.Key] = true
		if _, ok := files[r.Key]; ok {
			continue
		}
		if _, ok, err := folder.Find(r.Key); err != nil {
			return fmt.Errorf("look up %s in %s: %w", r.Key, mr.Local, err)
		} else if !ok {
			diff(Difference{Kind: MissingLocal, Key: r.Key, Detail: "the index keeps it locally (not paired with a server message), its file is gone"})
		}
	}
	for _, m := range server {
		if _, ok := known[m.UID]; !ok {
			diff(Difference{Kind: UnknownRemote, UID: m.UID, Detail: fmt.Sprintf("on the server (%d bytes), not in the index: not downloaded yet", m.Size)})
		}
	}
	for _, k := range sortedKeys(files) {
		if !keys[k] && !pendingKeys[k] {
			diff(Difference{Kind: UnknownLocal, Key: k, Detail: "a file in " + mr.Local + " the index does not know: not uploaded yet"})
		}
	}
	if v.opts.Deep {
		return v.contents(ctx, remote, mr, folder, row.UIDValidity, both)
	}
	return nil
}

// keyIfLocal names a row's file only when it exists.
func keyIfLocal(r mail.Message, onLocal bool) string {
	if onLocal {
		return r.Key
	}
	return ""
}

func quoteFlags(f mail.Flags) string {
	if f.Len() == 0 {
		return "(none)"
	}
	return `"` + f.String() + `"`
}

func sortedRows(m map[mail.UID]mail.Message) []mail.Message {
	out := make([]mail.Message, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b mail.Message) int { return cmp.Compare(a.UID, b.UID) })
	return out
}

func sortedKeys(m map[string]mail.Flags) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
