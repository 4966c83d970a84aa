package notmuch

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func TestQueries(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{scope(""), "path:**"},
		{scope("acct"), `path:"acct/**"`},
		{scope(`we"ird dir`), `path:"we""ird dir/**"`},
		{since(scope("a"), 0), `path:"a/**"`},
		{since(scope("a"), 41), `path:"a/**" and lastmod:42..`},
		{encodeTag("to do"), "to%20do"},
		{encodeTag("über"), "%c3%bcber"},
		{encodeTag("a=b+c-d"), "a=b+c-d"},
		{encodeTag(`"x"`), "%22x%22"},
	} {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
	if q, ok := idTerm(`a"b c)@x`); !ok || q != `id:"a""b c)@x"` {
		t.Errorf("idTerm: %q, %v", q, ok)
	}
	if _, ok := idTerm("a\nb"); ok {
		t.Error("an id with a line break was accepted for a batch line")
	}
}

// TestCollect: messages are found at any depth of notmuch show's threads
// of [message, replies] pairs.
func TestCollect(t *testing.T) {
	var v any
	js := `[[{"id":"a@x","filename":["/m/a"],"tags":["inbox","x y"]},[[{"id":"b@x","filename":["/m/b","/m/c"],"tags":[]},[]]]]]`
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatal(err)
	}
	msgs := collect(v, nil)
	if len(msgs) != 2 || msgs[0].ID != "a@x" || msgs[0].Tags[1] != "x y" || len(msgs[1].Files) != 2 {
		t.Fatalf("collected %+v", msgs)
	}
}

// FuzzEncodeTag: a batch line's tag is one field of safe bytes that
// decodes back to the tag (notmuch-tag(1): %NN hex-encoding).
func FuzzEncodeTag(f *testing.F) {
	for _, s := range []string{"work", "to do", "über", "a%b", "-x", "+y", "\x00\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := encodeTag(s)
		if strings.ContainsAny(e, " \t\n\r\"") {
			t.Fatalf("encoded %q as %q", s, e)
		}
		back, err := url.PathUnescape(e)
		if err != nil || back != s {
			t.Fatalf("%q -> %q -> %q, %v", s, e, back, err)
		}
	})
}
