package imaptest

import (
	"bufio"
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
