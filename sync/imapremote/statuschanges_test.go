package imapremote

import (
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/sync/mail"
)

// TestStatusChanges: after this client's STORE and APPEND and another
// client's flag change, StatusChanges reports the mailbox's status as a
// fresh STATUS does and exactly the messages changed since the MODSEQ
// given, with the flags and MODSEQ the server holds; both commands leave
// before the first answer is read. Without CONDSTORE it sends nothing and
// vouches for nothing.
func TestStatusChanges(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		var u [4]uint32
		for i := range u {
			u[i] = e.srv.Append("INBOX", writeMessage(i), nil, writeDate)
		}
		st0 := e.selectBox(t, "INBOX")
		if _, err := e.c.Store(t.Context(), []FlagChange{{UID: mail.UID(u[0]), Add: writeFlags(`\Seen`)}}); err != nil {
			t.Fatalf("Store: %v", err)
		}
		e.srv.AddFlags("INBOX", u[2], `\Flagged`)
		body := writeMessage(9)
		_, added, err := e.c.Append(t.Context(), "INBOX", writeFlags(`\Seen`), writeDate, int64(len(body)), strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("Append: %v", err)
		}

		mark := e.mark()
		st, changed, ok, err := e.c.StatusChanges(t.Context(), "INBOX", st0.HighestModSeq)
		if err != nil {
			t.Fatalf("StatusChanges: %v", err)
		}
		trace := e.since(mark)
		if !e.mode.condStore {
			if ok || len(clientLines(trace)) != 0 {
				t.Fatalf("without CONDSTORE: ok %v, sent %q", ok, clientLines(trace))
			}
			return
		}
		if !ok {
			t.Fatal("StatusChanges did not vouch for the mailbox")
		}
		fresh, err := e.c.Status(t.Context(), "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		if st.UIDValidity != fresh.UIDValidity || st.UIDNext != fresh.UIDNext || st.Messages != fresh.Messages || st.HighestModSeq != fresh.HighestModSeq {
			t.Errorf("status %+v, a fresh STATUS says %+v", st, fresh)
		}
		if st.UIDNext <= st0.UIDNext || st.Messages != st0.Messages+1 || st.HighestModSeq <= st0.HighestModSeq {
			t.Errorf("status %+v did not move on from %+v", st, st0)
		}

		var uids []mail.UID
		for _, m := range changed {
			uids = append(uids, m.UID)
		}
		slices.Sort(uids)
		want := []mail.UID{mail.UID(u[0]), mail.UID(u[2])}
		if added != 0 {
			want = append(want, added)
		}
		if !slices.Equal(uids, want) {
			t.Fatalf("changed UIDs %v, want %v", uids, want)
		}
		now := e.meta(t, u[0], u[2], uint32(added))
		for _, m := range changed {
			if n := now[m.UID]; !m.Flags.Equal(n.Flags) || m.ModSeq != n.ModSeq || m.ModSeq <= st0.HighestModSeq || m.ModSeq > st.HighestModSeq {
				t.Errorf("UID %d: flags %q MODSEQ %d; server %q MODSEQ %d; HIGHESTMODSEQ %d then %d", m.UID, m.Flags, m.ModSeq, n.Flags, n.ModSeq, st0.HighestModSeq, st.HighestModSeq)
			}
		}

		// STATUS, then the FETCH. (That the FETCH leaves before the
		// STATUS is answered a real server cannot show reliably: it may
		// answer between the two writes. The bench counts the round
		// trips.)
		var order []string
		for line := range strings.Lines(trace) {
			if strings.HasPrefix(line, "C: ") {
				f := strings.Fields(line)
				order = append(order, "C "+strings.Join(f[2:min(4, len(f))], " "))
			}
		}
		if len(order) != 2 || order[0] != "C STATUS INBOX" || order[1] != "C UID FETCH" {
			t.Fatalf("sent %q, want STATUS then UID FETCH", order)
		}
	})
}

// TestStatusChangesNotSelected: the mailbox asked about must be the one
// selected; nothing is sent otherwise.
func TestStatusChangesNotSelected(t *testing.T) {
	e := writeEnv{mode: writeModes[0], srv: writeModes[0].start(t), trace: &traceBuffer{}}
	e.c = connect(t, e.srv, e.trace)
	e.srv.CreateMailbox("Other")
	st := e.selectBox(t, "INBOX")
	mark := e.mark()
	if _, _, ok, err := e.c.StatusChanges(t.Context(), "Other", st.HighestModSeq+1); err == nil || ok {
		t.Fatalf("StatusChanges of an unselected mailbox: ok %v, err %v", ok, err)
	}
	if sent := clientLines(e.since(mark)); len(sent) != 0 {
		t.Fatalf("sent %q", sent)
	}
}
