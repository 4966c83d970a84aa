package imapremote

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// objectIDMailbox is one mailbox of the OBJECTID script: its name as
// satchel reports it, as the script writes it in LIST and STATUS (atom,
// quoted string, literal; modified UTF-7), and its MAILBOXID.
type objectIDMailbox struct {
	name       string
	list, stat string
	id         string
}

var objectIDMailboxes = []objectIDMailbox{
	{"INBOX", "INBOX", "Inbox", "Finbox"},
	{"Archive", "Archive", "Archive", "F0-archive_1"},
	{`a "b" c`, `"a \"b\" c"`, `"a \"b\" c"`, "Fquoted"},
	{"lit (1)", "{7}\r\nlit (1)", "{7}\r\nlit (1)", "Fliteral"},
	{"Entwürfe", "Entw&APw-rfe", `"Entw&APw-rfe"`, "Fdrafts"},
}

// objectIDScript answers LIST, LIST-STATUS, STATUS, NAMESPACE and SELECT
// as a server with OBJECTID (RFC 8474) does. A STATUS response carries
// MAILBOXID when it was asked for or, with unasked, always, so that a
// client that does not ask cannot be told from one that ignores it.
func objectIDScript(unasked bool) imaptest.Script {
	status := func(w *imaptest.ScriptWriter, m objectIDMailbox, items string) {
		var att []string
		for _, item := range strings.Fields(items) {
			switch item {
			case "MESSAGES":
				att = append(att, "MESSAGES 0")
			case "UIDNEXT":
				att = append(att, "UIDNEXT 1")
			case "UIDVALIDITY":
				att = append(att, "UIDVALIDITY 7")
			case "MAILBOXID":
				if !unasked {
					att = append(att, "MAILBOXID ("+m.id+")")
				}
			}
		}
		if unasked {
			att = append(att, "MAILBOXID ("+m.id+")")
		}
		w.Line("* STATUS %s (%s)", m.stat, strings.Join(att, " "))
	}
	return func(tag, command, args string, w *imaptest.ScriptWriter) {
		switch command {
		case "LIST":
			_, items, returnStatus := strings.Cut(args, "RETURN (STATUS (")
			items, _, _ = strings.Cut(items, ")")
			for _, m := range objectIDMailboxes {
				w.Line(`* LIST () "/" %s`, m.list)
				if returnStatus {
					status(w, m, items)
				}
			}
			w.Line(`* LIST (\Noselect) "/" Parent`)
			w.OK("LIST completed")
		case "STATUS":
			a, err := imaptest.ScriptArgs(args)
			if err != nil || len(a) != 2 {
				w.BAD("bad arguments")
				return
			}
			for _, m := range objectIDMailboxes {
				if got, _ := imaptest.ScriptArgs(m.list); got[0] == a[0] {
					status(w, m, strings.Trim(a[1], "()"))
					w.OK("STATUS completed")
					return
				}
			}
			w.NO("[NONEXISTENT] no such mailbox")
		case "NAMESPACE":
			w.Line(`* NAMESPACE (("" "/")) NIL NIL`)
			w.OK("NAMESPACE completed")
		case "SELECT":
			w.Line("* 0 EXISTS")
			w.Line("* OK [UIDVALIDITY 7] x")
			w.Line("* OK [UIDNEXT 1] x")
			w.Line("* OK [MAILBOXID (Fselected)] Ok")
			w.OK("[READ-WRITE] SELECT completed")
		}
	}
}

// checkAsksAlone checks that the commands asking for statuses ask for
// MAILBOXID, in commands of their own (Cyrus 3.6.1 garbles it otherwise),
// as many as asked for the other items.
func checkAsksAlone(t *testing.T, commands []string) {
	t.Helper()
	others, alone := 0, 0
	for _, cmd := range commands {
		if !strings.HasPrefix(cmd, "STATUS ") && !strings.Contains(cmd, "RETURN (STATUS") {
			continue
		}
		items, _ := statusItems(t, cmd)
		switch {
		case slices.Equal(items, []string{"MAILBOXID"}):
			alone++
		case slices.Contains(items, "MAILBOXID"):
			t.Errorf("%q asks for MAILBOXID with other items", cmd)
		default:
			others++
		}
	}
	if others == 0 || alone != others {
		t.Errorf("%d commands ask for statuses and %d for MAILBOXID alone, want as many: %q", others, alone, commands)
	}
}

// statusItems returns the items of the status-att list that ends a
// command line ("STATUS x (A B)"), or that follows "STATUS (" in a LIST
// return option, and the line with the list replaced by "(%s)".
func statusItems(t *testing.T, line string) ([]string, string) {
	t.Helper()
	start := strings.LastIndex(line, "STATUS (")
	if start < 0 {
		// A STATUS command: "STATUS name (items)".
		start = strings.LastIndex(line, " (")
		if start < 0 {
			t.Fatalf("no status items in %q", line)
		}
		start++
	} else {
		start += len("STATUS ")
	}
	end := start + strings.IndexByte(line[start:], ')')
	if end < start {
		t.Fatalf("no status items in %q", line)
	}
	return strings.Fields(line[start+1 : end]), line[:start] + "(%s)" + line[end+1:]
}

// TestMailboxIDFromListStatus: with OBJECTID, ListStatus asks for
// MAILBOXID, in LIST-STATUS or in STATUS commands, and each id lands in
// its own mailbox's status, whatever form the server writes the name in.
func TestMailboxIDFromListStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps []string
	}{
		{"LIST-STATUS", []string{"IMAP4rev1", "OBJECTID", "LIST-STATUS", "SPECIAL-USE", "NAMESPACE"}},
		{"STATUS per mailbox", []string{"IMAP4rev1", "OBJECTID", "NAMESPACE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := imaptest.StartScripted(t, imaptest.ScriptOptions{Capabilities: tc.caps, Script: objectIDScript(false)})
			c := mustDial(t, preauthOptions(t, srv.Host, srv.Port))
			list, err := c.ListStatus(t.Context())
			if err != nil {
				t.Fatalf("ListStatus: %v", err)
			}
			got := map[string]string{}
			for _, m := range list {
				if m.NoSelect {
					if m.Status != nil {
						t.Errorf("%q is \\Noselect and has a status", m.Name)
					}
					continue
				}
				if m.Status == nil {
					t.Fatalf("%q has no status", m.Name)
				}
				got[m.Name] = m.Status.MailboxID
			}
			want := map[string]string{}
			for _, m := range objectIDMailboxes {
				want[m.name] = m.id
			}
			if !maps.Equal(got, want) {
				t.Errorf("MAILBOXIDs = %q, want %q", got, want)
			}
			checkAsksAlone(t, srv.Commands())
		})
	}
}

// TestMailboxIDFromStatus: Status asks for MAILBOXID and returns the one
// of the mailbox asked about, including the names ListStatus would get in
// another form.
func TestMailboxIDFromStatus(t *testing.T) {
	srv := imaptest.StartScripted(t, imaptest.ScriptOptions{
		Capabilities: []string{"IMAP4rev1", "OBJECTID"},
		Script:       objectIDScript(false),
	})
	c := mustDial(t, preauthOptions(t, srv.Host, srv.Port))
	for _, m := range objectIDMailboxes {
		if m.name == "lit (1)" {
			continue // go-imap quotes this name; the literal is the server's form
		}
		st, err := c.Status(t.Context(), m.name)
		if err != nil {
			t.Fatalf("Status(%q): %v", m.name, err)
		}
		if st.MailboxID != m.id || st.UIDValidity != 7 {
			t.Errorf("Status(%q) = MAILBOXID %q, UIDVALIDITY %d; want %q, 7", m.name, st.MailboxID, st.UIDValidity, m.id)
		}
	}
	checkAsksAlone(t, srv.Commands())
}

// TestMailboxIDFromSelect: the "OK [MAILBOXID (id)]" of a SELECT (RFC 8474
// §4.2) becomes the status's MailboxID, with and without QRESYNC.
func TestMailboxIDFromSelect(t *testing.T) {
	script := func(tag, command, args string, w *imaptest.ScriptWriter) {
		if command == "ENABLE" {
			w.Line("* ENABLED QRESYNC")
			w.OK("ENABLE completed")
			return
		}
		objectIDScript(false)(tag, command, args, w)
	}
	srv := imaptest.StartScripted(t, imaptest.ScriptOptions{
		Capabilities: []string{"IMAP4rev1", "OBJECTID", "CONDSTORE", "QRESYNC", "ENABLE", "UNSELECT"},
		Script:       script,
	})
	c := mustDial(t, preauthOptions(t, srv.Host, srv.Port))
	if c.Mode() != mail.ModeQResync {
		t.Fatalf("mode %v, want QRESYNC", c.Mode())
	}
	st, err := c.Select(t.Context(), "Archive")
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	if st.MailboxID != "Fselected" {
		t.Errorf("Select: MailboxID %q, want Fselected", st.MailboxID)
	}
	st, _, _, err = c.SelectChanges(t.Context(), "INBOX", 7, 1, nil)
	if err != nil {
		t.Fatalf("SelectChanges: %v", err)
	}
	if st.MailboxID != "Fselected" {
		t.Errorf("SelectChanges: MailboxID %q, want Fselected", st.MailboxID)
	}
}

// TestNoObjectIDLeavesCommandsAlone: without OBJECTID the LIST-STATUS and
// STATUS commands are exactly what go-imap writes (its item order is its
// own), and a MAILBOXID the server sends unasked is not taken up.
func TestNoObjectIDLeavesCommandsAlone(t *testing.T) {
	srv := imaptest.StartScripted(t, imaptest.ScriptOptions{
		Capabilities: []string{"IMAP4rev1", "LIST-STATUS", "SPECIAL-USE"},
		Script:       objectIDScript(true),
	})
	c := mustDial(t, preauthOptions(t, srv.Host, srv.Port))
	list, err := c.ListStatus(t.Context())
	if err != nil {
		t.Fatalf("ListStatus: %v", err)
	}
	if _, err := c.Status(t.Context(), "Archive"); err != nil {
		t.Fatalf("Status: %v", err)
	}
	for _, m := range list {
		if m.Status != nil && m.Status.MailboxID != "" {
			t.Errorf("%q: MailboxID %q without OBJECTID", m.Name, m.Status.MailboxID)
		}
	}
	wantItems := []string{"MESSAGES", "UIDNEXT", "UIDVALIDITY"}
	wantLines := []string{
		`LIST "" "*" RETURN (STATUS (%s) SPECIAL-USE)`,
		`STATUS "Archive" (%s)`,
	}
	var gotLines []string
	for _, cmd := range srv.Commands() {
		if !strings.HasPrefix(cmd, "LIST ") && !strings.HasPrefix(cmd, "STATUS ") {
			continue
		}
		items, rest := statusItems(t, cmd)
		if sorted := slices.Sorted(slices.Values(items)); !slices.Equal(sorted, wantItems) {
			t.Errorf("%q asks for %q, want %q", cmd, items, wantItems)
		}
		// Byte for byte, with go-imap's item order put back.
		if fmt.Sprintf(rest, strings.Join(items, " ")) != cmd {
			t.Errorf("%q does not read back as %q", cmd, rest)
		}
		gotLines = append(gotLines, rest)
	}
	if !slices.Equal(gotLines, wantLines) {
		t.Errorf("commands %q, want %q", gotLines, wantLines)
	}
}

// pipelineServer is a server that answers nothing until it has read a
// NAMESPACE command: a client that waits for the LIST answer before it
// sends NAMESPACE gets no answer at all. It returns the Options that
// reach it and the commands it read, each as its command word, with
// "|" where it wrote its first answer.
func pipelineServer(t *testing.T, caps string) (Options, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var log []string
	host, port := scriptedServer(t, func(c net.Conn) {
		answerPipelined(c, caps, func(s string) {
			mu.Lock()
			log = append(log, s)
			mu.Unlock()
		})
	})
	return preauthOptions(t, host, port), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(log)
	}
}

// answerPipelined serves pipelineServer's connection: LIST and NAMESPACE
// are noted and held until a NAMESPACE has been read, then answered in
// order; any other command is answered at once, unnoted.
func answerPipelined(c net.Conn, caps string, note func(string)) {
	fmt.Fprintf(c, "* PREAUTH [CAPABILITY %s] ready\r\n", caps)
	br := bufio.NewReader(c)
	var held []string
	answered := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return
		}
		tag, cmd := f[0], strings.ToUpper(f[1])
		var answer string
		switch cmd {
		case "LIST":
			answer = "* LIST () \".\" INBOX\r\n"
			if strings.Contains(line, "RETURN (STATUS") {
				answer += "* STATUS INBOX (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 1)\r\n"
			}
		case "NAMESPACE":
			answer = "* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\n"
		case "LOGOUT":
			fmt.Fprintf(c, "* BYE bye\r\n%s OK done\r\n", tag)
			return
		default:
			fmt.Fprintf(c, "%s BAD unexpected\r\n", tag)
			continue
		}
		note(cmd)
		held = append(held, answer+tag+" OK done\r\n")
		if cmd == "NAMESPACE" || answered {
			if !answered {
				note("|")
				answered = true
			}
			for _, a := range held {
				io.WriteString(c, a)
			}
			held = nil
		}
	}
}

// TestNamespaceInTheListingsRoundTrip: ListStatus and List send NAMESPACE
// before they wait for their LIST answer, and Namespaces then answers
// from what came back, sending nothing.
func TestNamespaceInTheListingsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps string
		call func(*Client, context.Context) ([]mail.RemoteMailbox, error)
		want []string
	}{
		{"ListStatus", "IMAP4rev1 LIST-STATUS NAMESPACE SPECIAL-USE", (*Client).ListStatus, []string{"LIST", "NAMESPACE", "|"}},
		{"ListStatus without SPECIAL-USE", "IMAP4rev1 LIST-STATUS NAMESPACE", (*Client).ListStatus, []string{"LIST", "LIST", "NAMESPACE", "|"}},
		{"List", "IMAP4rev1 NAMESPACE", (*Client).List, []string{"LIST", "NAMESPACE", "|"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, commands := pipelineServer(t, tc.caps)
			c := mustDial(t, opts)
			ctx, cancel := context.WithTimeout(t.Context(), bound)
			defer cancel()
			list, err := tc.call(c, ctx)
			if err != nil {
				t.Fatalf("%s: %v (commands read: %q)", tc.name, err, commands())
			}
			if len(list) != 1 || list[0].Name != "INBOX" {
				t.Errorf("%s = %+v, want INBOX alone", tc.name, list)
			}
			ns, err := c.Namespaces(t.Context())
			if err != nil {
				t.Fatalf("Namespaces: %v", err)
			}
			if !ns.Known || len(ns.Personal) != 1 || ns.Personal[0].Prefix != "INBOX." || ns.Personal[0].Delim != '.' {
				t.Errorf("Namespaces = %+v, want personal INBOX. with '.'", ns)
			}
			// Namespaces sent nothing: the server read no more commands.
			if got := commands(); !slices.Equal(got, tc.want) {
				t.Errorf("server read %q, want %q", got, tc.want)
			}
		})
	}
}

// TestListStatusAndNamespacesOnDovecot: Dovecot 2.3 has no OBJECTID, so
// the listing works as before and every MailboxID is ""; NAMESPACE is
// asked once, and Namespaces reports it.
func TestListStatusAndNamespacesOnDovecot(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
	srv.CreateMailbox("Archive")
	trace := &traceBuffer{}
	c := connect(t, srv, trace)
	if c.Has("OBJECTID") {
		t.Fatal("Dovecot 2.3 advertises OBJECTID; this test expects a server without it")
	}
	list, err := c.ListStatus(t.Context())
	if err != nil {
		t.Fatalf("ListStatus: %v", err)
	}
	names := map[string]bool{}
	for _, m := range list {
		names[m.Name] = true
		if m.Status == nil || m.Status.UIDValidity == 0 {
			t.Errorf("%q: status %+v", m.Name, m.Status)
			continue
		}
		if m.Status.MailboxID != "" {
			t.Errorf("%q: MailboxID %q from a server without OBJECTID", m.Name, m.Status.MailboxID)
		}
	}
	if !names["INBOX"] || !names["Archive"] {
		t.Errorf("listed %v, want INBOX and Archive", names)
	}
	sent := len(clientLines(trace.String()))
	ns, err := c.Namespaces(t.Context())
	if err != nil {
		t.Fatalf("Namespaces: %v", err)
	}
	if !ns.Known || len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
		t.Errorf("Namespaces = %+v, want one personal namespace with '/'", ns)
	}
	if lines := clientLines(trace.String()); len(lines) != sent {
		t.Errorf("Namespaces sent %q after ListStatus had asked", lines[sent:])
	}
	if l := commandLine(trace.String(), "NAMESPACE"); l == "" {
		t.Error("NAMESPACE was never sent")
	}
	if l := commandLine(trace.String(), "LIST"); strings.Contains(l, "MAILBOXID") {
		t.Errorf("LIST asks Dovecot for MAILBOXID: %q", l)
	}
}

// TestMailboxIDOnCyrus: Cyrus 3.6 has OBJECTID. Each mailbox's MAILBOXID
// comes with ListStatus, matches what Status and Select report, and is
// kept across RENAME (RFC 8474 §4.1).
func TestMailboxIDOnCyrus(t *testing.T) {
	srv := imaptest.StartCyrus(t, imaptest.CyrusOptions{AltNamespace: true})
	srv.CreateMailbox("Archive")
	trace := &traceBuffer{}
	c := connect(t, srv, trace)
	defer func() {
		if t.Failed() {
			t.Logf("trace:\n%s", trace)
		}
	}()
	if !c.Has("OBJECTID") {
		t.Fatal("Cyrus does not advertise OBJECTID")
	}
	ids := func() map[string]string {
		t.Helper()
		list, err := c.ListStatus(t.Context())
		if err != nil {
			t.Fatalf("ListStatus: %v", err)
		}
		out := map[string]string{}
		for _, m := range list {
			if m.Status != nil {
				out[m.Name] = m.Status.MailboxID
			}
		}
		return out
	}
	before := ids()
	if before["INBOX"] == "" || before["Archive"] == "" || before["INBOX"] == before["Archive"] {
		t.Fatalf("MAILBOXIDs %q: want one of its own for INBOX and Archive", before)
	}
	st, err := c.Status(t.Context(), "Archive")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.MailboxID != before["Archive"] {
		t.Errorf("Status: MailboxID %q, ListStatus said %q", st.MailboxID, before["Archive"])
	}
	sel, err := c.Select(t.Context(), "Archive")
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	if sel.MailboxID != before["Archive"] {
		t.Errorf("Select: MailboxID %q, ListStatus said %q", sel.MailboxID, before["Archive"])
	}
	if err := c.Rename(t.Context(), "Archive", "Old Mail"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	after := ids()
	if after["Old Mail"] != before["Archive"] {
		t.Errorf("after RENAME: %q, want Old Mail to keep %q", after, before["Archive"])
	}
}
