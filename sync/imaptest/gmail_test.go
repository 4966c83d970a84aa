package imaptest

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// gmRawConn is a raw IMAP connection for the test side, for what go-imap's
// client cannot send or parse (X-GM-* items) and for exact wire text.
type gmRawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
	n  int
}

func dialGmailRaw(t *testing.T, s *Server, login bool) *gmRawConn {
	t.Helper()
	c, err := s.Dial()
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	r := &gmRawConn{t: t, c: c, br: bufio.NewReader(c)}
	if g := r.line(); !strings.HasPrefix(g, "* OK Gimap ready") {
		t.Fatalf("greeting %q", g)
	}
	if login {
		if _, tagged := r.cmd("LOGIN %s %s", s.User, s.Password); !strings.Contains(tagged, "OK") {
			t.Fatalf("login: %s", tagged)
		}
	}
	return r
}

// line reads one response line, literals inlined.
func (r *gmRawConn) line() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("read: %v (after %q)", err, b.String()+l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		b.WriteString(l)
		size, _, ok := literalAtEnd(l)
		if !ok {
			return b.String()
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(r.br, buf); err != nil {
			r.t.Fatalf("read literal: %v", err)
		}
		b.WriteString("\r\n" + string(buf))
	}
}

// cmd sends a command and returns its untagged responses and the tagged
// one (without the tag).
func (r *gmRawConn) cmd(format string, args ...any) (untagged []string, tagged string) {
	r.t.Helper()
	r.n++
	tag := "a" + strconv.Itoa(r.n)
	r.send(tag + " " + fmt.Sprintf(format, args...))
	for {
		l := r.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

func (r *gmRawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s+"\r\n"); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// mustOK is cmd, failing the test unless the answer is OK.
func (r *gmRawConn) mustOK(format string, args ...any) []string {
	r.t.Helper()
	u, tagged := r.cmd(format, args...)
	if !strings.HasPrefix(tagged, "OK") {
		r.t.Fatalf("%s: %s", fmt.Sprintf(format, args...), tagged)
	}
	return u
}

// fetchAttr returns the value of one FETCH item in a FETCH response line:
// a number, an atom, or a parenthesized list with its parentheses.
func fetchAttr(t *testing.T, line, item string) string {
	t.Helper()
	i := strings.Index(line, " "+item+" ")
	if i < 0 {
		i = strings.Index(line, "("+item+" ")
	}
	if i < 0 {
		t.Fatalf("no %s in %q", item, line)
	}
	rest := line[i+len(item)+2:]
	if rest[0] != '(' {
		end := strings.IndexAny(rest, " )")
		return rest[:end]
	}
	depth, inQuote := 0, false
	for j := 0; j < len(rest); j++ {
		switch c := rest[j]; {
		case inQuote && c == '\\':
			j++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '(':
			depth++
		case !inQuote && c == ')':
			if depth--; depth == 0 {
				return rest[:j+1]
			}
		}
	}
	t.Fatalf("unterminated %s in %q", item, line)
	return ""
}

// parseLabels reads an X-GM-LABELS list as a client must: atoms and
// quoted strings alike, quoted ones unescaped.
func parseLabels(t *testing.T, list string) []string {
	t.Helper()
	p := &gmParser{s: list}
	var out []string
	err := p.list(func() error {
		v, err := p.astring()
		if err == nil {
			v, err = decodeMUTF7(v)
		}
		out = append(out, v)
		return err
	})
	if err != nil || !p.done() {
		t.Fatalf("parse X-GM-LABELS %q: %v", list, err)
	}
	slices.Sort(out)
	return out
}

func gmailClient(t *testing.T, s *Server, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	nc, err := s.Dial()
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := imapclient.New(nc, opts)
	t.Cleanup(func() { c.Close() })
	if err := c.Login(s.User, s.Password).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

func gmailBody(id, subject string) []byte {
	return crlf(fmt.Sprintf("Message-ID: <%s@example.com>\nFrom: a@example.com\nSubject: %s\n\nbody of %s\n", id, subject, id))
}

// TestGmailOneMessageThreeLabels: a message with three labels is in
// three mailboxes and All Mail, with one X-GM-MSGID and a UID of each
// mailbox's own numbering; go-imap's client lists the mailboxes with
// their special-use attributes and reads the message in each.
func TestGmailOneMessageThreeLabels(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, GmailOptions{})
	// Earlier messages make the UIDs differ from mailbox to mailbox.
	s.GmailAdd(GmailMessage{Body: gmailBody("w0", "work only"), Labels: []string{"Work"}})
	s.GmailAdd(GmailMessage{Body: gmailBody("i0", "inbox only"), Labels: []string{`\Inbox`}})
	id := s.GmailAdd(GmailMessage{
		Body:   gmailBody("m1", "three labels"),
		Labels: []string{`\Inbox`, "Work", "Muy Importante"},
		Flags:  []string{`\Seen`},
		Date:   time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
	})
	want := []string{"INBOX", "Muy Importante", "Work", gmailAllMail} // sorted
	if got := s.GmailMailboxesOf(id); !slices.Equal(got, want) {
		t.Fatalf("mailboxes of the message: %q, want %q", got, want)
	}
	if n := s.GmailCopies(id); n != 4 {
		t.Fatalf("copies: %d, want 4", n)
	}

	c := gmailClient(t, s, nil)
	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	attrs := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		attrs[l.Mailbox] = l.Attrs
	}
	for name, attr := range map[string]imap.MailboxAttr{
		gmailAllMail:        imap.MailboxAttrAll,
		"[Gmail]/Sent Mail": imap.MailboxAttrSent,
		"[Gmail]/Drafts":    imap.MailboxAttrDrafts,
		"[Gmail]/Trash":     imap.MailboxAttrTrash,
		"[Gmail]/Spam":      imap.MailboxAttrJunk,
		"[Gmail]/Starred":   imap.MailboxAttrFlagged,
		"[Gmail]/Important": imap.MailboxAttr(`\Important`),
		"[Gmail]":           imap.MailboxAttrNoSelect,
		"Work":              imap.MailboxAttrHasNoChildren,
	} {
		if !slices.ContainsFunc(attrs[name], func(a imap.MailboxAttr) bool { return strings.EqualFold(string(a), string(attr)) }) {
			t.Errorf("LIST %q: attributes %v, want %s", name, attrs[name], attr)
		}
	}

	r := dialGmailRaw(t, s, true)
	uidvs := map[uint32]string{}
	uids := map[string]uint32{}
	for _, mbox := range want {
		data, err := c.Select(mbox, nil).Wait()
		if err != nil {
			t.Fatalf("select %q: %v", mbox, err)
		}
		if other, dup := uidvs[data.UIDValidity]; dup {
			t.Errorf("%q and %q share UIDVALIDITY %d", mbox, other, data.UIDValidity)
		}
		uidvs[data.UIDValidity] = mbox
		uid := s.GmailUID(mbox, id)
		uids[mbox] = uid
		msgs := s.Messages(mbox)
		found := slices.IndexFunc(msgs, func(m Message) bool { return m.UID == uid })
		if found < 0 || string(msgs[found].Body) != string(gmailBody("m1", "three labels")) ||
			!slices.Equal(msgs[found].Flags, []string{`\Seen`}) || !msgs[found].Date.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
			t.Fatalf("%q UID %d: not the message: %+v", mbox, uid, msgs)
		}
		r.mustOK("SELECT %s", mailboxArg(mbox))
		u := r.mustOK("UID FETCH %d (X-GM-MSGID X-GM-THRID)", uid)
		if len(u) != 1 || fetchAttr(t, u[0], "X-GM-MSGID") != strconv.FormatUint(id, 10) {
			t.Fatalf("%q: FETCH X-GM-MSGID: %q, want %d", mbox, u, id)
		}
		if fetchAttr(t, u[0], "X-GM-THRID") != strconv.FormatUint(id, 10) {
			t.Errorf("%q: X-GM-THRID of a thread's first message: %q, want its X-GM-MSGID", mbox, u[0])
		}
	}
	if uids["Work"] != 2 || uids["INBOX"] != 2 || uids["Muy Importante"] != 1 || uids[gmailAllMail] != 3 {
		t.Errorf("UIDs %v: each mailbox numbers its own", uids)
	}
	if id < 1<<32 {
		t.Errorf("X-GM-MSGID %d fits in 32 bits; Gmail's do not", id)
	}
}

// TestGmailStoreLabels: STORE +X-GM-LABELS, -X-GM-LABELS and X-GM-LABELS
// (and .SILENT) change the message's labels, and with them the mailboxes
// it is in, as other sessions see them.
func TestGmailStoreLabels(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, GmailOptions{})
	id := s.GmailAdd(GmailMessage{Body: gmailBody("m1", "labels"), Labels: []string{`\Inbox`}})
	r := dialGmailRaw(t, s, true)
	r.mustOK("SELECT INBOX")

	u := r.mustOK(`UID STORE 1 +X-GM-LABELS (Later "Project X" \Important)`)
	if len(u) != 1 || !slices.Equal(parseLabels(t, fetchAttr(t, u[0], "X-GM-LABELS")), sorted(`\Important`, "Later", "Project X")) {
		t.Fatalf("STORE +X-GM-LABELS answered %q", u)
	}
	want := []string{"INBOX", "Later", "Project X", "[Gmail]/All Mail", "[Gmail]/Important"}
	if got := s.GmailMailboxesOf(id); !slices.Equal(got, want) {
		t.Fatalf("after +X-GM-LABELS the message is in %q, want %q", got, want)
	}
	// A label STORE makes the label's mailbox; go-imap's client sees it.
	c := gmailClient(t, s, nil)
	st, err := c.Status("Project X", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 1 {
		t.Fatalf("STATUS \"Project X\": %v, %v", st, err)
	}

	// \Starred is the \Flagged flag.
	r.mustOK(`UID STORE 1 +X-GM-LABELS.SILENT (\Starred)`)
	msgs := s.Messages("[Gmail]/Starred")
	if len(msgs) != 1 || !slices.Contains(msgs[0].Flags, `\Flagged`) {
		t.Fatalf("after +X-GM-LABELS \\Starred, Starred holds %+v", msgs)
	}

	// Removing INBOX's own label from INBOX: the message leaves INBOX,
	// and the client hears it (UID STORE may send EXPUNGE).
	u = r.mustOK(`UID STORE 1 -X-GM-LABELS (\Inbox)`)
	if !slices.Contains(u, "* 1 EXPUNGE") {
		t.Errorf("-X-GM-LABELS \\Inbox in INBOX: no EXPUNGE in %q", u)
	}
	if uid := s.GmailUID("INBOX", id); uid != 0 {
		t.Errorf("message still in INBOX (UID %d)", uid)
	}

	// X-GM-LABELS replaces; in "Later" the set is written without
	// "Later" itself.
	r.mustOK(`SELECT Later`)
	u = r.mustOK(`UID STORE 1 X-GM-LABELS (Later Other)`)
	if len(u) != 1 || !slices.Equal(parseLabels(t, fetchAttr(t, u[0], "X-GM-LABELS")), []string{"Other"}) {
		t.Fatalf("STORE X-GM-LABELS in Later answered %q", u)
	}
	labels, _ := s.GmailLabels(id)
	if !slices.Equal(labels, []string{"Later", "Other"}) {
		t.Errorf("labels after replacing: %q (the star is a label too)", labels)
	}
	if got := s.GmailMailboxesOf(id); !slices.Equal(got, []string{"Later", "Other", "[Gmail]/All Mail"}) {
		t.Errorf("after X-GM-LABELS the message is in %q", got)
	}
	// Project X still exists as an empty label.
	st, err = c.Status("Project X", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 0 {
		t.Fatalf("STATUS \"Project X\" after the label went: %v, %v", st, err)
	}
}

// TestGmailLabelForms: X-GM-LABELS as Google documents it (system labels
// as atoms) and as Gmail sends it now (quoted, backslash escaped) name the
// same labels; a user label with spaces or specials is quoted, one in
// non-ASCII is in modified UTF-7, and the selected mailbox's own label is
// left out.
func TestGmailLabelForms(t *testing.T) {
	t.Parallel()
	for _, quoted := range []bool{false, true} {
		t.Run(fmt.Sprintf("quoted=%v", quoted), func(t *testing.T) {
			t.Parallel()
			s := StartGmail(t, GmailOptions{QuotedSystemLabels: quoted})
			s.GmailAdd(GmailMessage{
				Body:   gmailBody("m1", "forms"),
				Labels: []string{`\Inbox`, `\Important`, `\Sent`, "Muy Importante", "Café", "[x]", "fav"},
				Flags:  []string{`\Flagged`},
			})
			r := dialGmailRaw(t, s, true)
			r.mustOK("EXAMINE %s", Quote(gmailAllMail))
			u := r.mustOK("FETCH 1 (X-GM-LABELS)")
			raw := fetchAttr(t, u[0], "X-GM-LABELS")
			// Sorted by name, as in the responses users report
			// (ruby/net-imap#272).
			wantRaw := `(Caf&AOk- "Muy Importante" "[x]" \Important \Inbox \Sent \Starred fav)`
			if quoted {
				wantRaw = `(Caf&AOk- "Muy Importante" "[x]" "\\Important" "\\Inbox" "\\Sent" "\\Starred" fav)`
			}
			if raw != wantRaw {
				t.Errorf("X-GM-LABELS in All Mail:\n got %s\nwant %s", raw, wantRaw)
			}
			all := []string{`\Important`, `\Inbox`, `\Sent`, `\Starred`, "Café", "Muy Importante", "[x]", "fav"}
			slices.Sort(all)
			if got := parseLabels(t, raw); !slices.Equal(got, all) {
				t.Errorf("parsed %q, want %q", got, all)
			}
			// In INBOX, and in a user label's mailbox, the own label
			// is left out.
			for mbox, own := range map[string]string{"INBOX": `\Inbox`, "Café": "Café", "[Gmail]/Starred": `\Starred`} {
				r.mustOK("EXAMINE %s", mailboxArg(mbox))
				u := r.mustOK("FETCH 1 (X-GM-LABELS)")
				want := slices.DeleteFunc(slices.Clone(all), func(l string) bool { return l == own })
				if got := parseLabels(t, fetchAttr(t, u[0], "X-GM-LABELS")); !slices.Equal(got, want) {
					t.Errorf("in %q: %q, want %q", mbox, got, want)
				}
			}
			// A STORE takes either form.
			r.mustOK("SELECT INBOX")
			r.mustOK(`STORE 1 -X-GM-LABELS ("\\Important" \Sent)`)
			labels, _ := s.GmailLabels(s.GmailAdd(GmailMessage{Body: gmailBody("m2", "x")})) // an archived one: no labels
			if len(labels) != 0 {
				t.Fatalf("archived message has labels %q", labels)
			}
			u = r.mustOK("FETCH 1 (X-GM-LABELS)")
			if got := parseLabels(t, fetchAttr(t, u[0], "X-GM-LABELS")); slices.Contains(got, `\Important`) || slices.Contains(got, `\Sent`) {
				t.Errorf("after -X-GM-LABELS (\"\\\\Important\" \\Sent): %q", got)
			}
		})
	}
}

// TestGmailChangedSince: a label change raises the message's MODSEQ in
// every mailbox it is in, so FETCH CHANGEDSINCE finds it, unless the
// server is one that leaves MODSEQ alone for labels; a flag change
// raises it either way.
func TestGmailChangedSince(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("LabelsKeepModSeq=%v", keep), func(t *testing.T) {
			t.Parallel()
			s := StartGmail(t, GmailOptions{LabelsKeepModSeq: keep})
			id := s.GmailAdd(GmailMessage{Body: gmailBody("m1", "modseq"), Labels: []string{`\Inbox`, "Work"}})
			s.GmailAdd(GmailMessage{Body: gmailBody("m2", "other"), Labels: []string{`\Inbox`, "Work"}})

			c := gmailClient(t, s, nil)
			if !c.Caps().Has(imap.CapCondStore) || c.Caps().Has(imap.CapQResync) {
				t.Fatalf("capabilities %v: want CONDSTORE, no QRESYNC", c.Caps())
			}
			sel, err := c.Select("Work", &imap.SelectOptions{CondStore: true}).Wait()
			if err != nil {
				t.Fatalf("select: %v", err)
			}
			allBefore, err := c.Status(gmailAllMail, &imap.StatusOptions{HighestModSeq: true}).Wait()
			if err != nil {
				t.Fatalf("status: %v", err)
			}

			r := dialGmailRaw(t, s, true)
			r.mustOK("SELECT INBOX")
			r.mustOK(`UID STORE %d +X-GM-LABELS.SILENT (Later)`, s.GmailUID("INBOX", id))

			changed := func(mbox string, since uint64) []uint32 {
				t.Helper()
				if _, err := c.Select(mbox, &imap.SelectOptions{CondStore: true}).Wait(); err != nil {
					t.Fatalf("select %q: %v", mbox, err)
				}
				msgs, err := c.Fetch(imap.UIDSetNum(1, 2, 3), &imap.FetchOptions{UID: true, ModSeq: true, ChangedSince: since}).Collect()
				if err != nil {
					t.Fatalf("fetch changedsince in %q: %v", mbox, err)
				}
				var uids []uint32
				for _, m := range msgs {
					if m.ModSeq != s.GmailModSeq(id) && m.UID == imap.UID(s.GmailUID(mbox, id)) {
						t.Errorf("%q: MODSEQ %d, store has %d", mbox, m.ModSeq, s.GmailModSeq(id))
					}
					uids = append(uids, uint32(m.UID))
				}
				return uids
			}
			got := changed("Work", sel.HighestModSeq)
			gotAll := changed(gmailAllMail, allBefore.HighestModSeq)
			if keep {
				if len(got) != 0 || len(gotAll) != 0 {
					t.Errorf("label change with LabelsKeepModSeq: CHANGEDSINCE found %v in Work, %v in All Mail", got, gotAll)
				}
			} else {
				if !slices.Equal(got, []uint32{s.GmailUID("Work", id)}) || !slices.Equal(gotAll, []uint32{s.GmailUID(gmailAllMail, id)}) {
					t.Errorf("label change: CHANGEDSINCE found %v in Work, %v in All Mail; want the message in both", got, gotAll)
				}
			}
			// The new label's mailbox has a HIGHESTMODSEQ covering it.
			later, err := c.Status("Later", &imap.StatusOptions{HighestModSeq: true, NumMessages: true}).Wait()
			if err != nil || *later.NumMessages != 1 || later.HighestModSeq < s.GmailModSeq(id) {
				t.Errorf("STATUS Later: %+v, %v", later, err)
			}

			// A flag change raises MODSEQ in every mailbox, either way.
			work, err := c.Status("Work", &imap.StatusOptions{HighestModSeq: true}).Wait()
			if err != nil {
				t.Fatalf("status: %v", err)
			}
			before := work.HighestModSeq
			r.mustOK(`UID STORE %d +FLAGS.SILENT (\Seen)`, s.GmailUID("INBOX", id))
			if s.GmailModSeq(id) <= before {
				t.Fatalf("flag change left MODSEQ at %d", before)
			}
			if got := changed("Work", before); !slices.Equal(got, []uint32{s.GmailUID("Work", id)}) {
				t.Errorf("flag change: CHANGEDSINCE %d in Work found %v", before, got)
			}
		})
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// TestGmailDeletion: each of Gmail's deletion rules (Gmail Help answer
// 77657 and the IMAP settings), through the harness's own expunge
// (STORE \Deleted, UID EXPUNGE) and go-imap's MOVE and COPY.
func TestGmailDeletion(t *testing.T) {
	t.Parallel()
	labels := []string{`\Inbox`, "Work", `\Important`}
	type outcome struct {
		mailboxes []string // where the message is afterwards; nil: gone for good
		labels    []string
	}
	for _, tc := range []struct {
		name string
		opts GmailOptions
		do   func(t *testing.T, s *Server, id uint64)
		want outcome
	}{
		{
			name: "expunge in INBOX removes \\Inbox",
			do:   func(t *testing.T, s *Server, id uint64) { s.Expunge("INBOX", s.GmailUID("INBOX", id)) },
			want: outcome{sorted("Work", gmailAllMail, "[Gmail]/Important"), sorted("Work", `\Important`)},
		},
		{
			name: "expunge in a label's mailbox removes that label",
			do:   func(t *testing.T, s *Server, id uint64) { s.Expunge("Work", s.GmailUID("Work", id)) },
			want: outcome{sorted("INBOX", gmailAllMail, "[Gmail]/Important"), sorted(`\Inbox`, `\Important`)},
		},
		{
			name: "expunge in All Mail archives by default: nothing changes",
			do: func(t *testing.T, s *Server, id uint64) {
				uid := s.GmailUID(gmailAllMail, id)
				s.Expunge(gmailAllMail, uid)
				if got := s.GmailUID(gmailAllMail, id); got != uid {
					t.Errorf("UID in All Mail went from %d to %d", uid, got)
				}
				if msgs := s.Messages(gmailAllMail); len(msgs) != 1 || slices.Contains(msgs[0].Flags, `\Deleted`) {
					t.Errorf("All Mail after the expunge: %+v", msgs)
				}
			},
			want: outcome{sorted("INBOX", "Work", gmailAllMail, "[Gmail]/Important"), sorted(labels...)},
		},
		{
			name: "expunge in All Mail trashes when set so",
			opts: GmailOptions{Expunge: GmailExpungeTrash},
			do:   func(t *testing.T, s *Server, id uint64) { s.Expunge(gmailAllMail, s.GmailUID(gmailAllMail, id)) },
			want: outcome{[]string{"[Gmail]/Trash"}, sorted(append([]string{`\Trash`}, labels...)...)},
		},
		{
			name: "expunge in All Mail deletes for good when set so",
			opts: GmailOptions{Expunge: GmailExpungeDeleteForever},
			do:   func(t *testing.T, s *Server, id uint64) { s.Expunge(gmailAllMail, s.GmailUID(gmailAllMail, id)) },
		},
		{
			name: "MOVE to Trash leaves every other mailbox, labels kept",
			do: func(t *testing.T, s *Server, id uint64) {
				c := gmailClient(t, s, nil)
				if _, err := c.Select("Work", nil).Wait(); err != nil {
					t.Fatal(err)
				}
				data, err := c.Move(imap.UIDSetNum(imap.UID(s.GmailUID("Work", id))), "[Gmail]/Trash").Wait()
				if err != nil {
					t.Fatalf("move: %v", err)
				}
				if got := data.DestUIDs; !slices.Equal(uidList(got.(imap.UIDSet)), []uint32{s.GmailUID("[Gmail]/Trash", id)}) {
					t.Errorf("COPYUID names %v", got)
				}
			},
			want: outcome{[]string{"[Gmail]/Trash"}, sorted(append([]string{`\Trash`}, labels...)...)},
		},
		{
			name: "out of Trash, the message comes back with its labels",
			do: func(t *testing.T, s *Server, id uint64) {
				c := gmailClient(t, s, nil)
				if _, err := c.Select("INBOX", nil).Wait(); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Move(imap.UIDSetNum(imap.UID(s.GmailUID("INBOX", id))), "[Gmail]/Trash").Wait(); err != nil {
					t.Fatalf("move to Trash: %v", err)
				}
				if _, err := c.Select("[Gmail]/Trash", nil).Wait(); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Move(imap.UIDSetNum(imap.UID(s.GmailUID("[Gmail]/Trash", id))), "INBOX").Wait(); err != nil {
					t.Fatalf("move back: %v", err)
				}
			},
			want: outcome{sorted("INBOX", "Work", gmailAllMail, "[Gmail]/Important"), sorted(labels...)},
		},
		{
			name: "expunge in Trash deletes for good",
			do: func(t *testing.T, s *Server, id uint64) {
				c := gmailClient(t, s, nil)
				if _, err := c.Select("INBOX", nil).Wait(); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Copy(imap.UIDSetNum(imap.UID(s.GmailUID("INBOX", id))), "[Gmail]/Trash").Wait(); err != nil {
					t.Fatalf("copy to Trash: %v", err)
				}
				s.Expunge("[Gmail]/Trash", s.GmailUID("[Gmail]/Trash", id))
			},
		},
		{
			name: "expunge in Spam deletes for good",
			do: func(t *testing.T, s *Server, id uint64) {
				c := gmailClient(t, s, nil)
				if _, err := c.Select("INBOX", nil).Wait(); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Move(imap.UIDSetNum(imap.UID(s.GmailUID("INBOX", id))), "[Gmail]/Spam").Wait(); err != nil {
					t.Fatalf("move to Spam: %v", err)
				}
				if got := s.GmailMailboxesOf(id); !slices.Equal(got, []string{"[Gmail]/Spam"}) {
					t.Errorf("reported as spam, the message is in %q", got)
				}
				s.Expunge("[Gmail]/Spam", s.GmailUID("[Gmail]/Spam", id))
			},
		},
		{
			name: "MOVE between labels moves the label",
			do: func(t *testing.T, s *Server, id uint64) {
				c := gmailClient(t, s, nil)
				if _, err := c.Select("Work", nil).Wait(); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Move(imap.UIDSetNum(imap.UID(s.GmailUID("Work", id))), "Done").Wait(); err != nil {
					t.Fatalf("move: %v", err)
				}
			},
			want: outcome{sorted("INBOX", "Done", gmailAllMail, "[Gmail]/Important"), sorted(`\Inbox`, "Done", `\Important`)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := StartGmail(t, tc.opts)
			s.CreateMailbox("Done")
			id := s.GmailAdd(GmailMessage{Body: gmailBody("m1", "delete me"), Labels: labels})
			tc.do(t, s, id)
			got, ok := s.GmailLabels(id)
			if tc.want.mailboxes == nil {
				if ok {
					t.Fatalf("message still exists, labels %q, in %q", got, s.GmailMailboxesOf(id))
				}
				if n := s.GmailMessageCount(); n != 0 {
					t.Fatalf("%d messages left", n)
				}
				return
			}
			if !ok {
				t.Fatalf("message deleted for good")
			}
			if !slices.Equal(got, tc.want.labels) {
				t.Errorf("labels %q, want %q", got, tc.want.labels)
			}
			if boxes := s.GmailMailboxesOf(id); !slices.Equal(boxes, tc.want.mailboxes) {
				t.Errorf("in %q, want %q", boxes, tc.want.mailboxes)
			}
		})
	}
}

func uidList(set imap.UIDSet) []uint32 {
	uids, _ := set.Nums()
	out := make([]uint32, len(uids))
	for i, u := range uids {
		out[i] = uint32(u)
	}
	return out
}

// TestGmailAutoExpunge: with Gmail's default Auto-Expunge on, \Deleted
// removes the message from the mailbox at once; with it off, the message
// waits, marked, for EXPUNGE.
func TestGmailAutoExpunge(t *testing.T) {
	t.Parallel()
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("AutoExpungeOff=%v", off), func(t *testing.T) {
			t.Parallel()
			s := StartGmail(t, GmailOptions{AutoExpungeOff: off})
			id := s.GmailAdd(GmailMessage{Body: gmailBody("m1", "auto"), Labels: []string{`\Inbox`, "Work"}})
			r := dialGmailRaw(t, s, true)
			r.mustOK("SELECT INBOX")
			u := r.mustOK(`STORE 1 +FLAGS (\Deleted)`)
			if len(u) != 1 || !strings.Contains(u[0], `\Deleted`) {
				t.Errorf("STORE answered %q", u)
			}
			u = r.mustOK("NOOP")
			expunged := slices.Contains(u, "* 1 EXPUNGE")
			if expunged == off {
				t.Errorf("NOOP after STORE \\Deleted: %q", u)
			}
			// \Deleted is INBOX's own: Work shows the message unmarked.
			if msgs := s.Messages("Work"); len(msgs) != 1 || slices.Contains(msgs[0].Flags, `\Deleted`) {
				t.Errorf("Work: %+v", msgs)
			}
			if off {
				r.mustOK("EXPUNGE")
			}
			if uid := s.GmailUID("INBOX", id); uid != 0 {
				t.Errorf("still in INBOX")
			}
		})
	}
}

// TestGmailAppendDuplicate: an APPEND of a message Gmail already has
// (same Message-ID, same bytes) stores nothing new: the message it has
// gets the mailbox's label, and APPENDUID names its UID there; a trashed
// one comes back. Another body under the same Message-ID is a new
// message.
func TestGmailAppendDuplicate(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, GmailOptions{})
	s.CreateMailbox("Work")
	body := gmailBody("dup", "twice")
	date := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
	first := s.Append("INBOX", body, []string{`\Seen`}, date)
	s.Append("Work", gmailBody("w1", "other"), nil, time.Time{})
	if n := s.GmailMessageCount(); n != 2 {
		t.Fatalf("%d messages after two APPENDs", n)
	}
	second := s.Append("Work", body, nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if n := s.GmailMessageCount(); n != 2 {
		t.Fatalf("%d messages after appending a duplicate, want 2", n)
	}
	msgs := s.Messages("Work")
	if second != 2 || len(msgs) != 2 || msgs[1].UID != second || !msgs[1].Date.Equal(date) || !slices.Equal(msgs[1].Flags, []string{`\Seen`}) {
		t.Fatalf("duplicate: APPENDUID %d, Work holds %+v; want the first copy, date and flags kept", second, msgs)
	}
	if in := s.Messages("INBOX"); len(in) != 1 || in[0].UID != first {
		t.Fatalf("INBOX: %+v", in)
	}

	// A duplicate of a trashed message un-trashes it.
	c := gmailClient(t, s, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(imap.UID(first)), "[Gmail]/Trash").Wait(); err != nil {
		t.Fatalf("move to Trash: %v", err)
	}
	if msgs := s.Messages("Work"); len(msgs) != 1 {
		t.Fatalf("trashed message still in Work: %+v", msgs)
	}
	again := s.Append("INBOX", body, nil, time.Time{})
	if n := s.GmailMessageCount(); n != 2 {
		t.Fatalf("%d messages after appending a trashed one's duplicate", n)
	}
	if again != first+1 || len(s.Messages("[Gmail]/Trash")) != 0 || len(s.Messages("Work")) != 2 {
		t.Errorf("re-appended: UID %d in INBOX (a new one, after %d), Trash %d, Work %d", again, first, len(s.Messages("[Gmail]/Trash")), len(s.Messages("Work")))
	}

	// Same Message-ID, other bytes: a message of its own.
	s.Append("INBOX", append(body, "PS\r\n"...), nil, time.Time{})
	if n := s.GmailMessageCount(); n != 3 {
		t.Fatalf("%d messages after appending a different body, want 3", n)
	}
}

// TestGmailLimits: each of Gmail's limit answers, as users report them.
func TestGmailLimits(t *testing.T) {
	t.Parallel()
	t.Run("too many simultaneous connections", func(t *testing.T) {
		t.Parallel()
		s := StartGmail(t, GmailOptions{Limits: GmailLimits{MaxConnections: 2}})
		a := dialGmailRaw(t, s, true)
		dialGmailRaw(t, s, true)
		c := dialGmailRaw(t, s, false)
		if _, tagged := c.cmd("LOGIN %s %s", s.User, s.Password); tagged != "NO [ALERT] Too many simultaneous connections. (Failure)" {
			t.Fatalf("third LOGIN: %q", tagged)
		}
		// go-imap's client reads it as an ALERT refusal.
		nc, _ := s.Dial()
		gc := imapclient.New(nc, nil)
		defer gc.Close()
		err := gc.Login(s.User, s.Password).Wait()
		var ierr *imap.Error
		if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeAlert {
			t.Errorf("go-imap login: %v", err)
		}
		a.mustOK("LOGOUT")
		waitFor(t, func() bool {
			_, tagged := c.cmd("LOGIN %s %s", s.User, s.Password)
			return strings.HasPrefix(tagged, "OK")
		})
	})
	t.Run("Gmail's cap is 15", func(t *testing.T) {
		t.Parallel()
		s := StartGmail(t, GmailOptions{})
		for range 15 {
			dialGmailRaw(t, s, true)
		}
		c := dialGmailRaw(t, s, false)
		if _, tagged := c.cmd("LOGIN %s %s", s.User, s.Password); !strings.Contains(tagged, "Too many simultaneous connections") {
			t.Fatalf("16th LOGIN: %q", tagged)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		t.Parallel()
		s := StartGmail(t, GmailOptions{Limits: GmailLimits{ThrottleAfter: 4}})
		r := dialGmailRaw(t, s, true) // command 1
		for i, want := range []string{"OK Success", "OK Success", "OK Success [THROTTLED]", "OK Success [THROTTLED]"} {
			if _, tagged := r.cmd("NOOP"); tagged != want {
				t.Errorf("command %d: %q, want %q", i+2, tagged, want)
			}
		}
		// go-imap's client takes such an OK as an OK.
		c := gmailClient(t, s, nil)
		if err := c.Noop().Wait(); err != nil {
			t.Errorf("go-imap NOOP while throttled: %v", err)
		}
	})
	t.Run("over quota by bytes", func(t *testing.T) {
		t.Parallel()
		s := StartGmail(t, GmailOptions{Limits: GmailLimits{OverQuotaAfterBytes: 100}})
		s.GmailAdd(GmailMessage{Body: crlf("Subject: big\n\n" + strings.Repeat("x", 200) + "\n"), Labels: []string{`\Inbox`}})
		r := dialGmailRaw(t, s, true)
		r.mustOK("SELECT INBOX")
		r.mustOK("FETCH 1 BODY.PEEK[]")
		_, tagged := r.cmd("FETCH 1 BODY.PEEK[]")
		if tagged != "NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)" {
			t.Errorf("FETCH over the byte limit: %q", tagged)
		}
		if u, tagged := r.cmd("LOGOUT"); !strings.HasPrefix(tagged, "OK") || !slices.Contains(u, "* BYE LOGOUT Requested") {
			t.Errorf("LOGOUT over quota: %q %q", u, tagged)
		}
	})
	t.Run("over quota by commands", func(t *testing.T) {
		t.Parallel()
		s := StartGmail(t, GmailOptions{Limits: GmailLimits{OverQuotaAfterCommands: 3}})
		r := dialGmailRaw(t, s, true) // 1
		r.mustOK("NOOP")              // 2
		r.mustOK("NOOP")              // 3
		c := gmailClient(t, s, nil)   // 4: LOGIN works, the account is not judged before it
		err := c.Noop().Wait()
		var ierr *imap.Error
		if !errors.As(err, &ierr) || ierr.Code != "OVERQUOTA" || !strings.Contains(ierr.Text, "bandwidth limits") {
			t.Errorf("go-imap NOOP over the command limit: %v", err)
		}
	})
	t.Run("quota back, peak and logins counted", func(t *testing.T) {
		t.Parallel()
		s := StartGmail(t, GmailOptions{Limits: GmailLimits{OverQuotaAfterCommands: 2}})
		a := dialGmailRaw(t, s, true) // 1
		a.mustOK("NOOP")              // 2
		if _, tagged := a.cmd("NOOP"); !strings.Contains(tagged, "[OVERQUOTA]") {
			t.Fatalf("third command: %q", tagged)
		}
		s.GmailSetLimits(GmailLimits{})
		a.mustOK("NOOP")
		dialGmailRaw(t, s, true).mustOK("NOOP")
		if p, l := s.GmailPeakConnections(), s.GmailLogins(); p != 2 || l != 2 {
			t.Errorf("peak %d, logins %d; want 2 and 2", p, l)
		}
	})
	t.Run("session expires after n commands", func(t *testing.T) {
		t.Parallel()
		s := StartGmail(t, GmailOptions{Limits: GmailLimits{SessionExpiresAfter: 3}})
		r := dialGmailRaw(t, s, true)
		r.mustOK("NOOP")
		r.mustOK("NOOP")
		r.n++
		r.send("a99 NOOP")
		if l := r.line(); l != "* BYE Session expired, please login again." {
			t.Fatalf("third command: %q", l)
		}
		r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := r.br.ReadByte(); err != io.EOF {
			t.Errorf("connection not closed after BYE: %v", err)
		}
	})
	t.Run("sessions expired while in IDLE", func(t *testing.T) {
		t.Parallel()
		s := StartGmail(t, GmailOptions{})
		r := dialGmailRaw(t, s, true)
		r.mustOK("SELECT INBOX")
		r.send("i1 IDLE")
		if l := r.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("IDLE: %q", l)
		}
		s.GmailExpireSessions()
		if l := r.line(); l != "* BYE Session expired, please login again." {
			t.Fatalf("in IDLE after expiry: %q", l)
		}
		// A new session logs in.
		dialGmailRaw(t, s, true).mustOK("NOOP")
	})
}

// waitFor polls cond until it holds, for state another goroutine
// changes (a server noticing a closed connection).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGmailSearch: SEARCH by X-GM-MSGID, X-GM-THRID, X-GM-LABELS and
// X-GM-RAW's label: and in:, and go-imap's ESEARCH UID SEARCH.
func TestGmailSearch(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, GmailOptions{})
	a := s.GmailAdd(GmailMessage{Body: gmailBody("a", "first"), Labels: []string{`\Inbox`, "Work/Projects"}})
	b := s.GmailAdd(GmailMessage{Body: crlf("Message-ID: <b@example.com>\nIn-Reply-To: <a@example.com>\nSubject: Re: first\n\nreply\n"), Labels: []string{"Work/Projects"}})
	s.GmailAdd(GmailMessage{Body: gmailBody("c", "third"), Labels: []string{`\Inbox`}, Flags: []string{`\Flagged`}})
	r := dialGmailRaw(t, s, true)
	r.mustOK("SELECT %s", Quote(gmailAllMail))
	for query, want := range map[string]string{
		fmt.Sprintf("X-GM-MSGID %d", b):                   "* SEARCH 2",
		fmt.Sprintf("X-GM-THRID %d", a):                   "* SEARCH 1 2",
		`X-GM-LABELS Work/Projects`:                       "* SEARCH 1 2",
		`X-GM-LABELS \Inbox`:                              "* SEARCH 1 3",
		`X-GM-LABELS "\\Starred"`:                         "* SEARCH 3",
		`X-GM-RAW "label:work-projects"`:                  "* SEARCH 1 2",
		`X-GM-RAW "in:inbox -label:Work/Projects"`:        "* SEARCH 3",
		`X-GM-RAW "is:starred"`:                           "* SEARCH 3",
		`UID SEARCH X-GM-RAW "rfc822msgid:b@example.com"`: "* SEARCH 2",
	} {
		cmd := "SEARCH " + query
		if strings.HasPrefix(query, "UID ") {
			cmd = query
		}
		if u := r.mustOK("%s", cmd); !slices.Equal(u, []string{want}) {
			t.Errorf("%s: %q, want %q", cmd, u, want)
		}
	}

	c := gmailClient(t, s, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{}, &imap.SearchOptions{ReturnAll: true, ReturnCount: true}).Wait()
	if err != nil {
		t.Fatalf("uid search: %v", err)
	}
	if got := uidList(data.All.(imap.UIDSet)); !slices.Equal(got, []uint32{1, 2}) || data.Count != 2 {
		t.Errorf("ESEARCH: %v count %d", got, data.Count)
	}
}

// TestGmailIdleSeesLabelChange: a session in IDLE on a label's mailbox
// hears of a message given that label on another connection, and of it
// leaving when the label goes.
func TestGmailIdleSeesLabelChange(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, GmailOptions{})
	s.CreateMailbox("Later")
	id := s.GmailAdd(GmailMessage{Body: gmailBody("m1", "idle"), Labels: []string{`\Inbox`}})
	w := dialGmailRaw(t, s, true)
	w.mustOK("SELECT Later")
	w.send("i1 IDLE")
	if l := w.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	r := dialGmailRaw(t, s, true)
	r.mustOK("SELECT INBOX")
	r.mustOK(`UID STORE %d +X-GM-LABELS.SILENT (Later)`, s.GmailUID("INBOX", id))
	if l := w.line(); l != "* 1 EXISTS" {
		t.Fatalf("in IDLE after +X-GM-LABELS: %q", l)
	}
	r.mustOK(`UID STORE %d -X-GM-LABELS.SILENT (Later)`, s.GmailUID("INBOX", id))
	for {
		l := w.line()
		if l == "* 1 EXPUNGE" {
			break
		}
		if !strings.Contains(l, "FETCH") {
			t.Fatalf("in IDLE after -X-GM-LABELS: %q", l)
		}
	}
	w.send("DONE")
	if l := w.line(); l != "i1 OK IDLE terminated (Success)" {
		t.Errorf("DONE: %q", l)
	}
}

// TestGmailXOAuth2: AUTHENTICATE XOAUTH2 with the token logs in; a wrong
// token gets Gmail's error challenge, then NO [AUTHENTICATIONFAILED].
func TestGmailXOAuth2(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, GmailOptions{Token: "ya29.good"})
	ir := func(token string) string {
		return base64.StdEncoding.EncodeToString([]byte("user=" + s.User + "\x01auth=Bearer " + token + "\x01\x01"))
	}
	r := dialGmailRaw(t, s, false)
	if u := r.mustOK("CAPABILITY"); len(u) != 1 || !strings.Contains(u[0], "AUTH=XOAUTH2") || !strings.Contains(u[0], "SASL-IR") {
		t.Fatalf("capabilities before login: %q", u)
	}
	r.send("a9 AUTHENTICATE XOAUTH2 " + ir("ya29.expired"))
	l := r.line()
	challenge, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "+ "))
	if err != nil || !strings.Contains(string(challenge), `"status":"400"`) {
		t.Fatalf("challenge %q (%s)", l, challenge)
	}
	r.send("")
	if l := r.line(); l != "a9 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)" {
		t.Fatalf("after the challenge: %q", l)
	}
	u := r.mustOK("AUTHENTICATE XOAUTH2 %s", ir("ya29.good"))
	if len(u) != 1 || !strings.Contains(u[0], "X-GM-EXT-1") || !strings.Contains(u[0], "CONDSTORE") {
		t.Errorf("capabilities after login: %q", u)
	}
	r.mustOK("SELECT INBOX")
}
