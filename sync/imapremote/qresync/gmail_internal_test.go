package qresync

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

// gmailThrough feeds a server stream to a Conn with a GmailFetch pending
// and returns what go-imap would read and what the fetch got.
func gmailThrough(t *testing.T, pieces [][]byte, readSize int) (string, []GmailMessage, error) {
	t.Helper()
	sc := &scriptConn{in: pieces}
	c := Wrap(sc)
	wait, err := c.StartGmailFetch(context.Background(), GmailFetch{Set: "1:*", Labels: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sc.out.String(), "G1 UID FETCH 1:* (UID X-GM-MSGID X-GM-LABELS)\r\n"; got != want {
		t.Fatalf("command written: %q, want %q", got, want)
	}
	var out strings.Builder
	buf := make([]byte, readSize)
	for {
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	msgs, ferr := wait(context.Background())
	return out.String(), msgs, ferr
}

func TestGmailFetchTakesItsResponses(t *testing.T) {
	stream := "* 1 FETCH (X-GM-MSGID 1278455344230334865 UID 5 X-GM-LABELS (\\Inbox \"\\\\Important\" \"Muy Importante\" foo/bar))\r\n" +
		"* 2 FETCH (FLAGS (\\Seen) UID 6)\r\n" + // another session's change: go-imap's
		"A7 FETCH (UID 6 BODY[] {12}\r\nX-GM-MSGID 1)\r\n" + // not a response; passed as is
		"* 3 FETCH (UID 6 BODY[HEADER.FIELDS (X-GM-MSGID)] {14}\r\nX-GM-MSGID: 1\r\n)\r\n" +
		"* 4 FETCH (UID 7 X-GM-LABELS ({7}\r\nwith\r\nx &AMk-t&AOk-) X-GM-MSGID 42)\r\n" +
		"* 5 FETCH (X-GM-MSGID 43 X-GM-LABELS () UID 8)\r\n" +
		"G1 OK Success\r\n" +
		"A8 OK done\r\n"
	wantOut := "* 2 FETCH (FLAGS (\\Seen) UID 6)\r\n" +
		"A7 FETCH (UID 6 BODY[] {12}\r\nX-GM-MSGID 1)\r\n" +
		"* 3 FETCH (UID 6 BODY[HEADER.FIELDS (X-GM-MSGID)] {14}\r\nX-GM-MSGID: 1\r\n)\r\n" +
		"A8 OK done\r\n"
	want := []GmailMessage{
		{UID: 5, MsgID: 1278455344230334865, Labels: []string{`\Inbox`, `\Important`, "Muy Importante", "foo/bar"}, HasLabels: true},
		{UID: 7, MsgID: 42, Labels: []string{"with\r\nx", "Été"}, HasLabels: true},
		{UID: 8, MsgID: 43, Labels: []string{}, HasLabels: true},
	}
	for _, pieces := range splits(stream) {
		for _, size := range []int{1, 7, 4096} {
			out, msgs, err := gmailThrough(t, copies(pieces), size)
			if err != nil {
				t.Fatalf("%d pieces, reads of %d: %v", len(pieces), size, err)
			}
			if out != wantOut {
				t.Fatalf("%d pieces, reads of %d: go-imap read\n%q\nwant\n%q", len(pieces), size, out, wantOut)
			}
			if !reflect.DeepEqual(msgs, want) {
				t.Fatalf("%d pieces, reads of %d: fetched %+v, want %+v", len(pieces), size, msgs, want)
			}
		}
	}
}

func TestGmailFetchRefused(t *testing.T) {
	_, _, err := gmailThrough(t, [][]byte{[]byte("G1 BAD Could not parse command\r\n")}, 64)
	var se *ServerError
	if err == nil || !asServerError(err, &se) || se.Status != "BAD" {
		t.Fatalf("err = %v, want a ServerError BAD", err)
	}
	_, _, err = gmailThrough(t, [][]byte{[]byte("* 1 FETCH (X-GM-MSGID x UID 1)\r\nG1 OK Success\r\n")}, 64)
	if err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("malformed response: err = %v", err)
	}
	_, _, err = gmailThrough(t, [][]byte{[]byte("* 1 FETCH (X-GM-MSGID 1 UID 1)\r\n")}, 64)
	if err == nil {
		t.Fatal("connection ended before the reply: no error")
	}
}

func TestGmailFetchBadSet(t *testing.T) {
	c := Wrap(&scriptConn{})
	if _, err := c.StartGmailFetch(context.Background(), GmailFetch{Set: "1:*)\r\nA1 LOGOUT"}); err == nil {
		t.Fatal("a set with a line end was written")
	}
	if _, err := c.StartGmailFetch(context.Background(), GmailFetch{Set: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartGmailFetch(context.Background(), GmailFetch{Set: "1"}); err == nil {
		t.Fatal("a second GmailFetch while one is pending was written")
	}
}

func asServerError(err error, se **ServerError) bool {
	e, ok := err.(*ServerError)
	*se = e
	return ok
}

func TestGmailStoreCommand(t *testing.T) {
	got, err := GmailStore{Set: "4,7:9", Labels: []string{`\Inbox`, "Entwürfe", `a "b" \c`, "R&D", "日本語/子"}}.command("G3")
	if err != nil {
		t.Fatal(err)
	}
	want := "G3 UID STORE 4,7:9 +X-GM-LABELS (\\Inbox \"Entw&APw-rfe\" \"a \\\"b\\\" \\\\c\" \"R&-D\" \"&ZeVnLIqe-/&W1A-\")\r\n"
	if got != want {
		t.Fatalf("command\n%q\nwant\n%q", got, want)
	}
	got, _ = GmailStore{Set: "1", Remove: true, Labels: []string{"x"}}.command("G4")
	if got != "G4 UID STORE 1 -X-GM-LABELS (\"x\")\r\n" {
		t.Fatalf("removal: %q", got)
	}
	for _, bad := range []GmailStore{{Set: "1"}, {Set: "1", Labels: []string{"a\r\nb"}}, {Set: "1 2", Labels: []string{"a"}}} {
		if _, err := bad.command("G5"); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	for _, s := range []string{"Entwürfe", "日本語/子", "R&D", "a😀b", "plain"} {
		if d, ok := decodeMailbox(encodeMUTF7(s)); !ok || d != s {
			t.Errorf("%q: encoded %q decodes to %q, %v", s, encodeMUTF7(s), d, ok)
		}
	}
}
