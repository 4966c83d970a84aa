package imapremote

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/satchel-mail/satchel/sync/imapremote/qresync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// fetchCollector gathers the FETCH responses the server volunteers during
// a QRESYNC SELECT. go-imap hands each to its own goroutine, in no order,
// and possibly after SELECT's tagged reply: SelectChanges waits until it
// has as many as the qresync layer counted.
type fetchCollector struct {
	mu   gosync.Mutex
	cond *gosync.Cond
	msgs []mail.RemoteMessage
	seen int
}

func (f *fetchCollector) handle(msg *imapclient.FetchMessageData) {
	m := readMeta(msg)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cond == nil {
		f.cond = gosync.NewCond(&f.mu)
	}
	f.seen++
	if m.UID != 0 {
		f.msgs = append(f.msgs, mail.RemoteMessage{UID: m.UID, Flags: m.Flags, ModSeq: m.ModSeq})
	}
	f.cond.Broadcast()
}

// reset forgets what was collected, before a SELECT.
func (f *fetchCollector) reset() {
	f.mu.Lock()
	f.msgs, f.seen = nil, 0
	f.mu.Unlock()
}

// wait returns the collected messages once n FETCHes have been handled,
// or after the timeout (the caller then falls back to asking).
func (f *fetchCollector) wait(n int, timeout time.Duration) ([]mail.RemoteMessage, bool) {
	deadline := time.Now().Add(timeout)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cond == nil {
		f.cond = gosync.NewCond(&f.mu)
	}
	for f.seen < n {
		if time.Now().After(deadline) {
			return nil, false
		}
		// Wake up now and then to check the deadline.
		t := time.AfterFunc(50*time.Millisecond, f.cond.Broadcast)
		f.cond.Wait()
		t.Stop()
	}
	return slices.Clone(f.msgs), true
}

// SelectChanges selects a mailbox with QRESYNC (RFC 7162 §3.2.5), giving
// the server the UIDVALIDITY and HIGHESTMODSEQ of the last sync and the
// UIDs known then; the server answers with the messages changed since
// (UID, FLAGS, MODSEQ; new ones included) and, as VANISHED (EARLIER), the
// known UIDs expunged since. If the UIDVALIDITY differs from the one sent
// the server answers as to a plain SELECT: the caller must compare it
// before trusting an empty delta. Only in ModeQResync.
func (c *Client) SelectChanges(ctx context.Context, name string, uidValidity mail.UIDValidity, since mail.ModSeq, known []mail.UID) (mail.MailboxStatus, []mail.RemoteMessage, []mail.UID, error) {
	c.Mode() // the reply to ENABLE QRESYNC, if not awaited yet
	defer c.guard(ctx)()
	if c.selected != "" {
		// RFC 7162 §3.2.11: FETCHes for the old mailbox could otherwise
		// be taken for this one's.
		if err := c.c.Unselect().Wait(); err != nil {
			return mail.MailboxStatus{}, nil, nil, fmt.Errorf("unselect %q: %w", c.selected, c.ioErr(ctx, err))
		}
		c.selected = ""
	}
	c.q.Vanished() // forget what earlier commands reported
	c.fetches.reset()
	if err := c.q.ArmSelect(uint32(uidValidity), uint64(since), uidSetString(known)); err != nil {
		return mail.MailboxStatus{}, nil, nil, fmt.Errorf("select %q with QRESYNC: %w", name, err)
	}
	data, err := c.c.Select(name, &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		return mail.MailboxStatus{}, nil, nil, fmt.Errorf("select %q: %w", name, c.ioErr(ctx, err))
	}
	c.opened(name, false)
	st := mailboxStatus(data)
	st.MailboxID = c.q.SelectMailboxID() // RFC 8474 §4.2
	changed, ok := c.fetches.wait(c.q.SelectFetches(), 10*time.Second)
	if !ok {
		return st, nil, nil, fmt.Errorf("select %q: the server's changes did not all arrive", name)
	}
	ranges, _ := c.q.Vanished()
	var gone []mail.UID
	if known == nil {
		// Without known UIDs the server reports every UID expunged since
		// the MODSEQ (RFC 7162 §3.2.5.2), some perhaps never known here:
		// the caller looks them up. Only UIDs below UIDNEXT can have been
		// known.
		for _, r := range ranges {
			for u := r.First; u <= min(r.Last, uint32(st.UIDNext)-1) && u != 0; u++ {
				gone = append(gone, mail.UID(u))
				if u == math.MaxUint32 {
					break
				}
			}
		}
		return st, changed, gone, nil
	}
	for _, u := range known {
		if inRanges(ranges, uint32(u)) {
			gone = append(gone, u)
		}
	}
	return st, changed, gone, nil
}

func inRanges(rs []qresync.Range, u uint32) bool {
	i, found := slices.BinarySearchFunc(rs, u, func(r qresync.Range, u uint32) int {
		switch {
		case u < r.First:
			return 1
		case u > r.Last:
			return -1
		}
		return 0
	})
	_ = i
	return found
}

// uidSetString writes sorted UIDs as a compact IMAP sequence set.
func uidSetString(uids []mail.UID) string {
	s := slices.Clone(uids)
	slices.Sort(s)
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(s[i]), 10))
		if j > i {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(s[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}
