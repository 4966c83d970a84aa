package imaptest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func dialScripted(t *testing.T, s *Scripted) *imapclient.Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(nc, nil)
	t.Cleanup(func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	return c
}

func TestScriptedGreetingAndDefaults(t *testing.T) {
	s := StartScripted(t, ScriptOptions{Capabilities: []string{"IMAP4rev1", "UIDPLUS", "X-SCRIPTED"}})
	c := dialScripted(t, s)
	if c.State() != imap.ConnStateAuthenticated {
		t.Fatalf("state after greeting %v, want authenticated (PREAUTH)", c.State())
	}
	if !c.Caps().Has("X-SCRIPTED") || !c.Caps().Has(imap.CapUIDPlus) {
		t.Errorf("greeting capabilities %v", c.Caps())
	}
	caps, err := c.Capability().Wait()
	if err != nil || !caps.Has("X-SCRIPTED") {
		t.Errorf("CAPABILITY = %v, %v", caps, err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Errorf("NOOP: %v", err)
	}
	var ierr *imap.Error
	if err := c.Create("x", nil).Wait(); !errors.As(err, &ierr) || ierr.Type != imap.StatusResponseTypeBad {
		t.Errorf("CREATE without a script: %v, want BAD", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Error("connection still open after LOGOUT")
	}
	want := []string{"CAPABILITY", "NOOP", `CREATE "x"`, "LOGOUT"}
	if got := s.Commands(); !slices.Equal(got, want) {
		t.Errorf("Commands() = %q, want %q", got, want)
	}
}

func TestScriptedCanned(t *testing.T) {
	s := StartScripted(t, ScriptOptions{Script: Canned(map[string]string{
		"LIST": "* LIST () \"/\" INBOX\r\n* LIST (\\Noselect) \"/\" \"A b\"\r\n",
	})})
	c := dialScripted(t, s)
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	if !slices.Equal(names, []string{"INBOX", "A b"}) {
		t.Errorf("LIST = %q", names)
	}
}

// TestScriptedLiterals checks both directions: the client's synchronizing
// literal is acknowledged and handed to the script whole, and a literal
// the script cuts short ends the client's connection with an error.
func TestScriptedLiterals(t *testing.T) {
	got := make(chan []string, 1)
	s := StartScripted(t, ScriptOptions{Script: func(tag, command, args string, w *ScriptWriter) {
		switch command {
		case "APPEND":
			a, err := ScriptArgs(args)
			if err != nil {
				w.BAD(err.Error())
				return
			}
			got <- a
			w.OK("[APPENDUID 1 7] done")
		case "SELECT":
			w.Line("* 1 EXISTS")
			w.Line("* OK [UIDVALIDITY 1] ok")
			w.OK("[READ-WRITE] done")
		case "UID FETCH":
			w.Raw("* 1 FETCH (UID 7 BODY[] ")
			w.CutLiteral(1000, []byte("Subject: cut\r\n"))
		}
	}})
	c := dialScripted(t, s)
	body := "Subject: hi\r\n\r\nline\r\n"
	cmd := c.Append("Sent Items", int64(len(body)), nil)
	io.WriteString(cmd, body)
	cmd.Close()
	if data, err := cmd.Wait(); err != nil || data.UID != 7 {
		t.Fatalf("APPEND: %+v, %v", data, err)
	}
	if a := <-got; len(a) != 2 || a[0] != "Sent Items" || a[1] != body {
		t.Errorf("APPEND arguments %q", a)
	}

	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// The literal is read once and the connection closed: go-imap's
	// reader moves on after the literal fails, so reading it again (as
	// Collect would) races with it.
	fetch := c.Fetch(imap.UIDSetNum(7), &imap.FetchOptions{
		UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	var lit imap.LiteralReader
	if msg := fetch.Next(); msg != nil {
		for lit == nil {
			item := msg.Next()
			if item == nil {
				break
			}
			if b, ok := item.(imapclient.FetchItemDataBodySection); ok {
				lit = b.Literal
			}
		}
	}
	if lit == nil {
		t.Fatal("no BODY[] in the reply")
	}
	read, _ := io.ReadAll(lit)
	if string(read) != "Subject: cut\r\n" || lit.Size() != 1000 {
		t.Errorf("literal of %d bytes announced, %q read", lit.Size(), read)
	}
	c.Close()
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Error("connection still open after the literal was cut")
	}
}

// TestScriptedStopsBlockedScript checks that cleanup ends a script that
// is still writing to a client that stopped reading.
func TestScriptedStopsBlockedScript(t *testing.T) {
	started := make(chan struct{})
	var s *Scripted
	var nc net.Conn
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	t.Run("inner", func(t *testing.T) {
		s = StartScripted(t, ScriptOptions{Script: func(tag, command, args string, w *ScriptWriter) {
			close(started)
			w.Raw("* OK ")
			w.LiteralFrom(1<<40, zeros{})
		}})
		var err error
		if nc, err = net.Dial("tcp", s.Addr); err != nil {
			t.Fatal(err)
		}
		// nc stays open, unread, until the outer test ends: only the
		// server's cleanup can unblock the script.
		br := bufio.NewReader(nc)
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		io.WriteString(nc, "a1 NOOP\r\n")
		<-started
	})
	// The inner test's cleanup has run: the script must have returned,
	// or the inner test would have reported a goroutine that did not
	// finish.
	if s.Connections() != 1 {
		t.Errorf("connections %d, want 1", s.Connections())
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestScriptArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: `INBOX`, want: []string{"INBOX"}},
		{in: `"a \"b\" \\c" (CONDSTORE)`, want: []string{`a "b" \c`, "(CONDSTORE)"}},
		{in: "1:* (UID BODY.PEEK[HEADER.FIELDS (A B)])", want: []string{"1:*", "(UID BODY.PEEK[HEADER.FIELDS (A B)])"}},
		{in: "{5}\r\na\r\nbc (\\Seen)", want: []string{"a\r\nbc", `(\Seen)`}},
		{in: "{5+}\r\nabcde", want: []string{"abcde"}},
		{in: "", want: nil},
		{in: `"open`, bad: true},
		{in: "(a (b)", bad: true},
		{in: "{10}\r\nshort", bad: true},
	} {
		got, err := ScriptArgs(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ScriptArgs(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ScriptArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if q := Quote(`a"b\c`); q != `"a\"b\\c"` {
		t.Errorf("Quote = %s", q)
	}
}
