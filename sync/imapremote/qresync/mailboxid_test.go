package qresync

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"strconv"
	"testing"
)

func TestWriteAsksForMailboxID(t *testing.T) {
	tests := []struct {
		name string
		in   string // as go-imap writes it
		want string // as the server gets it
	}{
		{
			name: "STATUS of an atom",
			in:   "T1 STATUS INBOX ()\r\n",
			want: "T1 STATUS INBOX (MAILBOXID)\r\n",
		},
		{
			name: "STATUS of a quoted name ending like an empty list",
			in:   "T2 STATUS \"a (b) \\\" ()\" ()\r\n",
			want: "T2 STATUS \"a (b) \\\" ()\" (MAILBOXID)\r\n",
		},
		{
			name: "STATUS of a literal name",
			in:   "T3 status {3}\r\na() ()\r\n",
			want: "T3 status {3}\r\na() (MAILBOXID)\r\n",
		},
		{
			name: "STATUS with items",
			in:   "T4 STATUS x (MESSAGES UIDNEXT)\r\n",
			want: "T4 STATUS x (MESSAGES UIDNEXT)\r\n",
		},
		{
			name: "STATUS of a quoted name, with items",
			in:   "T5 STATUS \" ()\" (MESSAGES)\r\nT6 STATUS \"x ()\"\r\n",
			want: "T5 STATUS \" ()\" (MESSAGES)\r\nT6 STATUS \"x ()\"\r\n",
		},
		{
			name: "LIST-STATUS",
			in:   "T7 LIST \"\" \"*\" RETURN (STATUS ())\r\n",
			want: "T7 LIST \"\" \"*\" RETURN (STATUS (MAILBOXID))\r\n",
		},
		{
			name: "LIST-STATUS among other options",
			in:   "T8 LIST (SUBSCRIBED) \"\" \"*\" RETURN (SUBSCRIBED STATUS () SPECIAL-USE)\r\n",
			want: "T8 LIST (SUBSCRIBED) \"\" \"*\" RETURN (SUBSCRIBED STATUS (MAILBOXID) SPECIAL-USE)\r\n",
		},
		{
			name: "LIST-STATUS with items",
			in:   "T9 LIST \"\" \"*\" RETURN (STATUS (MESSAGES UIDNEXT) SPECIAL-USE)\r\n",
			want: "T9 LIST \"\" \"*\" RETURN (STATUS (MESSAGES UIDNEXT) SPECIAL-USE)\r\n",
		},
		{
			name: "plain LIST whose pattern looks like a return option",
			in:   "T10 LIST \"\" \"x RETURN (STATUS ())\"\r\n",
			want: "T10 LIST \"\" \"x RETURN (STATUS ())\"\r\n",
		},
		{
			name: "other commands pass",
			in:   "T11 FETCH 1 ()\r\nT12 SELECT x (CONDSTORE)\r\nT13 XSTATUS x ()\r\n",
			want: "T11 FETCH 1 ()\r\nT12 SELECT x (CONDSTORE)\r\nT13 XSTATUS x ()\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, pieces := range splits(tt.in) {
				sc := &scriptConn{}
				c := Wrap(sc)
				c.RequestMailboxIDs()
				for _, p := range pieces {
					if n, err := c.Write(p); n != len(p) || err != nil {
						t.Fatalf("Write = %d, %v", n, err)
					}
				}
				if got := sc.out.String(); got != tt.want {
					t.Fatalf("written in %d pieces: server gets %q, want %q", len(pieces), got, tt.want)
				}
			}
		})
	}
}

// Without RequestMailboxIDs, STATUS and LIST go out exactly as written.
func TestWriteLeavesStatusAlone(t *testing.T) {
	in := "T1 STATUS INBOX ()\r\nT2 LIST \"\" \"*\" RETURN (STATUS ())\r\n"
	sc := &scriptConn{}
	c := Wrap(sc)
	if _, err := c.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	if got := sc.out.String(); got != in {
		t.Fatalf("server gets %q, want %q", got, in)
	}
}

// readIDs reads a server stream through a Conn that asks for MAILBOXIDs
// and returns what go-imap reads and the ids kept.
func readIDs(t *testing.T, pieces [][]byte) (string, map[string]string, string) {
	t.Helper()
	c := Wrap(&scriptConn{in: pieces})
	c.RequestMailboxIDs()
	var out bytes.Buffer
	buf := make([]byte, 5)
	for {
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	return out.String(), c.MailboxIDs(), c.SelectMailboxID()
}

func TestReadKeepsMailboxIDs(t *testing.T) {
	const inLiteral = "* STATUS x (MAILBOXID (F0))\r\n"
	stream := "* LIST () \"/\" INBOX\r\n" +
		"* STATUS inbox (MESSAGES 3 MAILBOXID (Finbox-1) UIDNEXT 4)\r\n" +
		"* STATUS plain (MAILBOXID (Fplain_2))\r\n" +
		"* STATUS \"with \\\"quote\\\" and space\" (UIDNEXT 1 MAILBOXID (Fq3))\r\n" +
		"* STATUS {9}\r\nlit \"(a)\\ (MAILBOXID (Flit4) X-EXT (1 (2)) HIGHESTMODSEQ 9)\r\n" +
		"* STATUS \"Entw&APw-rfe/&2D3eAA-\" (MAILBOXID (Futf7))\r\n" +
		"* STATUS nomailboxid (MESSAGES 1)\r\n" +
		"* STATUS bad (MAILBOXID (has space))\r\n" +
		"* STATUS \"&Jjo\" (MAILBOXID (Fbadutf7))\r\n" +
		"* 3 FETCH (BODY[] {" + strconv.Itoa(len(inLiteral)) + "}\r\n" + inLiteral + ")\r\n" +
		"* OK [MAILBOXID (Fselected)] Ok\r\n" +
		"T1 OK done\r\n"
	want := map[string]string{
		"INBOX":                    "Finbox-1",
		"plain":                    "Fplain_2",
		"with \"quote\" and space": "Fq3",
		"lit \"(a)\\":              "Flit4",
		"Entwürfe/\U0001F600":      "Futf7",
	}
	for _, pieces := range splits(stream) {
		out, ids, sel := readIDs(t, copies(pieces))
		if out != stream {
			t.Fatalf("go-imap reads %q, want the stream unchanged", out)
		}
		if !maps.Equal(ids, want) {
			t.Fatalf("read in %d pieces: ids %q, want %q", len(pieces), ids, want)
		}
		if sel != "Fselected" {
			t.Fatalf("SelectMailboxID = %q, want Fselected", sel)
		}
	}
}

// Without RequestMailboxIDs, STATUS responses are not examined; the
// SELECT's id, which the server sends unasked, is still kept.
func TestReadWithoutRequest(t *testing.T) {
	c := Wrap(&scriptConn{in: [][]byte{[]byte("* STATUS a (MAILBOXID (F1))\r\n* OK [MAILBOXID (F2)] Ok\r\n")}})
	io.Copy(io.Discard, c)
	if ids := c.MailboxIDs(); ids != nil {
		t.Fatalf("MailboxIDs = %v, want none", ids)
	}
	if got := c.SelectMailboxID(); got != "F2" {
		t.Fatalf("SelectMailboxID = %q, want F2", got)
	}
}

// A SELECT written forgets the previous SELECT's id, and so does the
// "OK [CLOSED]" that ends it (RFC 7162 §3.2.11).
func TestSelectMailboxIDForgotten(t *testing.T) {
	sc := &scriptConn{in: [][]byte{[]byte("* OK [MAILBOXID (F1)] Ok\r\n")}}
	c := Wrap(sc)
	io.Copy(io.Discard, c)
	if got := c.SelectMailboxID(); got != "F1" {
		t.Fatalf("SelectMailboxID = %q, want F1", got)
	}
	c.Write([]byte("T2 EXAMINE other\r\n"))
	if got := c.SelectMailboxID(); got != "" {
		t.Fatalf("after another EXAMINE, SelectMailboxID = %q, want none", got)
	}
	sc.in = [][]byte{[]byte("* OK [MAILBOXID (F3)] Ok\r\n* OK [CLOSED] x\r\n")}
	io.Copy(io.Discard, c)
	if got := c.SelectMailboxID(); got != "" {
		t.Fatalf("after OK [CLOSED], SelectMailboxID = %q, want none", got)
	}
}

func TestDecodeMailbox(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"INBOX", "INBOX", true},
		{"iNbOx", "INBOX", true},
		{"INBOX/a", "INBOX/a", true},
		{"a&-b", "a&b", true},
		{"Entw&APw-rfe", "Entwürfe", true},
		{"&ZeVnLIqe-", "日本語", true},
		{"&2D3eAA-", "\U0001F600", true},
		{"Entwürfe", "Entwürfe", true}, // raw UTF-8, as go-imap accepts
		{"&AGE-", "", false},           // printable ASCII in base64
		{"&ZeVnLIqe", "", false},       // no closing "-"
		{"&ZeU-&ZeU-", "", false},      // adjacent runs
		{"&2D0-", "", false},           // lone surrogate
		{"&ZeVn=-", "", false},
		{"a\x7fb", "", false},
		{"&Ze\r\nU-", "", false},
	}
	for _, tt := range tests {
		got, ok := decodeMailbox(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("decodeMailbox(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzStatusID: the parser never fails on what it parsed, and every id it
// returns is an objectid of RFC 8474 §7.
func FuzzStatusID(f *testing.F) {
	for _, s := range []string{
		"* STATUS a (MAILBOXID (F1))",
		"* STATUS {3}\r\na b (X (1) MAILBOXID (F-_9))\r\n",
		"* STATUS \"a\\\"\" (MESSAGES 1 MAILBOXID (x))",
		"* OK [MAILBOXID (abc)] Ok",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, id := range []string{statusIDOf(data), codeIDOf(data)} {
			if id == "" {
				continue
			}
			if len(id) > 255 {
				t.Fatalf("id of %d bytes", len(id))
			}
			for i := 0; i < len(id); i++ {
				if !isObjectIDChar(id[i]) {
					t.Fatalf("id %q is not an objectid", id)
				}
			}
		}
	})
}

func statusIDOf(b []byte) string {
	_, id, _ := parseStatusID(b)
	return id
}

func codeIDOf(b []byte) string {
	id, _ := parseCodeID(b)
	return id
}

// FuzzReadIDs: with MAILBOXIDs asked for, what go-imap reads and the ids
// kept do not depend on how the server's bytes are cut up, and a stream
// without VANISHED passes unchanged.
func FuzzReadIDs(f *testing.F) {
	for _, s := range []string{
		"* STATUS a (MAILBOXID (F1))\r\n* OK [MAILBOXID (F2)] x\r\n",
		"* STATUS {3}\r\na b (MAILBOXID (F1))\r\n* STATUS \"x\\\"\" (MAILBOXID (F-_9))\r\n",
		"* 1 FETCH (BODY[] {29}\r\n* STATUS x (MAILBOXID (F0))\r\n)\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		run := func(pieces [][]byte) (string, map[string]string, string, bool) {
			c := Wrap(&scriptConn{in: pieces})
			c.RequestMailboxIDs()
			var out bytes.Buffer
			_, err := io.Copy(&out, c)
			return out.String(), c.MailboxIDs(), c.SelectMailboxID(), err == nil
		}
		wOut, wIDs, wSel, wOK := run([][]byte{bytes.Clone(data)})
		cOut, cIDs, cSel, cOK := run(cut(data))
		if wOut != cOut || !maps.Equal(wIDs, cIDs) || wSel != cSel || wOK != cOK {
			t.Fatalf("whole: %q %q %q %v\ncut up: %q %q %q %v", wOut, wIDs, wSel, wOK, cOut, cIDs, cSel, cOK)
		}
		if !bytes.Contains(bytes.ToUpper(data), []byte("VANISHED")) && wOut != string(data) {
			t.Fatalf("go-imap reads %q, want the input unchanged", wOut)
		}
	})
}

// FuzzWriteIDs: with MAILBOXIDs asked for, what the server gets does not
// depend on how go-imap's bytes are cut up, and only fills empty lists
// with MAILBOXID.
func FuzzWriteIDs(f *testing.F) {
	for _, s := range []string{
		"T1 STATUS INBOX ()\r\nT2 NOOP\r\n",
		"T1 STATUS {5}\r\nab\r\nc ()\r\n",
		"T1 LIST \"\" \"*\" RETURN (STATUS () SPECIAL-USE)\r\n",
		"T1 APPEND INBOX {17+}\r\nT9 STATUS a ()\r\n\r\nT2 LIST \"\" x\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		run := func(pieces [][]byte) string {
			sc := &scriptConn{}
			c := Wrap(sc)
			c.RequestMailboxIDs()
			for _, p := range pieces {
				if n, err := c.Write(p); n != len(p) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			return sc.out.String()
		}
		whole, pieces := run([][]byte{bytes.Clone(data)}), run(cut(data))
		if whole != pieces {
			t.Fatalf("whole: %q\ncut up: %q", whole, pieces)
		}
		strip := func(b []byte) []byte {
			return bytes.ReplaceAll(b, []byte("(MAILBOXID)"), []byte("()"))
		}
		if !bytes.HasPrefix(strip(data), strip([]byte(whole))) {
			t.Fatalf("server gets %q, more than MAILBOXID added to %q", whole, data)
		}
	})
}
