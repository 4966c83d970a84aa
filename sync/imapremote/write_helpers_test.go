package imapremote

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// writeMode is one server the write-side tests run against, with what it
// advertises.
type writeMode struct {
	name      string
	start     func(testing.TB) *imaptest.Server
	condStore bool // CONDSTORE advertised
	uidPlus   bool // UIDPLUS advertised
	move      bool // MOVE advertised
}

// writeModes: Dovecot with everything, with CONDSTORE but no QRESYNC, and
// bare RFC 3501; go-imap's server, with UIDPLUS and MOVE but no CONDSTORE.
var writeModes = []writeMode{
	{"dovecot", func(t testing.TB) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	}, true, true, true},
	{"dovecot-condstore", func(t testing.TB) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: imaptest.CapsCondStoreOnly})
	}, true, true, true},
	{"dovecot-plain", func(t testing.TB) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: imaptest.CapsPlain})
	}, false, false, false},
	{"memory", imaptest.StartMemory, false, true, true},
}

// writeEnv is a server, a Client on it and the Client's trace.
type writeEnv struct {
	mode  writeMode
	srv   *imaptest.Server
	c     *Client
	trace *traceBuffer
}

// forEachWriteMode runs test, in parallel, against a fresh server of each
// mode.
func forEachWriteMode(t *testing.T, test func(t *testing.T, e writeEnv)) {
	for _, m := range writeModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			srv := m.start(t)
			trace := &traceBuffer{}
			test(t, writeEnv{mode: m, srv: srv, c: connect(t, srv, trace), trace: trace})
		})
	}
}

func (e writeEnv) selectBox(t *testing.T, name string) mail.MailboxStatus {
	t.Helper()
	st, err := e.c.Select(t.Context(), name)
	if err != nil {
		t.Fatalf("Select %q: %v", name, err)
	}
	return st
}

// meta returns what the Client's Meta says of uids, by UID.
func (e writeEnv) meta(t *testing.T, uids ...uint32) map[mail.UID]mail.RemoteMessage {
	t.Helper()
	l := make([]mail.UID, len(uids))
	for i, u := range uids {
		l[i] = mail.UID(u)
	}
	got, err := e.c.Meta(t.Context(), l)
	if err != nil {
		t.Fatalf("Meta: %v", err)
	}
	out := map[mail.UID]mail.RemoteMessage{}
	for _, m := range got {
		out[m.UID] = m
	}
	return out
}

// onServer returns the mailbox's messages as the harness sees them, by UID.
func (e writeEnv) onServer(t *testing.T, mailbox string) map[uint32]imaptest.Message {
	t.Helper()
	out := map[uint32]imaptest.Message{}
	for _, m := range e.srv.Messages(mailbox) {
		out[m.UID] = m
	}
	return out
}

// mark returns the trace's length, for since.
func (e writeEnv) mark() int { return len(e.trace.String()) }

// since returns the trace recorded after mark.
func (e writeEnv) since(mark int) string { return e.trace.String()[mark:] }

// tracedCommands returns the client lines of a trace whose command (after the
// tag, and after "UID") is cmd.
func tracedCommands(trace, cmd string) []string {
	var out []string
	for _, l := range clientLines(trace) {
		f := strings.Fields(l)
		if len(f) >= 3 && strings.EqualFold(f[1], "UID") {
			f = f[1:]
		}
		if len(f) >= 2 && strings.EqualFold(f[1], cmd) {
			out = append(out, l)
		}
	}
	return out
}

// answeredBefore checks that the first command cmd in trace was answered
// before the first command next was sent.
func answeredBefore(trace, cmd, next string) error {
	sent := tracedCommands(trace, cmd)
	if len(sent) == 0 {
		return fmt.Errorf("no %s in the trace", cmd)
	}
	tag := strings.Fields(sent[0])[0]
	answered := false
	for _, l := range strings.Split(trace, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "S:" && f[1] == tag:
			answered = true
		case len(f) >= 3 && f[0] == "C:" && (strings.EqualFold(f[2], next) || strings.EqualFold(f[2], "UID") && len(f) >= 4 && strings.EqualFold(f[3], next)):
			if !answered {
				return fmt.Errorf("%s sent before %s %s was answered:\n%s", next, cmd, tag, trace)
			}
			return nil
		}
	}
	return fmt.Errorf("no %s in the trace", next)
}

// readCommand reads a command line for a scripted server: the line, its
// tag and its command in upper case, "UID FETCH" and the like as two
// words. ok is false at the connection's end or on a line that is not a
// command.
func readCommand(br *bufio.Reader) (line, tag, cmd string, ok bool) {
	line, err := br.ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) < 2 {
		return line, "", "", false
	}
	tag, cmd = f[0], strings.ToUpper(f[1])
	if cmd == "UID" && len(f) > 2 {
		cmd += " " + strings.ToUpper(f[2])
	}
	return line, tag, cmd, true
}

// skipLiteral reads past the non-synchronizing literal that line
// announces ({n+}) and the rest of its command.
func skipLiteral(br *bufio.Reader, line string) {
	size, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(line[strings.LastIndex(line, "{")+1:]), "+}"))
	io.CopyN(io.Discard, br, int64(size))
	br.ReadString('\n')
}

// writeFlags is a test flag set.
func writeFlags(f ...string) mail.Flags { return mail.NewFlags(f...) }

// flagsMatch compares a Client's flags with the harness's. Keywords are
// compared without regard to case (RFC 9051 §2.3.2): go-imap's server
// stores them lowercased.
func flagsMatch(got mail.Flags, server []string) bool {
	fold := func(l []string) string {
		for i := range l {
			l[i] = strings.ToLower(l[i])
		}
		slices.Sort(l)
		return strings.Join(l, " ")
	}
	return fold(got.List()) == fold(mail.NewFlags(server...).List())
}

// wireUIDSet is how go-imap writes the set of uids in a command.
func wireUIDSet(uids ...uint32) string {
	var s imap.UIDSet
	for _, u := range uids {
		s.AddNum(imap.UID(u))
	}
	return s.String()
}

// writeMessage is a small message in wire form, distinct per n.
func writeMessage(n int) []byte {
	return fmt.Appendf(nil, "From: a@example.org\r\nSubject: write test %d\r\nMessage-ID: <w%d@example.org>\r\n\r\nBody %d.\r\n", n, n, n)
}

// scriptStep is one command a scripted server expects and its answer.
type scriptStep struct {
	command string   // the line after the tag; see sameCommand
	answer  []string // lines without CRLF; "TAG" is replaced by the command's tag
}

// scriptedIMAP serves one connection on loopback: greeting, then steps in
// order. A command out of script fails the test and is answered BAD;
// LOGOUT after the script is answered as usual.
func scriptedIMAP(t *testing.T, greeting string, steps []scriptStep) (host string, port int) {
	t.Helper()
	return scriptedServer(t, func(c net.Conn) { serveScript(t, c, greeting, steps) })
}

func serveScript(t *testing.T, conn net.Conn, greeting string, steps []scriptStep) {
	br := bufio.NewReader(conn)
	write := func(lines ...string) {
		for _, l := range lines {
			io.WriteString(conn, l+"\r\n")
		}
	}
	write(greeting)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if len(steps) > 0 {
				t.Errorf("scripted server: connection ended before %q", steps[0].command)
			}
			return
		}
		tag, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch {
		case len(steps) > 0 && sameCommand(rest, steps[0].command):
			for _, a := range steps[0].answer {
				write(strings.ReplaceAll(a, "TAG", tag))
			}
			steps = steps[1:]
		case len(steps) == 0 && rest == "LOGOUT":
			write("* BYE", tag+" OK LOGOUT completed")
			return
		default:
			want := "LOGOUT"
			if len(steps) > 0 {
				want = steps[0].command
			}
			t.Errorf("scripted server: got %q, want %q", rest, want)
			write(tag + " BAD out of script")
		}
	}
}

// sameCommand compares command lines, the items of a final parenthesized
// list in any order: go-imap writes FETCH items in map order.
func sameCommand(a, b string) bool {
	norm := func(s string) string {
		i := strings.LastIndexByte(s, '(')
		if i < 0 || !strings.HasSuffix(s, ")") {
			return s
		}
		items := strings.Fields(s[i+1 : len(s)-1])
		slices.Sort(items)
		return s[:i+1] + strings.Join(items, " ") + ")"
	}
	return norm(a) == norm(b)
}
