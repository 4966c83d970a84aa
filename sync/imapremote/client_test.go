package imapremote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// serverModes are the servers the Client tests run against, with the sync
// mode each must be given.
var serverModes = []struct {
	name  string
	start func(testing.TB) *imaptest.Server
	mode  mail.SyncMode
}{
	{"dovecot", func(t testing.TB) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	}, mail.ModeQResync},
	{"dovecot-condstore", func(t testing.TB) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: imaptest.CapsCondStoreOnly})
	}, mail.ModeCondStore},
	{"dovecot-plain", func(t testing.TB) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: imaptest.CapsPlain})
	}, mail.ModeFull},
	{"memory", imaptest.StartMemory, mail.ModeFull},
}

func forEachServer(t *testing.T, test func(t *testing.T, s *imaptest.Server, mode mail.SyncMode)) {
	for _, m := range serverModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			test(t, m.start(t), m.mode)
		})
	}
}

// testMessage returns a small message in wire form, distinct per n.
func testMessage(n int) []byte {
	return fmt.Appendf(nil, "From: a@example.org\r\nTo: b@example.org\r\nSubject: message %d\r\n"+
		"Message-ID: <%d@example.org>\r\n\r\nBody of message %d.\r\nSecond line.\r\n", n, n, n)
}

// testBigMessage returns a message of about size bytes, CRLF throughout.
func testBigMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nSubject: big\r\n\r\n")
	line := strings.Repeat("0123456789", 7) + "abcdef\r\n"
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%08d ", i)
		b.WriteString(line)
	}
	return b.Bytes()
}

func TestDialPreauthDovecot(t *testing.T) {
	s := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	var trace traceBuffer
	c := connect(t, s, &trace)
	if !strings.HasPrefix(trace.String(), "S: * PREAUTH") {
		t.Errorf("trace does not start with a PREAUTH greeting:\n%s", trace.String())
	}
	for _, cmd := range []string{"LOGIN", "AUTHENTICATE"} {
		if l := commandLine(trace.String(), cmd); l != "" {
			t.Errorf("%s sent in a PREAUTH session: %q", cmd, l)
		}
	}
	for _, cp := range []string{"IMAP4rev1", "CONDSTORE", "QRESYNC"} {
		if !c.Has(cp) {
			t.Errorf("Has(%q) = false; capabilities %q", cp, c.Capabilities())
		}
	}
	if caps := c.Capabilities(); !slices.IsSorted(caps) {
		t.Errorf("Capabilities() not sorted: %q", caps)
	}
}

func TestMode(t *testing.T) {
	forEachServer(t, func(t *testing.T, s *imaptest.Server, mode mail.SyncMode) {
		if got := connect(t, s, nil).Mode(); got != mode {
			t.Errorf("Mode() = %q, want %q", got, mode)
		}
	})
}

func TestList(t *testing.T) {
	forEachServer(t, func(t *testing.T, s *imaptest.Server, _ mail.SyncMode) {
		s.CreateMailbox("Work/Projects/Ünïcödé")
		s.CreateMailbox("Друзья")
		var trace traceBuffer
		c := connect(t, s, &trace)
		got, err := c.List(t.Context())
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var names []string
		for _, m := range got {
			names = append(names, m.Name)
			if m.Delim != '/' {
				t.Errorf("%q: Delim %q, want '/'", m.Name, m.Delim)
			}
			if m.NoSelect {
				t.Errorf("%q: NoSelect, but imaptest creates every level", m.Name)
			}
		}
		slices.Sort(names)
		want := []string{"INBOX", "Work", "Work/Projects", "Work/Projects/Ünïcödé", "Друзья"}
		if !slices.Equal(names, want) {
			t.Errorf("List names = %q, want %q", names, want)
		}
		// The names crossed the wire in modified UTF-7 (RFC 3501 §5.1.3).
		if tr := trace.String(); strings.Contains(tr, "Друзья") || !strings.Contains(tr, "&BBQEQARDBDcETARP-") {
			t.Errorf("LIST did not carry modified UTF-7:\n%s", tr)
		}
	})
}

func TestSelect(t *testing.T) {
	forEachServer(t, func(t *testing.T, s *imaptest.Server, mode mail.SyncMode) {
		var last uint32
		for i := range 3 {
			last = s.Append("INBOX", testMessage(i), nil, time.Time{})
		}
		validity := s.UIDValidity("INBOX")
		var trace traceBuffer
		c := connect(t, s, &trace)
		st, err := c.Select(t.Context(), "INBOX")
		if err != nil {
			t.Fatalf("Select: %v", err)
		}
		if st.UIDValidity != mail.UIDValidity(validity) || validity == 0 {
			t.Errorf("UIDValidity = %d, want %d", st.UIDValidity, validity)
		}
		if st.UIDNext != mail.UID(last+1) {
			t.Errorf("UIDNext = %d, want %d", st.UIDNext, last+1)
		}
		if st.Messages != 3 {
			t.Errorf("Messages = %d, want 3", st.Messages)
		}
		condstore := mode != mail.ModeFull
		if condstore != (st.HighestModSeq > 0) {
			t.Errorf("HighestModSeq = %d in mode %s", st.HighestModSeq, mode)
		}
		// Dovecot lists the system flags; go-imap's memory server lists
		// only the flags in use, and \* for both.
		if s.Kind == "dovecot" {
			for _, f := range []string{mail.FlagSeen, mail.FlagFlagged, mail.FlagDeleted} {
				if !st.PermanentFlags.Has(f) {
					t.Errorf("PermanentFlags %q lack %s", st.PermanentFlags, f)
				}
			}
		}
		if !st.CanCreateKeywords {
			t.Error("CanCreateKeywords = false, but the server lists \\*")
		}
		if st.PermanentFlags.Has(`\*`) {
			t.Errorf("PermanentFlags %q hold \\*, which belongs in CanCreateKeywords", st.PermanentFlags)
		}
		// RFC 7162 §3.1.8: the CONDSTORE parameter only for a server that
		// advertises it.
		sel := commandLine(trace.String(), "SELECT")
		if sel == "" {
			t.Fatalf("no SELECT in the trace:\n%s", trace.String())
		}
		if got := strings.Contains(strings.ToUpper(sel), "CONDSTORE"); got != condstore {
			t.Errorf("SELECT line %q in mode %s", sel, mode)
		}

		if _, err := c.Select(t.Context(), "No such mailbox"); err == nil || !strings.Contains(err.Error(), `"No such mailbox"`) {
			t.Errorf("Select of a missing mailbox: %v, want an error naming it", err)
		}
	})
}

func TestScan(t *testing.T) {
	forEachServer(t, func(t *testing.T, s *imaptest.Server, mode mail.SyncMode) {
		flags := [][]string{{mail.FlagSeen}, nil, {mail.FlagFlagged, "$label1"}, {mail.FlagAnswered, mail.FlagSeen, mail.FlagDraft}}
		want := map[mail.UID]mail.Flags{}
		for i, f := range flags {
			want[mail.UID(s.Append("INBOX", testMessage(i), f, time.Time{}))] = mail.NewFlags(f...)
		}
		var trace traceBuffer
		c := connect(t, s, &trace)
		// The first session to select the new messages sees them \Recent.
		if _, err := c.Select(t.Context(), "INBOX"); err != nil {
			t.Fatalf("Select: %v", err)
		}
		got, err := c.Scan(t.Context())
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		assertFlags(t, got, want)
		if s.Kind == "dovecot" && !fetchedRecent(trace.String()) {
			t.Errorf("Dovecot sent no \\Recent, so its removal is not tested:\n%s", trace.String())
		}
		for _, m := range got {
			if (m.ModSeq > 0) != (mode != mail.ModeFull) {
				t.Errorf("UID %d: ModSeq %d in mode %s", m.UID, m.ModSeq, mode)
			}
		}
		fetch := commandLine(trace.String(), "UID")
		if got := strings.Contains(strings.ToUpper(fetch), "MODSEQ"); got != (mode != mail.ModeFull) {
			t.Errorf("Scan sent %q in mode %s", fetch, mode)
		}
	})
}

// fetchedRecent reports whether a FETCH response in the trace carries
// \Recent.
func fetchedRecent(trace string) bool {
	for line := range strings.Lines(trace) {
		if strings.HasPrefix(line, "S: * ") && strings.Contains(line, " FETCH (") && strings.Contains(line, `\Recent`) {
			return true
		}
	}
	return false
}

// assertFlags compares messages with the flags expected per UID.
func assertFlags(t *testing.T, got []mail.RemoteMessage, want map[mail.UID]mail.Flags) {
	t.Helper()
	seen := map[mail.UID]bool{}
	for _, m := range got {
		if seen[m.UID] {
			t.Errorf("UID %d listed twice", m.UID)
		}
		seen[m.UID] = true
		w, ok := want[m.UID]
		if !ok {
			t.Errorf("unexpected UID %d", m.UID)
			continue
		}
		if m.Flags.Has(mail.FlagRecent) || !m.Flags.Equal(w) {
			t.Errorf("UID %d: flags %q, want %q", m.UID, m.Flags, w)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("got UIDs %v, want %v", slices.Sorted(maps.Keys(seen)), slices.Sorted(maps.Keys(want)))
	}
}

// fetchBody fetches one message with FetchBodies and returns what the
// callback read of its body, with the call's error.
func fetchBody(ctx context.Context, c *Client, m mail.RemoteMessage) ([]byte, error) {
	var got []byte
	err := c.FetchBodies(ctx, []mail.RemoteMessage{m}, func(_ mail.UID, _ int64, body io.Reader) error {
		var err error
		got, err = io.ReadAll(body)
		return err
	})
	return got, err
}

func TestChanges(t *testing.T) {
	forEachServer(t, func(t *testing.T, s *imaptest.Server, mode mail.SyncMode) {
		if mode == mail.ModeFull {
			t.Skip("no CONDSTORE")
		}
		var uids []uint32
		for i := range 3 {
			uids = append(uids, s.Append("INBOX", testMessage(i), nil, time.Time{}))
		}
		c := connect(t, s, nil)
		selectInbox := func() mail.MailboxStatus {
			t.Helper()
			st, err := c.Select(t.Context(), "INBOX")
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			return st
		}
		before := selectInbox()

		// Another session changes one message. A mailbox's state is that
		// of its SELECT (Dovecot reports other sessions' changes only
		// between commands), so it is selected again, as the engine does
		// on every sync.
		s.SetFlags("INBOX", uids[1], mail.FlagAnswered, "$label1")
		after := selectInbox()
		if after.HighestModSeq <= before.HighestModSeq {
			t.Fatalf("HIGHESTMODSEQ went from %d to %d on a flag change", before.HighestModSeq, after.HighestModSeq)
		}

		got, err := c.Changes(t.Context(), before.HighestModSeq)
		if err != nil {
			t.Fatalf("Changes: %v", err)
		}
		assertFlags(t, got, map[mail.UID]mail.Flags{mail.UID(uids[1]): mail.NewFlags(mail.FlagAnswered, "$label1")})
		for _, m := range got {
			if m.ModSeq <= before.HighestModSeq || m.ModSeq > after.HighestModSeq {
				t.Errorf("UID %d: ModSeq %d, want in (%d, %d]", m.UID, m.ModSeq, before.HighestModSeq, after.HighestModSeq)
			}
		}

		none, err := c.Changes(t.Context(), after.HighestModSeq)
		if err != nil {
			t.Fatalf("Changes since HIGHESTMODSEQ: %v", err)
		}
		if len(none) != 0 {
			t.Errorf("Changes since HIGHESTMODSEQ = %+v, want none", none)
		}

		// A new message is a change too.
		added := s.Append("INBOX", testMessage(9), []string{mail.FlagSeen}, time.Time{})
		selectInbox()
		got, err = c.Changes(t.Context(), after.HighestModSeq)
		if err != nil {
			t.Fatalf("Changes after an append: %v", err)
		}
		assertFlags(t, got, map[mail.UID]mail.Flags{mail.UID(added): mail.NewFlags(mail.FlagSeen)})
	})
}

func TestMeta(t *testing.T) {
	forEachServer(t, func(t *testing.T, s *imaptest.Server, mode mail.SyncMode) {
		dates := []time.Time{
			time.Date(2024, 3, 5, 14, 30, 7, 0, time.FixedZone("", 2*3600)),
			time.Date(2019, 12, 31, 23, 59, 59, 0, time.FixedZone("", -5*3600)),
			time.Date(2025, 7, 1, 0, 0, 1, 0, time.UTC),
		}
		bodies := [][]byte{testMessage(1), testBigMessage(100 << 10), testMessage(3)}
		byUID := map[mail.UID]int{}
		var uids []mail.UID
		for i := range bodies {
			u := mail.UID(s.Append("INBOX", bodies[i], []string{mail.FlagFlagged}, dates[i]))
			byUID[u] = i
			uids = append(uids, u)
		}
		s.Expunge("INBOX", uint32(uids[2]))

		c := connect(t, s, nil)
		if _, err := c.Select(t.Context(), "INBOX"); err != nil {
			t.Fatalf("Select: %v", err)
		}
		got, err := c.Meta(t.Context(), uids)
		if err != nil {
			t.Fatalf("Meta: %v", err)
		}
		assertFlags(t, got, map[mail.UID]mail.Flags{
			uids[0]: mail.NewFlags(mail.FlagFlagged),
			uids[1]: mail.NewFlags(mail.FlagFlagged),
		})
		for _, m := range got {
			i, ok := byUID[m.UID]
			if !ok {
				continue
			}
			if m.Size != int64(len(bodies[i])) {
				t.Errorf("UID %d: Size %d, want %d", m.UID, m.Size, len(bodies[i]))
			}
			if !m.InternalDate.Equal(dates[i]) {
				t.Errorf("UID %d: InternalDate %v, want %v", m.UID, m.InternalDate, dates[i])
			}
			if (m.ModSeq > 0) != (mode != mail.ModeFull) {
				t.Errorf("UID %d: ModSeq %d in mode %s", m.UID, m.ModSeq, mode)
			}
		}

		if got, err := c.Meta(t.Context(), nil); err != nil || got != nil {
			t.Errorf("Meta(nil) = %v, %v; want nothing", got, err)
		}
	})
}

func TestUIDs(t *testing.T) {
	forEachServer(t, func(t *testing.T, s *imaptest.Server, _ mail.SyncMode) {
		var trace traceBuffer
		c := connect(t, s, &trace)
		if _, err := c.Select(t.Context(), "INBOX"); err != nil {
			t.Fatalf("Select: %v", err)
		}
		empty, err := c.UIDs(t.Context())
		if err != nil || len(empty) != 0 {
			t.Errorf("UIDs of an empty mailbox = %v, %v; want none", empty, err)
		}

		var uids []mail.UID
		for i := range 5 {
			uids = append(uids, mail.UID(s.Append("INBOX", testMessage(i), nil, time.Time{})))
		}
		s.Expunge("INBOX", uint32(uids[1]), uint32(uids[3]))
		if _, err := c.Select(t.Context(), "INBOX"); err != nil {
			t.Fatalf("Select: %v", err)
		}
		got, err := c.UIDs(t.Context())
		if err != nil {
			t.Fatalf("UIDs: %v", err)
		}
		if want := []mail.UID{uids[0], uids[2], uids[4]}; !slices.Equal(got, want) {
			t.Errorf("UIDs = %v, want %v", got, want)
		}

		// RFC 4731: ESEARCH only when advertised.
		esearch := strings.Contains(trace.String(), "SEARCH RETURN (ALL)")
		if esearch != c.Has("ESEARCH") {
			t.Errorf("ESEARCH used: %v, advertised: %v", esearch, c.Has("ESEARCH"))
		}
	})
}

func TestFetchBodies(t *testing.T) {
	forEachServer(t, func(t *testing.T, s *imaptest.Server, _ mail.SyncMode) {
		// The big one is above DefaultLargeMessage: it comes in parts.
		bodies := [][]byte{testMessage(1), testBigMessage(5 << 20), testMessage(3), testMessage(4)}
		var uids []mail.UID
		var msgs []mail.RemoteMessage
		for _, b := range bodies {
			u := mail.UID(s.Append("INBOX", b, nil, time.Time{}))
			uids = append(uids, u)
			msgs = append(msgs, mail.RemoteMessage{UID: u, Size: int64(len(b))})
		}
		c := connect(t, s, nil)
		if _, err := c.Select(t.Context(), "INBOX"); err != nil {
			t.Fatalf("Select: %v", err)
		}
		// One message goes before the fetch, as another client would
		// remove it.
		s.Expunge("INBOX", uint32(uids[2]))

		got := map[mail.UID][]byte{}
		err := c.FetchBodies(t.Context(), msgs, func(uid mail.UID, size int64, body io.Reader) error {
			b, err := io.ReadAll(body)
			if err != nil {
				return err
			}
			if size != int64(len(b)) {
				t.Errorf("UID %d: size %d, body %d bytes", uid, size, len(b))
			}
			if _, dup := got[uid]; dup {
				t.Errorf("UID %d delivered twice", uid)
			}
			got[uid] = b
			return nil
		})
		if err != nil {
			t.Fatalf("FetchBodies: %v", err)
		}
		for i, u := range uids {
			b, ok := got[u]
			switch {
			case i == 2 && ok:
				t.Errorf("expunged UID %d delivered", u)
			case i != 2 && !ok:
				t.Errorf("UID %d not delivered", u)
			case i != 2 && !bytes.Equal(b, bodies[i]):
				t.Errorf("UID %d: body differs (%d bytes, want %d)", u, len(b), len(bodies[i]))
			}
		}

		// BODY.PEEK: reading does not mark the messages seen.
		for _, m := range s.Messages("INBOX") {
			if slices.Contains(m.Flags, mail.FlagSeen) {
				t.Errorf("UID %d is \\Seen after FetchBodies", m.UID)
			}
		}

		if err := c.FetchBodies(t.Context(), nil, func(mail.UID, int64, io.Reader) error {
			t.Error("callback called for no UIDs")
			return nil
		}); err != nil {
			t.Errorf("FetchBodies(nil): %v", err)
		}
	})
}

func TestFetchBodiesCallbackError(t *testing.T) {
	forEachServer(t, func(t *testing.T, s *imaptest.Server, _ mail.SyncMode) {
		bodies := [][]byte{testBigMessage(300 << 10), testMessage(2), testMessage(3)}
		var msgs []mail.RemoteMessage
		for _, b := range bodies {
			msgs = append(msgs, mail.RemoteMessage{UID: mail.UID(s.Append("INBOX", b, nil, time.Time{})), Size: int64(len(b))})
		}
		s.CreateMailbox("Other")
		other := s.Append("Other", testMessage(4), nil, time.Time{})
		c := connect(t, s, nil)
		if _, err := c.Select(t.Context(), "INBOX"); err != nil {
			t.Fatalf("Select: %v", err)
		}

		errDisk := errors.New("disk full")
		calls := 0
		err := c.FetchBodies(t.Context(), msgs, func(uid mail.UID, size int64, body io.Reader) error {
			calls++
			// Stop in the middle of the body.
			if _, err := io.ReadFull(body, make([]byte, 10)); err != nil {
				return err
			}
			return errDisk
		})
		if !errors.Is(err, errDisk) {
			t.Errorf("FetchBodies error %v, want the callback's", err)
		}
		if calls != 1 {
			t.Errorf("callback called %d times after failing, want once", calls)
		}

		// The rest of the reply was drained: the connection still works,
		// and the next reply is the next command's.
		st, err := c.Select(t.Context(), "Other")
		if err != nil {
			t.Fatalf("Select after a failed FetchBodies: %v", err)
		}
		if st.Messages != 1 {
			t.Errorf("Select Other: %d messages, want 1", st.Messages)
		}
		got, err := fetchBody(t.Context(), c, mail.RemoteMessage{UID: mail.UID(other)})
		if err != nil || !bytes.Equal(got, testMessage(4)) {
			t.Errorf("FetchBodies after a failed one: %v, body %q", err, got)
		}
	})
}

func TestRemoteMailbox(t *testing.T) {
	for _, tc := range []struct {
		in   imap.ListData
		want mail.RemoteMailbox
	}{
		{imap.ListData{Mailbox: "INBOX", Delim: '/'}, mail.RemoteMailbox{Name: "INBOX", Delim: '/'}},
		// RFC 9051 §5.1: INBOX in any case is INBOX.
		{imap.ListData{Mailbox: "inbox", Delim: '.'}, mail.RemoteMailbox{Name: "INBOX", Delim: '.'}},
		{imap.ListData{Mailbox: "InBox"}, mail.RemoteMailbox{Name: "INBOX"}},
		// Only INBOX itself: a child keeps the server's spelling.
		{imap.ListData{Mailbox: "inbox/Sub", Delim: '/'}, mail.RemoteMailbox{Name: "inbox/Sub", Delim: '/'}},
		{imap.ListData{Mailbox: "Inboxes", Delim: '/'}, mail.RemoteMailbox{Name: "Inboxes", Delim: '/'}},
		{
			imap.ListData{Mailbox: "Work", Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect, imap.MailboxAttrHasChildren}},
			mail.RemoteMailbox{Name: "Work", Delim: '/', NoSelect: true, Attrs: []string{`\Noselect`, `\HasChildren`}},
		},
		{
			imap.ListData{Mailbox: "Gone", Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrNonExistent}},
			mail.RemoteMailbox{Name: "Gone", Delim: '/', NoSelect: true, Attrs: []string{`\NonExistent`}},
		},
		// Attributes are case-insensitive.
		{
			imap.ListData{Mailbox: "Old", Delim: '/', Attrs: []imap.MailboxAttr{`\NOSELECT`}},
			mail.RemoteMailbox{Name: "Old", Delim: '/', NoSelect: true, Attrs: []string{`\NOSELECT`}},
		},
		{
			imap.ListData{Mailbox: "Sent", Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren, imap.MailboxAttrSent, imap.MailboxAttrMarked}},
			mail.RemoteMailbox{Name: "Sent", Delim: '/', Attrs: []string{`\HasNoChildren`, `\Sent`, `\Marked`}},
		},
		// A special-use attribute is spelled as RFC 6154 §2 does.
		{
			imap.ListData{Mailbox: "[Gmail]/All Mail", Delim: '/', Attrs: []imap.MailboxAttr{`\ALL`}},
			mail.RemoteMailbox{Name: "[Gmail]/All Mail", Delim: '/', Attrs: []string{`\All`}},
		},
	} {
		if got := remoteMailbox(&tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("remoteMailbox(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestMailboxStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       imap.SelectData
		wantPerm mail.Flags
		wantKW   bool
	}{
		{
			"condstore with keywords",
			imap.SelectData{
				UIDValidity: 1700000000, UIDNext: 42, NumMessages: 7, HighestModSeq: 1 << 40,
				PermanentFlags: []imap.Flag{imap.FlagSeen, imap.FlagDeleted, "$label1", imap.FlagWildcard},
			},
			mail.NewFlags(mail.FlagSeen, mail.FlagDeleted, "$label1"), true,
		},
		{
			// RFC 7162 §3.1.2.2: NOMODSEQ, or no CONDSTORE, is HighestModSeq 0.
			"no modseq, no keywords",
			imap.SelectData{UIDValidity: 1, UIDNext: 1, PermanentFlags: []imap.Flag{`\seen`, `\Recent`}},
			mail.NewFlags(mail.FlagSeen), false,
		},
		// RFC 3501 §7.1: without PERMANENTFLAGS every flag can be stored.
		{"no permanentflags", imap.SelectData{UIDValidity: 5, UIDNext: 9, NumMessages: 8},
			mail.NewFlags(mail.FlagSeen, mail.FlagAnswered, mail.FlagFlagged, mail.FlagDeleted, mail.FlagDraft), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mailboxStatus(&tc.in)
			if got.UIDValidity != mail.UIDValidity(tc.in.UIDValidity) || got.UIDNext != mail.UID(tc.in.UIDNext) ||
				got.Messages != tc.in.NumMessages || got.HighestModSeq != mail.ModSeq(tc.in.HighestModSeq) {
				t.Errorf("mailboxStatus = %+v from %+v", got, tc.in)
			}
			if !got.PermanentFlags.Equal(tc.wantPerm) {
				t.Errorf("PermanentFlags = %q, want %q", got.PermanentFlags, tc.wantPerm)
			}
			if got.CanCreateKeywords != tc.wantKW {
				t.Errorf("CanCreateKeywords = %v, want %v", got.CanCreateKeywords, tc.wantKW)
			}
		})
	}
}

// TestFetchBodiesCancel cancels the context while a body is streaming and
// the server has stopped in the middle of it.
func TestFetchBodiesCancel(t *testing.T) {
	c := mustDial(t, preauthServer(t, map[string]commandFunc{
		"UID": func(c net.Conn, _, _ string) bool {
			// 10 of the 100 bytes announced, then nothing.
			io.WriteString(c, "* 1 FETCH (UID 7 BODY[] {100}\r\n0123456789")
			return true
		},
	}))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	calls := 0
	err := c.FetchBodies(ctx, []mail.RemoteMessage{{UID: 7, Size: 100}}, func(uid mail.UID, size int64, body io.Reader) error {
		calls++
		if uid != 7 || size != 100 {
			t.Errorf("callback for UID %d of %d bytes, want UID 7 of 100", uid, size)
		}
		cancel()
		// Blocks until the cancellation closes the connection.
		_, err := io.ReadAll(body)
		return err
	})
	if calls != 1 {
		t.Errorf("callback called %d times, want once", calls)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("FetchBodies error %v, want context.Canceled", err)
	}
	// The connection is gone: the Client is unusable.
	if _, err := c.Select(t.Context(), "INBOX"); err == nil {
		t.Error("Select succeeded on a client whose call was cancelled")
	}
}

// TestFetchBodiesTruncated has the connection end in the middle of a body.
// The callback must not mistake the end of the stream for the end of the
// message: it would store a truncated message as a complete one.
func TestFetchBodiesTruncated(t *testing.T) {
	c := mustDial(t, preauthServer(t, map[string]commandFunc{
		"UID": func(c net.Conn, _, _ string) bool {
			// 10 of the 100 bytes announced, then the connection ends.
			io.WriteString(c, "* 1 FETCH (UID 7 BODY[] {100}\r\n0123456789")
			return false
		},
	}))

	err := c.FetchBodies(t.Context(), []mail.RemoteMessage{{UID: 7, Size: 100}}, func(uid mail.UID, size int64, body io.Reader) error {
		b, err := io.ReadAll(body)
		if err == nil && int64(len(b)) != size {
			t.Errorf("body of UID %d ended cleanly after %d of %d bytes", uid, len(b), size)
		}
		return err
	})
	if err == nil {
		t.Error("FetchBodies succeeded on a connection that ended mid-message")
	}
}
