package imapremote

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestLiteralPlusFraming: a synchronizing literal's announcement goes to
// the server as non-synchronizing, and the continuation go-imap waits for
// comes at the boundary after the response being read, not inside its
// literal (whose text looks like a continuation and an announcement).
// Announcement-like text in a quoted string or in literal data is sent as
// it is.
func TestLiteralPlusFraming(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	lp := newLiteralPlus(client)
	defer lp.Close()
	lp.enable(true)

	body := "a\r\n+ not a continuation\r\n{3}\r\nxyz"
	first := "* 1 FETCH (UID 1 BODY[] {" + strconv.Itoa(len(body)) + "}\r\n"
	rest := body + ")\r\n"
	tagged := "A0 OK done\r\n"

	sent := make(chan string, 1)
	go func() {
		io.WriteString(server, first)
		// The client announces its literal while the server's literal
		// is still on its way.
		<-sent
		io.WriteString(server, rest+tagged)
	}()

	br := bufio.NewReader(lp)
	line, err := br.ReadString('\n')
	if err != nil || line != first {
		t.Fatalf("first line %q, %v", line, err)
	}
	got := make(chan string, 1)
	go func() {
		r := bufio.NewReader(server)
		var all strings.Builder
		for {
			l, err := r.ReadString('\n')
			all.WriteString(l)
			if err != nil || strings.HasPrefix(l, "A2 ") {
				break
			}
		}
		d := make([]byte, 7)
		io.ReadFull(r, d)
		all.Write(d)
		got <- all.String()
	}()
	if _, err := io.WriteString(lp, "A1 SELECT \"a{12}b\"\r\nA2 APPEND INBOX {7}\r\n"); err != nil {
		t.Fatal(err)
	}
	sent <- "go"
	want := rest + continuation + tagged
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != want {
		t.Fatalf("read %q, %v; want %q", buf, err, want)
	}
	// The literal's data, with text that looks like an announcement.
	if _, err := io.WriteString(lp, "{9}\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if w := "A1 SELECT \"a{12}b\"\r\nA2 APPEND INBOX {7+}\r\n{9}\r\n\r\n"; <-got != w {
		t.Errorf("server got something else than %q", w)
	}
}
