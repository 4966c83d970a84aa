package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestSatchelCounts: the Gmail row's requirement rests on these sums, so
// a mailbox without "linked" (omitted when 0) or with an error must be
// read right.
func TestSatchelCounts(t *testing.T) {
	doc := `{"dry_run": false, "accounts": [{"account": "gmail", "mailboxes": [
		{"name": "INBOX", "downloaded": 304, "linked": 1696},
		{"name": "Lists", "downloaded": 500},
		{"name": "[Gmail]/All Mail", "downloaded": 0, "linked": 2000},
		{"name": "[Gmail]/Spam", "downloaded": 0, "error": "select: NO"}]}]}`
	down, linked, errs := satchelCounts([]byte(doc))
	if down != 804 || linked != 3696 || !reflect.DeepEqual(errs, []string{"[Gmail]/Spam: select: NO"}) {
		t.Errorf("got %d downloaded, %d linked, errors %q", down, linked, errs)
	}
	if _, _, errs := satchelCounts([]byte("not json")); len(errs) != 1 {
		t.Errorf("unreadable output gave errors %q, want one", errs)
	}
}

// TestBodiesInTrace counts FETCH responses that carry BODY[] as a
// literal, and nothing else: not a FETCH of flags, not the client's
// command, not a body line that mentions BODY[].
func TestBodiesInTrace(t *testing.T) {
	trace := "C: A1 UID FETCH 1:3 (UID BODY.PEEK[] X-GM-MSGID)\n" +
		"S: * 1 FETCH (UID 1 X-GM-MSGID 7 BODY[] {12}\n" +
		"S: Subject: x\n" +
		"S| BODY[] {3}\n" +
		"S: )\n" +
		"S: * 2 FETCH (UID 2 BODY[] ~{5}\n" +
		"S: hello)\n" +
		"S: * 3 FETCH (UID 3 FLAGS (\\Seen))\n" +
		"S: A1 OK Success\n"
	path := filepath.Join(t.TempDir(), "t.trace")
	if err := os.WriteFile(path, []byte(trace), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := bodiesInTrace(path)
	if err != nil || n != 2 {
		t.Errorf("bodiesInTrace = %d, %v; want 2", n, err)
	}
}

// TestGmailPass: every message downloaded once and every other copy
// linked passes; one body too many, on the wire or in the JSON, fails.
func TestGmailPass(t *testing.T) {
	ok := gmailResult{Messages: 10, Copies: 30, Downloaded: 10, Linked: 20, Wire: 10, Satchel: &result{}}
	for name, tc := range map[string]struct {
		change func(*gmailResult)
		want   bool
	}{
		"as asked":           {func(*gmailResult) {}, true},
		"wire not counted":   {func(g *gmailResult) { g.Wire = -1 }, true},
		"one download more":  {func(g *gmailResult) { g.Downloaded, g.Linked = 11, 19 }, false},
		"the wire disagrees": {func(g *gmailResult) { g.Wire = 11 }, false},
		"a copy missing":     {func(g *gmailResult) { g.Linked = 19 }, false},
		"exit 3":             {func(g *gmailResult) { g.Satchel = &result{Exit: 3} }, false},
		"a mailbox failed":   {func(g *gmailResult) { g.Errors = []string{"Work: x"} }, false},
	} {
		g := ok
		tc.change(&g)
		if got := g.pass(); got != tc.want {
			t.Errorf("%s: pass() = %v, want %v", name, got, tc.want)
		}
	}
}
