package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Content batches: one UID FETCH streams up to this many messages or
// about this many bytes, as the engine's downloads do, so that an
// interruption costs little.
const (
	batchMessages = 64
	batchBytes    = 16 << 20
)

// contents compares the content of messages found on both sides with the
// same size: the server's BODY[], turned into the stored form, against
// the local file, by SHA-256. Messages an earlier deep run verified (and
// whose file has not changed since) are not fetched again; each match is
// recorded as soon as it is known.
func (v *verifier) contents(ctx context.Context, remote Remote, mr *MailboxResult, folder Folder, uidv mail.UIDValidity, pairs []pair) error {
	progress := v.deps.Progress
	entry := func(p pair) Entry {
		return Entry{Mailbox: mr.Name, UIDValidity: uidv, UID: p.row.UID, Key: p.row.Key, Size: p.info.Size, ModTime: p.info.ModTime.UnixNano()}
	}
	var todo []pair
	for _, p := range pairs {
		if progress != nil && progress.Verified(entry(p)) {
			mr.Resumed++
			continue
		}
		todo = append(todo, p)
	}
	// On Gmail a message shows in the mailbox of each of its labels, with
	// one X-GM-MSGID: its body is fetched once, and its other copies are
	// compared with what that fetch gave. A deep verify of an account in
	// folder mode then downloads each message once, as the sync did.
	var ids map[mail.UID]uint64
	if gr, ok := remote.(gmailRemote); ok && gr.Gmail() && len(todo) > 0 {
		uids := make([]mail.UID, len(todo))
		for i, p := range todo {
			uids[i] = p.row.UID
		}
		var err error
		if ids, err = gr.GmailIDs(ctx, uids); err != nil {
			return err
		}
		rest := todo[:0]
		for _, p := range todo {
			sum, ok := v.gmailSums[ids[p.row.UID]]
			if !ok || ids[p.row.UID] == 0 {
				rest = append(rest, p)
				continue
			}
			if err := v.compare(mr, folder, p, sum, progress, entry(p)); err != nil {
				return err
			}
			mr.Shared++
		}
		todo = rest
	}
	for start := 0; start < len(todo); {
		if err := ctx.Err(); err != nil {
			return err
		}
		end, total := start, int64(0)
		for end < len(todo) && end-start < batchMessages && (end == start || total+todo[end].remote.Size <= batchBytes) {
			total += todo[end].remote.Size
			end++
		}
		batch := todo[start:end]
		start = end
		pending := make(map[mail.UID]pair, len(batch))
		msgs := make([]mail.RemoteMessage, len(batch))
		for i, p := range batch {
			pending[p.row.UID] = p
			msgs[i] = p.remote
		}
		err := remote.FetchBodies(ctx, msgs, func(uid mail.UID, size int64, body io.Reader) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			p, ok := pending[uid]
			if !ok {
				_, err := io.Copy(io.Discard, body)
				return err
			}
			delete(pending, uid)
			remoteSum, err := v.storedSum(body)
			if err != nil {
				return fmt.Errorf("read UID %d: %w", uid, err)
			}
			mr.Deep++
			if id := ids[uid]; id != 0 {
				if v.gmailSums == nil {
					v.gmailSums = map[uint64][]byte{}
				}
				v.gmailSums[id] = remoteSum
			}
			return v.compare(mr, folder, p, remoteSum, progress, entry(p))
		})
		if err != nil {
			return err
		}
		for uid, p := range pending {
			mr.Differences = append(mr.Differences, Difference{Kind: MissingRemote, UID: uid, Key: p.row.Key, Detail: "expunged on the server while being verified"})
		}
	}
	return nil
}

// compare compares a local file with the stored form of the server's
// body, by SHA-256, and records a match.
func (v *verifier) compare(mr *MailboxResult, folder Folder, p pair, remoteSum []byte, progress Progress, e Entry) error {
	localSum, err := fileSum(folder, p.row.Key)
	if err != nil {
		mr.Differences = append(mr.Differences, Difference{Kind: Unreadable, UID: p.row.UID, Key: p.row.Key, Detail: err.Error()})
		return nil
	}
	if !bytes.Equal(remoteSum, localSum) {
		v.log.Warn("content differs", "mailbox", mr.Name, "uid", p.row.UID, "key", p.row.Key)
		mr.Differences = append(mr.Differences, Difference{Kind: Content, UID: p.row.UID, Key: p.row.Key,
			Detail: fmt.Sprintf("same size, different content: SHA-256 %x on the server (as stored), %x locally", remoteSum, localSum)})
		return nil
	}
	if progress != nil {
		return progress.Record(e)
	}
	return nil
}

// gmailRemote is a Remote on Gmail (X-GM-EXT-1).
type gmailRemote interface {
	Gmail() bool
	// GmailIDs returns the X-GM-MSGIDs of uids in the examined mailbox.
	GmailIDs(ctx context.Context, uids []mail.UID) (map[mail.UID]uint64, error)
}

// storedSum hashes a server body as a download would store it.
func (v *verifier) storedSum(body io.Reader) ([]byte, error) {
	h := sha256.New()
	w := v.deps.Stored(h)
	if _, err := io.Copy(w, body); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// fileSum hashes a local file as stored.
func fileSum(folder Folder, key string) ([]byte, error) {
	f, err := folder.Open(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return h.Sum(nil), nil
}
