package qresync_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/satchel-mail/satchel/sync/imapremote/qresync"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

// dovecotSession starts Dovecot with mailbox "Box" holding UIDs 1 to 10,
// and connects go-imap to it through a Conn with QRESYNC enabled.
func dovecotSession(t *testing.T) (*imaptest.Server, *qresync.Conn, *imapclient.Client, *fetchSink) {
	t.Helper()
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.CreateMailbox("Box")
	for i := 1; i <= 10; i++ {
		body := fmt.Sprintf("From: a@example.org\r\nSubject: %d\r\nMessage-ID: <%d@example.org>\r\n\r\nBody %d.\r\n", i, i, i)
		if uid := srv.Append("Box", []byte(body), nil, time.Time{}); uid != uint32(i) {
			t.Fatalf("appended message %d got UID %d", i, uid)
		}
	}

	nc, err := srv.Dial()
	if err != nil {
		t.Fatal(err)
	}
	q := qresync.Wrap(nc)
	sink := newFetchSink()
	ic := imapclient.New(q, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Fetch: sink.fetch},
	})
	t.Cleanup(func() { ic.Close() })
	if err := ic.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	if !ic.Caps().Has(imap.CapQResync) {
		t.Fatalf("Dovecot does not advertise QRESYNC: %v", ic.Caps())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := q.Enable(ctx); err != nil {
		t.Fatalf("Enable: %v", err)
	}
	return srv, q, ic, sink
}

func TestDovecotQResyncSelect(t *testing.T) {
	srv, q, ic, sink := dovecotSession(t)

	first, err := ic.Select("Box", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if first.HighestModSeq == 0 {
		t.Fatal("no HIGHESTMODSEQ")
	}
	// Leave the mailbox, so that the QRESYNC SELECT below is the only
	// source of what the server reports about it.
	if err := ic.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}

	srv.Expunge("Box", 3, 5, 8)
	srv.SetFlags("Box", 2, `\Seen`)
	srv.SetFlags("Box", 9, `\Flagged`)

	if err := q.ArmSelect(first.UIDValidity, first.HighestModSeq, "1:10"); err != nil {
		t.Fatal(err)
	}
	sel, err := ic.Select("Box", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatalf("QRESYNC select: %v", err)
	}
	if sel.NumMessages != 7 || sel.HighestModSeq <= first.HighestModSeq {
		t.Errorf("select: %d messages, HIGHESTMODSEQ %d (was %d)", sel.NumMessages, sel.HighestModSeq, first.HighestModSeq)
	}
	uids, earlier := q.Vanished()
	if got := expand(uids); !slices.Equal(got, []uint32{3, 5, 8}) || !earlier {
		t.Errorf("Vanished() = %v, %v; want 3, 5, 8 (EARLIER)", got, earlier)
	}
	if n := q.SelectFetches(); n != 2 {
		t.Errorf("SelectFetches() = %d, want 2", n)
	}
	if got := sink.wait(t, 2); !slices.Equal(got, []imap.UID{2, 9}) {
		t.Errorf("changed messages reported: UIDs %v, want [2 9]", got)
	}

	// go-imap is still in step.
	msgs, err := ic.Fetch(imap.UIDSet{{Start: 1, Stop: 10}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatalf("UID FETCH after the QRESYNC select: %v", err)
	}
	var left []imap.UID
	for _, m := range msgs {
		left = append(left, m.UID)
	}
	slices.Sort(left)
	if !slices.Equal(left, []imap.UID{1, 2, 4, 6, 7, 9, 10}) {
		t.Errorf("UIDs left: %v", left)
	}

	// The client's own UID EXPUNGE is answered with VANISHED, not EXPUNGE
	// (RFC 7162 §3.2.10).
	if err := ic.Store(imap.UIDSetNum(4, 6), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := ic.UIDExpunge(imap.UIDSetNum(4, 6)).Close(); err != nil {
		t.Fatalf("UID EXPUNGE: %v", err)
	}
	uids, earlier = q.Vanished()
	if got := expand(uids); !slices.Equal(got, []uint32{4, 6}) || earlier {
		t.Errorf("Vanished() after UID EXPUNGE = %v, %v; want 4, 6", got, earlier)
	}
	if err := ic.Noop().Wait(); err != nil {
		t.Fatalf("NOOP after UID EXPUNGE: %v", err)
	}
}

func TestDovecotQResyncReselect(t *testing.T) {
	srv, q, ic, sink := dovecotSession(t)

	first, err := ic.Select("Box", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	// Changes by another session while Box stays selected here: Dovecot
	// may report them live when the SELECT below starts, before its
	// "OK [CLOSED]" (RFC 7162 §3.2.11), and again as its own results.
	srv.Expunge("Box", 6)
	srv.SetFlags("Box", 1, `\Answered`)

	if err := q.ArmSelect(first.UIDValidity, first.HighestModSeq, "1:10"); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.Select("Box", &imap.SelectOptions{CondStore: true}).Wait(); err != nil {
		t.Fatalf("QRESYNC select: %v", err)
	}
	uids, earlier := q.Vanished()
	if got := expand(uids); !slices.Equal(got, []uint32{6}) || !earlier {
		t.Errorf("Vanished() = %v, %v; want 6 (EARLIER)", got, earlier)
	}
	n := q.SelectFetches()
	if n != 1 {
		t.Errorf("SelectFetches() = %d, want 1", n)
	}
	if got := sink.wait(t, n); !slices.Contains(got, 1) {
		t.Errorf("changed messages reported: UIDs %v, want 1 among them", got)
	}

	// A stale UIDVALIDITY makes the server ignore the parameter.
	if err := q.ArmSelect(first.UIDValidity+1, first.HighestModSeq, "1:10"); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.Select("Box", nil).Wait(); err != nil {
		t.Fatalf("select with a stale UIDVALIDITY: %v", err)
	}
	if uids, _ := q.Vanished(); uids != nil {
		t.Errorf("Vanished() = %v for a stale UIDVALIDITY", uids)
	}
	if err := ic.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
}

// expand lists the UIDs of ranges.
func expand(rs []qresync.Range) []uint32 {
	var out []uint32
	for _, r := range rs {
		for u := uint64(r.First); u <= uint64(r.Last); u++ {
			out = append(out, uint32(u))
		}
	}
	return out
}
