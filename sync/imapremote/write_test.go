package imapremote

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

var writeDate = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// TestStore adds and removes flags and a keyword, and checks the result
// against what the server then holds.
func TestStore(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		u1 := e.srv.Append("INBOX", writeMessage(1), nil, writeDate)
		u2 := e.srv.Append("INBOX", writeMessage(2), nil, writeDate)
		u3 := e.srv.Append("INBOX", writeMessage(3), []string{`\Flagged`, "$Old"}, writeDate)
		u4 := e.srv.Append("INBOX", writeMessage(4), []string{`\Seen`}, writeDate)
		e.selectBox(t, "INBOX")
		before := e.meta(t, u1, u2, u3, u4)

		mark := e.mark()
		got, err := e.c.Store(t.Context(), []FlagChange{
			{UID: mail.UID(u1), Add: writeFlags(`\Seen`)},
			{UID: mail.UID(u3), Add: writeFlags("$Label1", `\Answered`), Remove: writeFlags(`\Flagged`)},
			{UID: mail.UID(u2), Add: writeFlags(`\Seen`)},
			{UID: mail.UID(u4), Remove: writeFlags(`\Seen`)},
		})
		if err != nil {
			t.Fatalf("Store: %v", err)
		}
		trace := e.since(mark)

		want := map[uint32][]string{
			u1: {`\Seen`}, u2: {`\Seen`}, u3: {"$Label1", "$Old", `\Answered`}, u4: nil,
		}
		server := e.onServer(t, "INBOX")
		after := e.meta(t, u1, u2, u3, u4)
		for uid, flags := range want {
			r, ok := got[mail.UID(uid)]
			if !ok {
				t.Errorf("UID %d missing from the result", uid)
				continue
			}
			if !flagsMatch(r.Flags, flags) || !flagsMatch(r.Flags, server[uid].Flags) {
				t.Errorf("UID %d: result flags %q, server has %q, want %q", uid, r.Flags, server[uid].Flags, flags)
			}
			if r.ModSeq != after[mail.UID(uid)].ModSeq {
				t.Errorf("UID %d: result MODSEQ %d, server says %d", uid, r.ModSeq, after[mail.UID(uid)].ModSeq)
			}
			if e.mode.condStore && r.ModSeq <= before[mail.UID(uid)].ModSeq {
				t.Errorf("UID %d: MODSEQ %d did not grow from %d", uid, r.ModSeq, before[mail.UID(uid)].ModSeq)
			}
			if !e.mode.condStore && r.ModSeq != 0 {
				t.Errorf("UID %d: MODSEQ %d without CONDSTORE", uid, r.ModSeq)
			}
		}
		if len(got) != len(want) {
			t.Errorf("result has %d messages, want %d", len(got), len(want))
		}

		stores := tracedCommands(trace, "STORE")
		var seen []string
		for _, l := range stores {
			if strings.Contains(strings.ToUpper(l), ".SILENT") {
				t.Errorf("silent STORE sent: %q", l)
			}
			if strings.Contains(l, `+FLAGS (\Seen)`) {
				seen = append(seen, l)
			}
		}
		// u1 and u2 have the same change: one command for both.
		if len(seen) != 1 || !strings.Contains(seen[0], " "+wireUIDSet(u1, u2)+" ") {
			t.Errorf("want one +FLAGS (\\Seen) for UIDs %s, got %q", wireUIDSet(u1, u2), seen)
		}
		if len(stores) != 4 { // \Seen on u1,u2; + and - on u3; - on u4
			t.Errorf("sent %d STOREs, want 4:\n%s", len(stores), strings.Join(stores, "\n"))
		}
	})
}

// TestStoreConditional: a change conditional on a MODSEQ that the message
// has since left behind is refused and leaves the server's flags alone;
// without CONDSTORE the condition is dropped and the change applies.
func TestStoreConditional(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		var u [6]uint32
		for i := range u {
			u[i] = e.srv.Append("INBOX", writeMessage(i), []string{`\Answered`}, writeDate)
		}
		e.selectBox(t, "INBOX")
		base := e.meta(t, u[:]...)
		ms := func(i int) mail.ModSeq {
			if !e.mode.condStore {
				return 7 // any value: it must not be sent
			}
			return base[mail.UID(u[i])].ModSeq
		}
		// Another client changes 1 and 5 after the MODSEQs were read; on 5
		// it makes the very change that is asked for below.
		e.srv.AddFlags("INBOX", u[1], `\Flagged`)
		e.srv.AddFlags("INBOX", u[5], `\Seen`)
		mark := e.mark()
		got, err := e.c.Store(t.Context(), []FlagChange{
			{UID: mail.UID(u[0]), Add: writeFlags(`\Seen`), UnchangedSince: ms(0)},
			{UID: mail.UID(u[1]), Add: writeFlags(`\Seen`), UnchangedSince: ms(1)},
			{UID: mail.UID(u[4]), Remove: writeFlags(`\Answered`), UnchangedSince: ms(4)},
			{UID: mail.UID(u[5]), Add: writeFlags(`\Seen`), UnchangedSince: ms(5)},
		})
		if err != nil {
			t.Fatalf("Store: %v", err)
		}
		// Adding and removing at once is one STORE FLAGS under the
		// condition; another client changes 3 first.
		e.srv.AddFlags("INBOX", u[3], `\Flagged`)
		got2, err := e.c.Store(t.Context(), []FlagChange{
			{UID: mail.UID(u[2]), Add: writeFlags(`\Seen`), Remove: writeFlags(`\Answered`), UnchangedSince: ms(2)},
			{UID: mail.UID(u[3]), Add: writeFlags(`\Seen`), Remove: writeFlags(`\Answered`), UnchangedSince: ms(3)},
		})
		if err != nil {
			t.Fatalf("Store: %v", err)
		}
		maps.Copy(got, got2)
		trace := e.since(mark)
		server := e.onServer(t, "INBOX")

		var want map[uint32][]string // UID → flags, for those in the result
		if e.mode.condStore {
			want = map[uint32][]string{u[0]: {`\Answered`, `\Seen`}, u[2]: {`\Seen`}, u[4]: nil}
			// Refused: the other client's flags stand, nothing of ours.
			for uid, flags := range map[uint32][]string{
				u[1]: {`\Answered`, `\Flagged`},
				u[3]: {`\Answered`, `\Flagged`},
				u[5]: {`\Answered`, `\Seen`},
			} {
				if !flagsMatch(writeFlags(server[uid].Flags...), flags) {
					t.Errorf("refused UID %d: server has %q, want %q", uid, server[uid].Flags, flags)
				}
			}
			if !strings.Contains(trace, "UNCHANGEDSINCE") {
				t.Errorf("no UNCHANGEDSINCE sent:\n%s", trace)
			}
		} else {
			want = map[uint32][]string{
				u[0]: {`\Answered`, `\Seen`}, u[1]: {`\Answered`, `\Flagged`, `\Seen`},
				u[2]: {`\Seen`}, u[3]: {`\Flagged`, `\Seen`}, u[4]: nil, u[5]: {`\Answered`, `\Seen`},
			}
			if strings.Contains(strings.ToUpper(trace), "UNCHANGEDSINCE") {
				t.Errorf("UNCHANGEDSINCE sent to a server without CONDSTORE:\n%s", trace)
			}
		}
		after := e.meta(t, u[:]...)
		for _, uid := range u {
			r, ok := got[mail.UID(uid)]
			flags, wanted := want[uid]
			if ok != wanted {
				t.Errorf("UID %d in result: %v, want %v", uid, ok, wanted)
				continue
			}
			if !ok {
				continue
			}
			if !flagsMatch(r.Flags, flags) || !flagsMatch(r.Flags, server[uid].Flags) {
				t.Errorf("UID %d: result flags %q, server has %q, want %q", uid, r.Flags, server[uid].Flags, flags)
			}
			if r.ModSeq != after[mail.UID(uid)].ModSeq {
				t.Errorf("UID %d: result MODSEQ %d, server says %d", uid, r.ModSeq, after[mail.UID(uid)].ModSeq)
			}
		}
	})
}

// TestStoreNoOpAndGone: a change the message already shows is confirmed
// (Dovecot answers it with no FETCH), an expunged message is absent.
func TestStoreNoOpAndGone(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		u1 := e.srv.Append("INBOX", writeMessage(1), []string{`\Seen`}, writeDate)
		u2 := e.srv.Append("INBOX", writeMessage(2), []string{`\Seen`}, writeDate)
		u3 := e.srv.Append("INBOX", writeMessage(3), nil, writeDate)
		e.selectBox(t, "INBOX")
		base := e.meta(t, u1, u2, u3)
		e.srv.Expunge("INBOX", u3)

		got, err := e.c.Store(t.Context(), []FlagChange{
			{UID: mail.UID(u1), Add: writeFlags(`\Seen`)},
			{UID: mail.UID(u2), Add: writeFlags(`\Seen`), Remove: writeFlags(`\Draft`), UnchangedSince: base[mail.UID(u2)].ModSeq},
			{UID: mail.UID(u3), Add: writeFlags(`\Seen`)},
		})
		if err != nil {
			t.Fatalf("Store: %v", err)
		}
		for _, uid := range []uint32{u1, u2} {
			r, ok := got[mail.UID(uid)]
			if !ok || !flagsMatch(r.Flags, []string{`\Seen`}) {
				t.Errorf("UID %d: result %+v, %v; want \\Seen", uid, r, ok)
			}
			if e.mode.condStore && r.ModSeq != base[mail.UID(uid)].ModSeq {
				t.Errorf("UID %d: MODSEQ %d after a no-op, was %d", uid, r.ModSeq, base[mail.UID(uid)].ModSeq)
			}
		}
		if r, ok := got[mail.UID(u3)]; ok {
			t.Errorf("expunged UID %d in the result: %+v", u3, r)
		}
	})
}

// TestStoreInvalid: malformed changes are refused before anything is sent.
func TestStoreInvalid(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		e.selectBox(t, "INBOX")
		for name, changes := range map[string][]FlagChange{
			"twice":          {{UID: 1, Add: writeFlags(`\Seen`)}, {UID: 1, Remove: writeFlags(`\Flagged`)}},
			"add and remove": {{UID: 1, Add: writeFlags(`\Seen`), Remove: writeFlags(`\Seen`)}},
			"uid 0":          {{UID: 0, Add: writeFlags(`\Seen`)}},
			"injection":      {{UID: 1, Add: writeFlags("a)\r\nX DELETE INBOX")}},
			"wildcard":       {{UID: 1, Add: writeFlags(`\*`)}},
		} {
			mark := e.mark()
			if _, err := e.c.Store(t.Context(), changes); err == nil {
				t.Errorf("%s: Store succeeded", name)
			}
			if l := clientLines(e.since(mark)); len(l) > 0 {
				t.Errorf("%s: sent %q", name, l)
			}
		}
	})
}

// TestAppend uploads a message with flags and a date. With UIDPLUS its UID
// is returned; without, 0 even though Dovecot sends APPENDUID anyway, and
// FindNew finds it.
func TestAppend(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		e.srv.CreateMailbox("Archive")
		e.selectBox(t, "Archive")
		body := writeMessage(1)
		date := time.Date(2024, 2, 29, 23, 59, 58, 0, time.FixedZone("", 5*3600+1800))
		flags := writeFlags(`\Seen`, `\Answered`, "$Label1")

		mark := e.mark()
		uv, uid, err := e.c.Append(t.Context(), "Archive", flags, date, int64(len(body)), bytes.NewReader(body))
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		trace := e.since(mark)
		if l := tracedCommands(trace, "APPEND"); len(l) != 1 || strings.Contains(l[0], `\Recent`) {
			t.Errorf("APPEND lines %q", l)
		}
		server := e.srv.Messages("Archive")
		if len(server) != 1 {
			t.Fatalf("Archive holds %d messages, want 1", len(server))
		}
		m := server[0]
		if !bytes.Equal(m.Body, body) || !flagsMatch(flags, m.Flags) || !m.Date.Equal(date) {
			t.Errorf("server has %q %q %v, want %q %q %v", m.Body, m.Flags, m.Date, body, flags, date)
		}
		if e.mode.uidPlus {
			if uid != mail.UID(m.UID) || uv != mail.UIDValidity(e.srv.UIDValidity("Archive")) {
				t.Errorf("Append returned %d/%d, server has UID %d, UIDVALIDITY %d", uv, uid, m.UID, e.srv.UIDValidity("Archive"))
			}
			return
		}
		if uid != 0 || uv != 0 {
			t.Errorf("Append returned %d/%d without UIDPLUS", uv, uid)
		}
		if !strings.Contains(trace, "APPENDUID") {
			t.Errorf("Dovecot sent no APPENDUID: the test no longer shows that it is ignored")
		}
		found, err := e.c.FindNew(t.Context(), 1, int64(len(body)), HeaderHash(body), nil)
		if err != nil || found != mail.UID(m.UID) {
			t.Errorf("FindNew = %d, %v; want %d", found, err, m.UID)
		}
	})
}

// TestFindNew tells apart messages with the same header by size, skips
// excluded and older UIDs, and hashes headers as the server cuts them.
func TestFindNew(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		head := "From: a@example.org\r\nSubject: same\r\nMessage-ID: <same@example.org>\r\n\r\n"
		short := []byte(head + "short\r\n")
		long := []byte(head + "a longer body\r\n")
		old := e.srv.Append("INBOX", short, nil, writeDate)
		st := e.selectBox(t, "INBOX")
		appendIt := func(body []byte) {
			t.Helper()
			if _, _, err := e.c.Append(t.Context(), "INBOX", mail.Flags{}, writeDate, int64(len(body)), bytes.NewReader(body)); err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		appendIt(long)
		appendIt(short)
		appendIt(short)
		noHeader := []byte("Subject: no body, no line end")
		emptyHeader := []byte("\r\nonly a body\r\n")
		appendIt(noHeader)
		appendIt(emptyHeader)
		ids := e.srv.Messages("INBOX")
		if len(ids) != 6 {
			t.Fatalf("INBOX holds %d messages, want 6", len(ids))
		}
		uLong, uShort1, uShort2 := mail.UID(ids[1].UID), mail.UID(ids[2].UID), mail.UID(ids[3].UID)

		for _, tc := range []struct {
			name    string
			from    mail.UID
			body    []byte
			exclude map[mail.UID]bool
			want    mail.UID
		}{
			{"short", st.UIDNext, short, nil, uShort1},
			{"long", st.UIDNext, long, nil, uLong},
			{"exclude", st.UIDNext, short, map[mail.UID]bool{uShort1: true}, uShort2},
			{"exclude all", st.UIDNext, short, map[mail.UID]bool{uShort1: true, uShort2: true}, 0},
			{"from 0 finds the old one", 0, short, nil, mail.UID(old)},
			{"above the last", mail.UID(ids[5].UID) + 1, emptyHeader, nil, 0},
			// go-imap's server has no BODY[HEADER] for a message without
			// an empty line: such a message is not found there.
			{"no header end", st.UIDNext, noHeader, nil, map[bool]mail.UID{true: mail.UID(ids[4].UID)}[e.srv.Kind == "dovecot"]},
			{"empty header", st.UIDNext, emptyHeader, nil, mail.UID(ids[5].UID)},
			{"other header", st.UIDNext, []byte("Subject: other\r\n\r\nshort\r\n"), nil, 0},
		} {
			got, err := e.c.FindNew(t.Context(), tc.from, int64(len(tc.body)), HeaderHash(tc.body), tc.exclude)
			if err != nil || got != tc.want {
				t.Errorf("%s: FindNew = %d, %v; want %d", tc.name, got, err, tc.want)
			}
		}
	})
}

func TestHeaderHash(t *testing.T) {
	for _, tc := range []struct{ msg, head string }{
		{"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore", "A: 1\r\nB: 2\r\n\r\n"},
		{"A: 1\r\n\r\n", "A: 1\r\n\r\n"},
		{"A: 1\r\n", "A: 1\r\n"},
		{"A: 1", "A: 1"},
		{"\r\nbody\r\n\r\n", "\r\n"},
		{"", ""},
		{"A: 1\n\nB", "A: 1\n\nB"}, // bare LF is not a line end here
	} {
		if HeaderHash([]byte(tc.msg)) != sha256.Sum256([]byte(tc.head)) {
			t.Errorf("HeaderHash(%q) is not the hash of %q", tc.msg, tc.head)
		}
		if HeaderHash([]byte(tc.msg)) != HeaderHash([]byte(tc.head)) {
			t.Errorf("HeaderHash(%q) differs from that of its header", tc.msg)
		}
	}
}

// TestMove moves with MOVE, or refuses without sending anything.
func TestMove(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		e.srv.CreateMailbox("Dest")
		u1 := e.srv.Append("INBOX", writeMessage(1), []string{`\Seen`}, writeDate)
		u2 := e.srv.Append("INBOX", writeMessage(2), []string{`\Deleted`}, writeDate)
		e.selectBox(t, "INBOX")

		mark := e.mark()
		got, err := e.c.Move(t.Context(), []mail.UID{mail.UID(u1)}, "Dest")
		trace := e.since(mark)
		inbox, dest := e.onServer(t, "INBOX"), e.srv.Messages("Dest")
		if !e.mode.move {
			if !errors.Is(err, ErrNoMove) {
				t.Errorf("Move without MOVE: %v, want ErrNoMove", err)
			}
			if l := clientLines(trace); len(l) > 0 {
				t.Errorf("Move without MOVE sent %q", l)
			}
			if len(inbox) != 2 || len(dest) != 0 {
				t.Errorf("INBOX has %d, Dest %d messages; want 2 and 0", len(inbox), len(dest))
			}
			return
		}
		if err != nil {
			t.Fatalf("Move: %v", err)
		}
		if len(dest) != 1 || !bytes.Equal(dest[0].Body, writeMessage(1)) || !flagsMatch(writeFlags(`\Seen`), dest[0].Flags) {
			t.Fatalf("Dest holds %+v", dest)
		}
		if want := map[mail.UID]mail.UID{mail.UID(u1): mail.UID(dest[0].UID)}; len(got) != 1 || got[mail.UID(u1)] != want[mail.UID(u1)] {
			t.Errorf("Move returned %v, want %v", got, want)
		}
		if _, ok := inbox[u1]; ok {
			t.Errorf("UID %d still in INBOX", u1)
		}
		if _, ok := inbox[u2]; !ok {
			t.Errorf("UID %d, flagged \\Deleted by someone else, is gone from INBOX", u2)
		}
		if l := tracedCommands(trace, "MOVE"); len(l) != 1 {
			t.Errorf("MOVE lines %q", l)
		}
	})
}

// TestCopy maps old UIDs to new ones from COPYUID, and only trusts it when
// UIDPLUS is advertised.
func TestCopy(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		e.srv.CreateMailbox("Dest")
		e.srv.Append("Dest", writeMessage(9), nil, writeDate) // so new UIDs differ from the old
		var u []uint32
		for i := range 4 {
			u = append(u, e.srv.Append("INBOX", writeMessage(i), nil, writeDate))
		}
		e.selectBox(t, "INBOX")

		mark := e.mark()
		got, err := e.c.Copy(t.Context(), []mail.UID{mail.UID(u[3]), mail.UID(u[0]), mail.UID(u[2])}, "Dest")
		if err != nil {
			t.Fatalf("Copy: %v", err)
		}
		if n := len(e.srv.Messages("INBOX")); n != 4 {
			t.Errorf("INBOX holds %d messages after Copy, want 4", n)
		}
		dest := e.srv.Messages("Dest")[1:]
		if len(dest) != 3 {
			t.Fatalf("Dest holds %d copies, want 3", len(dest))
		}
		if !e.mode.uidPlus {
			if len(got) != 0 {
				t.Errorf("Copy without UIDPLUS returned %v", got)
			}
			if !strings.Contains(e.since(mark), "COPYUID") {
				t.Errorf("Dovecot sent no COPYUID: the test no longer shows that it is ignored")
			}
			return
		}
		byBody := map[string]mail.UID{}
		for _, m := range dest {
			byBody[string(m.Body)] = mail.UID(m.UID)
		}
		for _, i := range []int{0, 2, 3} {
			if want := byBody[string(writeMessage(i))]; got[mail.UID(u[i])] != want || want == 0 {
				t.Errorf("UID %d → %d, want %d", u[i], got[mail.UID(u[i])], want)
			}
		}
		if len(got) != 3 {
			t.Errorf("Copy returned %v", got)
		}
	})
}

// TestExpunge removes exactly the given messages, and without UIDPLUS
// refuses to when another message is flagged \Deleted.
func TestExpunge(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		var u []uint32
		for i := range 4 {
			u = append(u, e.srv.Append("INBOX", writeMessage(i), nil, writeDate))
		}
		e.srv.AddFlags("INBOX", u[1], `\Deleted`) // by the user, elsewhere
		e.selectBox(t, "INBOX")

		mark := e.mark()
		err := e.c.Expunge(t.Context(), []mail.UID{mail.UID(u[0])})
		trace := e.since(mark)
		server := e.onServer(t, "INBOX")
		// The command that acts on the \Deleted flag waits for the
		// STORE that sets it: a server may run pipelined commands at once.
		next := "SEARCH"
		if e.mode.uidPlus {
			next = "EXPUNGE"
		}
		if err := answeredBefore(trace, "STORE", next); err != nil {
			t.Error(err)
		}
		if e.mode.uidPlus {
			if err != nil {
				t.Fatalf("Expunge: %v", err)
			}
			if _, ok := server[u[0]]; ok || len(server) != 3 {
				t.Errorf("after Expunge of %d INBOX holds %d messages, it among them: %v", u[0], len(server), ok)
			}
			if m, ok := server[u[1]]; !ok || !flagsMatch(writeFlags(`\Deleted`), m.Flags) {
				t.Errorf("UID %d, flagged \\Deleted by someone else: %+v, %v", u[1], m, ok)
			}
			if l := tracedCommands(trace, "EXPUNGE"); len(l) != 1 || !strings.Contains(l[0], "UID EXPUNGE "+wireUIDSet(u[0])) {
				t.Errorf("EXPUNGE lines %q", l)
			}
			return
		}

		if !errors.Is(err, ErrExpungeDeferred) {
			t.Fatalf("Expunge beside another \\Deleted message: %v, want ErrExpungeDeferred", err)
		}
		if l := tracedCommands(trace, "EXPUNGE"); len(l) > 0 {
			t.Errorf("sent %q", l)
		}
		for _, uid := range u[:2] {
			if m, ok := server[uid]; !ok || !flagsMatch(writeFlags(`\Deleted`), m.Flags) {
				t.Errorf("UID %d: %+v, %v; want it kept, flagged \\Deleted", uid, m, ok)
			}
		}
		if len(server) != 4 {
			t.Errorf("INBOX holds %d messages, want 4", len(server))
		}

		// Once nothing else is flagged \Deleted, plain EXPUNGE is safe.
		e.srv.SetFlags("INBOX", u[1])
		if err := e.c.Expunge(t.Context(), []mail.UID{mail.UID(u[0]), mail.UID(u[2])}); err != nil {
			t.Fatalf("Expunge: %v", err)
		}
		server = e.onServer(t, "INBOX")
		if _, ok := server[u[1]]; !ok || len(server) != 2 {
			t.Errorf("after Expunge of %d and %d INBOX holds %d messages, UID %d: %v", u[0], u[2], len(server), u[1], ok)
		}
		if _, ok := server[u[3]]; !ok {
			t.Errorf("UID %d is gone", u[3])
		}
	})
}

// endlessBody yields CRLF lines forever and reports once it has been read
// from.
type endlessBody struct {
	started chan struct{}
	n       int64
}

func (b *endlessBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		close(b.started)
	}
	for i := range p {
		if (b.n+int64(i))%64 == 63 {
			p[i] = '\n'
		} else if (b.n+int64(i))%64 == 62 {
			p[i] = '\r'
		} else {
			p[i] = 'x'
		}
	}
	b.n += int64(len(p))
	return len(p), nil
}

// TestAppendCancel cancels an Append in the middle of a big body: it
// returns with the context's error, and nothing is appended.
func TestAppendCancel(t *testing.T) {
	srv := writeModes[0].start(t)
	c := connect(t, srv, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	body := &endlessBody{started: make(chan struct{})}
	result := make(chan error, 1)
	go func() {
		_, _, err := c.Append(ctx, "INBOX", mail.Flags{}, writeDate, 1<<40, io.MultiReader(strings.NewReader("Subject: big\r\n\r\n"), body))
		result <- err
	}()
	// Cancelled once Append reads the body.
	if err := cancelAt(t, "Append", body.started, cancel, result); !errors.Is(err, context.Canceled) {
		t.Errorf("Append error %v does not wrap context.Canceled", err)
	}
	if n := len(srv.Messages("INBOX")); n != 0 {
		t.Errorf("INBOX holds %d messages after a cancelled Append", n)
	}
}

// TestAppendWrongSize: a body shorter or longer than announced fails the
// Append, and nothing is appended.
func TestAppendWrongSize(t *testing.T) {
	srv := writeModes[0].start(t)
	body := writeMessage(1)
	for _, tc := range []struct {
		size int64
		says string
	}{
		{int64(len(body)) + 1, "shorter"},
		{5000, "shorter"}, // a synchronizing literal
		{int64(len(body)) - 1, "longer"},
	} {
		c := connect(t, srv, nil)
		_, _, err := c.Append(t.Context(), "INBOX", mail.Flags{}, writeDate, tc.size, bytes.NewReader(body))
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("Append of %d bytes announced as %d: %v, want it %s", len(body), tc.size, err, tc.says)
		}
	}
	if n := len(srv.Messages("INBOX")); n != 0 {
		t.Errorf("INBOX holds %d messages", n)
	}
}

// TestStoreRefusedAmidUpdates: a server reports another client's change to
// a message during the STORE that the change makes it refuse; go-imap
// hands that FETCH to the STORE and drops [MODIFIED]. The message must not
// count as changed.
func TestStoreRefusedAmidUpdates(t *testing.T) {
	host, port := scriptedIMAP(t, "* PREAUTH [CAPABILITY IMAP4rev1 CONDSTORE UIDPLUS] ready", []scriptStep{
		{"SELECT INBOX (CONDSTORE)", []string{
			"* 2 EXISTS", "* OK [UIDVALIDITY 7] x", "* OK [UIDNEXT 3] x", "* OK [HIGHESTMODSEQ 10] x",
			"TAG OK [READ-WRITE] SELECT completed",
		}},
		{"UID SEARCH ALL", []string{"* SEARCH 1 2", "TAG OK SEARCH completed"}},
		// The server may have queued updates since the SEARCH: a NOOP
		// collects them before the STORE.
		{"NOOP", []string{"TAG OK NOOP completed"}},
		{`UID STORE 1:2 (UNCHANGEDSINCE 10) +FLAGS (\Seen)`, []string{
			`* 1 FETCH (UID 1 MODSEQ (11) FLAGS (\Flagged))`, // the other client's change
			`* 2 FETCH (UID 2 MODSEQ (12) FLAGS (\Seen))`,
			"TAG OK [MODIFIED 1] Conditional STORE failed",
		}},
		{"UID FETCH 1 (UID MODSEQ FLAGS)", []string{
			`* 1 FETCH (UID 1 FLAGS (\Flagged) MODSEQ (11))`,
			"TAG OK FETCH completed",
		}},
	})
	c := mustDial(t, preauthOptions(t, host, port))
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Fatalf("Select: %v", err)
	}
	if _, err := c.UIDs(t.Context()); err != nil {
		t.Fatalf("UIDs: %v", err)
	}
	got, err := c.Store(t.Context(), []FlagChange{
		{UID: 1, Add: writeFlags(`\Seen`), UnchangedSince: 10},
		{UID: 2, Add: writeFlags(`\Seen`), UnchangedSince: 10},
	})
	if err != nil {
		t.Fatalf("Store: %v", err)
	}
	if len(got) != 1 || got[2].UID != 2 || !got[2].Flags.Equal(writeFlags(`\Seen`)) || got[2].ModSeq != 12 {
		t.Errorf("Store = %+v, want only UID 2 with \\Seen, MODSEQ 12", got)
	}
}

// TestAppendNoMailbox: the server's refusal is reported, for a message sent
// as a non-synchronizing literal (the connection stays usable) and for one
// the server refuses before the literal (RFC 9051 §4.3).
func TestAppendNoMailbox(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		small := writeMessage(1)
		_, _, err := e.c.Append(t.Context(), "Nowhere", mail.Flags{}, writeDate, int64(len(small)), bytes.NewReader(small))
		if err == nil || !strings.Contains(err.Error(), `"Nowhere"`) {
			t.Errorf("Append to a missing mailbox: %v", err)
		}
		if _, err := e.c.Select(t.Context(), "INBOX"); err != nil {
			t.Errorf("Select after a refused Append: %v", err)
		}

		big := bytes.Repeat([]byte("0123456789abcdef\r\n"), 1000)
		c := connect(t, e.srv, nil)
		_, _, err = c.Append(t.Context(), "Nowhere", mail.Flags{}, writeDate, int64(len(big)), bytes.NewReader(big))
		// The server's reason, not the closed connection, is reported.
		if err == nil || !strings.Contains(err.Error(), "TRYCREATE") {
			t.Errorf("Append of %d bytes to a missing mailbox: %v", len(big), err)
		}
		if n := len(e.srv.Messages("INBOX")); n != 0 {
			t.Errorf("INBOX holds %d messages", n)
		}
	})
}

// TestAppendBatch: messages are appended in order with their flags; a
// message that cannot be read is reported on its own and the others go
// through; a refusal is reported per message and leaves the connection
// usable.
func TestAppendBatch(t *testing.T) {
	forEachWriteMode(t, func(t *testing.T, e writeEnv) {
		e.srv.CreateMailbox("Archive")
		bodies := [][]byte{writeMessage(1), writeMessage(2), writeMessage(3)}
		msgs := make([]mail.Outgoing, len(bodies))
		for i, b := range bodies {
			msgs[i] = mail.Outgoing{Flags: writeFlags(`\Seen`), Date: writeDate, Size: int64(len(b)),
				Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
		}
		msgs[1].Open = func() (io.ReadCloser, error) { return nil, errors.New("the file went away") }
		res, err := e.c.AppendBatch(t.Context(), "Archive", msgs)
		if err != nil {
			t.Fatalf("AppendBatch: %v", err)
		}
		if !res[0].Done || !res[2].Done || res[1].Done || res[1].Err == nil {
			t.Fatalf("results %+v: want the first and third appended, the second failed", res)
		}
		server := e.srv.Messages("Archive")
		if len(server) != 2 || !bytes.Equal(server[0].Body, bodies[0]) || !bytes.Equal(server[1].Body, bodies[2]) {
			t.Fatalf("Archive holds %d messages, want the first and third in order", len(server))
		}
		if e.mode.uidPlus && (res[0].UID != mail.UID(server[0].UID) || res[2].UID != mail.UID(server[1].UID)) {
			t.Errorf("UIDs %d, %d; server has %d, %d", res[0].UID, res[2].UID, server[0].UID, server[1].UID)
		}
		res, err = e.c.AppendBatch(t.Context(), "Nowhere", msgs[:1])
		if err != nil || res[0].Done || res[0].Err == nil {
			t.Fatalf("append to a missing mailbox: %+v, %v", res, err)
		}
		if _, err := e.c.Select(t.Context(), "Archive"); err != nil {
			t.Fatalf("the connection did not survive a refused APPEND: %v", err)
		}
	})
}

// TestAppendBatchPipelined: with LITERAL+, every APPEND of a batch is
// sent before the first answer is read: the server here answers only
// once it has all three, which a client waiting for each answer would
// never give it. So are messages over 4,096 bytes, which go-imap alone
// sends as synchronizing literals (and this server refuses).
func TestAppendBatchPipelined(t *testing.T) {
	for _, size := range []int{0, 20 << 10} {
		t.Run(fmt.Sprintf("padding %d", size), func(t *testing.T) { testAppendBatchPipelined(t, size) })
	}
}

func testAppendBatchPipelined(t *testing.T, padding int) {
	const n = 3
	host, port := scriptedServer(t, func(c net.Conn) {
		io.WriteString(c, "* PREAUTH ready\r\n")
		br := bufio.NewReader(c)
		var tags []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				return
			}
			switch strings.ToUpper(f[1]) {
			case "CAPABILITY":
				io.WriteString(c, "* CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS\r\n"+f[0]+" OK done\r\n")
			case "APPEND":
				size, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(line[strings.LastIndex(line, "{")+1:]), "+}"))
				if err != nil {
					io.WriteString(c, f[0]+" BAD no non-synchronizing literal\r\n")
					return
				}
				io.CopyN(io.Discard, br, int64(size))
				br.ReadString('\n')
				if tags = append(tags, f[0]); len(tags) == n {
					for i, tag := range tags {
						fmt.Fprintf(c, "%s OK [APPENDUID 7 %d] done\r\n", tag, 10+i)
					}
				}
			default:
				io.WriteString(c, f[0]+" BAD unexpected\r\n")
			}
		}
	})
	c := mustDial(t, preauthOptions(t, host, port))
	msgs := make([]mail.Outgoing, n)
	for i := range msgs {
		b := append(writeMessage(i), bytes.Repeat([]byte("padding line\r\n"), padding/14)...)
		msgs[i] = mail.Outgoing{Date: writeDate, Size: int64(len(b)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
	}
	type result struct {
		res []mail.Appended
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := c.AppendBatch(t.Context(), "INBOX", msgs)
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("AppendBatch: %v", r.err)
		}
		for i, a := range r.res {
			if !a.Done || a.UIDValidity != 7 || a.UID != mail.UID(10+i) {
				t.Fatalf("message %d: %+v, want UID %d of UIDVALIDITY 7", i, a, 10+i)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("AppendBatch waited for an answer before sending the next APPEND")
	}
}

// TestWritesPipelined: the writes a sync makes to a mailbox take three
// round trips. The APPENDs follow the SELECT before its answer, and
// AppendBatch sends a NOOP behind them, so that the StartStore that
// follows sends no NOOP of its own; StartStore and StartExpunge send
// their STOREs before either waits, and the UID EXPUNGE follows once
// they are answered. The server here answers each group only once it has
// all of it, which a client waiting in between would never give it; a
// NOOP out of place, or a UID EXPUNGE sent with the STORE it depends on,
// is refused.
func TestWritesPipelined(t *testing.T) {
	host, port := scriptedServer(t, func(c net.Conn) {
		io.WriteString(c, "* PREAUTH ready\r\n")
		br := bufio.NewReader(c)
		var appends, writes []string
		early := false
		for {
			line, tag, cmd, ok := readCommand(br)
			if !ok {
				return
			}
			switch cmd {
			case "CAPABILITY":
				io.WriteString(c, "* CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS CONDSTORE\r\n"+tag+" OK done\r\n")
			case "SELECT":
				io.WriteString(c, "* 2 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [UIDNEXT 3] x\r\n* OK [HIGHESTMODSEQ 10] x\r\n"+tag+" OK [READ-WRITE] done\r\n")
			case "APPEND":
				skipLiteral(br, line)
				appends = append(appends, tag)
			case "NOOP":
				if len(appends) != 2 {
					io.WriteString(c, tag+" BAD NOOP out of place\r\n")
					continue
				}
				for i, a := range appends {
					fmt.Fprintf(c, "%s OK [APPENDUID 7 %d] done\r\n", a, 3+i)
				}
				io.WriteString(c, "* 4 EXISTS\r\n"+tag+" OK done\r\n")
				appends = nil
			case "UID STORE":
				// Both STOREs are answered only once both came, and
				// after a pause in which the client must send nothing
				// that depends on them.
				if writes = append(writes, tag); len(writes) < 2 {
					continue
				}
				c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				_, err := br.Peek(1)
				early = err == nil
				c.SetReadDeadline(time.Time{})
				fmt.Fprintf(c, "* 1 FETCH (UID 1 MODSEQ (12) FLAGS (\\Seen))\r\n%s OK done\r\n", writes[0])
				fmt.Fprintf(c, "%s OK done\r\n", writes[1])
				writes = nil
			case "UID EXPUNGE":
				// It depends on the \Deleted STORE's result.
				if early {
					io.WriteString(c, tag+" BAD UID EXPUNGE sent before the STORE was answered\r\n")
					continue
				}
				fmt.Fprintf(c, "* VANISHED 2\r\n%s OK done\r\n", tag)
			default:
				io.WriteString(c, tag+" BAD unexpected\r\n")
			}
		}
	})
	c := mustDial(t, preauthOptions(t, host, port))
	selected := c.StartSelect(t.Context(), "INBOX")
	msgs := make([]mail.Outgoing, 2)
	for i := range msgs {
		b := writeMessage(i)
		msgs[i] = mail.Outgoing{Date: writeDate, Size: int64(len(b)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
	}
	result := make(chan error, 1)
	go func() {
		res, err := c.AppendBatch(t.Context(), "INBOX", msgs)
		if err == nil && (!res[0].Done || !res[1].Done) {
			err = fmt.Errorf("not appended: %+v", res)
		}
		result <- err
	}()
	if err := await(t, result, "AppendBatch sent no NOOP with its APPENDs"); err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
	if st, err := selected(); err != nil || st.UIDValidity != 7 {
		t.Fatalf("StartSelect: %+v, %v", st, err)
	}
	var stored map[mail.UID]mail.RemoteMessage
	go func() {
		wait := c.StartStore(t.Context(), []FlagChange{{UID: 1, Add: writeFlags(`\Seen`), UnchangedSince: 10}})
		expunged := c.StartExpunge(t.Context(), []mail.UID{2})
		var err error
		stored, err = wait()
		result <- errors.Join(err, expunged())
	}()
	if err := await(t, result, "StartStore waited before StartExpunge sent its commands"); err != nil {
		t.Fatalf("store and expunge: %v", err)
	}
	if got := stored[1]; got.ModSeq != 12 || !got.Flags.Equal(writeFlags(`\Seen`)) {
		t.Errorf("stored %+v, want UID 1 with \\Seen at MODSEQ 12", stored)
	}
}

// TestFlagDeletedAhead: with the mailbox open, FlagDeleted sends the
// \Deleted STORE before the APPENDs without waiting, and StartExpunge of
// the same UIDs sends the UID EXPUNGE beside the flag STOREs, once the
// \Deleted STORE is answered. The server answers the \Deleted STORE only
// once the APPENDs' NOOP came, and the flag STORE only once the UID
// EXPUNGE came: a client that waited in between would never get either
// answer. A UID EXPUNGE before the \Deleted STORE's answer is refused.
func TestFlagDeletedAhead(t *testing.T) {
	host, port := scriptedServer(t, func(c net.Conn) {
		io.WriteString(c, "* PREAUTH ready\r\n")
		br := bufio.NewReader(c)
		var appends []string
		var deleting, flagging string
		answered := false
		for {
			line, tag, cmd, ok := readCommand(br)
			if !ok {
				return
			}
			switch {
			case cmd == "CAPABILITY":
				io.WriteString(c, "* CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS CONDSTORE\r\n"+tag+" OK done\r\n")
			case cmd == "SELECT":
				io.WriteString(c, "* 3 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [UIDNEXT 4] x\r\n* OK [HIGHESTMODSEQ 10] x\r\n"+tag+" OK [READ-WRITE] done\r\n")
			case cmd == "UID STORE" && strings.Contains(line, `\Deleted`):
				deleting = tag
			case cmd == "UID STORE":
				flagging = tag
			case cmd == "APPEND":
				skipLiteral(br, line)
				appends = append(appends, tag)
			case cmd == "NOOP":
				if deleting == "" || len(appends) != 1 {
					io.WriteString(c, tag+" BAD NOOP out of place\r\n")
					continue
				}
				fmt.Fprintf(c, "* 3 FETCH (UID 3 MODSEQ (11))\r\n%s OK done\r\n", deleting)
				fmt.Fprintf(c, "%s OK [APPENDUID 7 4] done\r\n* 4 EXISTS\r\n%s OK done\r\n", appends[0], tag)
				answered = true
			case cmd == "UID EXPUNGE":
				if !answered || flagging == "" {
					io.WriteString(c, tag+" BAD UID EXPUNGE out of place\r\n")
					continue
				}
				fmt.Fprintf(c, "* 1 FETCH (UID 1 MODSEQ (12) FLAGS (\\Seen))\r\n%s OK done\r\n", flagging)
				fmt.Fprintf(c, "* VANISHED 3\r\n%s OK done\r\n", tag)
			default:
				io.WriteString(c, tag+" BAD unexpected\r\n")
			}
		}
	})
	c := mustDial(t, preauthOptions(t, host, port))
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Fatalf("Select: %v", err)
	}
	b := writeMessage(0)
	msgs := []mail.Outgoing{{Date: writeDate, Size: int64(len(b)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}}
	result := make(chan error, 1)
	var stored map[mail.UID]mail.RemoteMessage
	go func() {
		c.FlagDeleted(t.Context(), []mail.UID{3})
		res, err := c.AppendBatch(t.Context(), "INBOX", msgs)
		if err == nil && !res[0].Done {
			err = fmt.Errorf("not appended: %+v", res)
		}
		if err != nil {
			result <- err
			return
		}
		wait := c.StartStore(t.Context(), []FlagChange{{UID: 1, Add: writeFlags(`\Seen`), UnchangedSince: 10}})
		expunged := c.StartExpunge(t.Context(), []mail.UID{3})
		stored, err = wait()
		result <- errors.Join(err, expunged())
	}()
	if err := await(t, result, "a write waited for an answer the server holds back until the next write"); err != nil {
		t.Fatalf("writes: %v", err)
	}
	if got := stored[1]; got.ModSeq != 12 || !got.Flags.Equal(writeFlags(`\Seen`)) {
		t.Errorf("stored %+v, want UID 1 with \\Seen at MODSEQ 12", stored)
	}
}
