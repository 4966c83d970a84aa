package sync

import (
	"errors"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestGlobs(t *testing.T) {
	tests := []struct {
		pattern, name string
		delim         rune
		want          bool
	}{
		{"*", "Archive/2024", '/', true},
		{"%", "Archive/2024", '/', false},
		{"%", "Archive", '/', true},
		{"Archive/%", "Archive/2024", '/', true},
		{"Archive/%", "Archive/2024/Q1", '/', false},
		{"Archive/*", "Archive/2024/Q1", '/', true},
		{"Archive.%", "Archive.2024", '.', true},
		{"Archive.%", "Archive.2024.Q1", '.', false},
		{"Ju?k", "Junk", '/', true},
		{"[Gmail]/All Mail", "[Gmail]/All Mail", '/', true},
		{"[Gmail]/All Mail", "G/All Mail", '/', false},
		{"inbox", "INBOX", '/', true},
		{"Sent", "sent", '/', false},
	}
	for _, tt := range tests {
		g, err := compileGlobs([]string{tt.pattern})
		if err != nil {
			t.Fatal(err)
		}
		if got := matchAny(g, mail.RemoteMailbox{Name: tt.name, Delim: tt.delim}); got != tt.want {
			t.Errorf("%q matches %q: %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestSelectMailboxes(t *testing.T) {
	list := []mail.RemoteMailbox{
		{Name: "INBOX", Delim: '/'},
		{Name: "Archive", Delim: '/', NoSelect: true},
		{Name: "Archive/2024", Delim: '/'},
		{Name: "Junk", Delim: '/'},
		{Name: "a.b", Delim: '.'},
	}
	r := &runner{
		opts: Options{Include: []string{"*"}, Exclude: []string{"Junk"}},
		deps: Deps{LocalPath: func(levels []string) (string, error) { return strings.Join(levels, "/"), nil }},
	}
	got, err := r.selectMailboxes(list)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range got {
		names = append(names, e.Name+"->"+e.rel)
	}
	want := "Archive->Archive Archive/2024->Archive/2024 INBOX->INBOX a.b->a/b"
	if strings.Join(names, " ") != want {
		t.Fatalf("selected %q, want %q", strings.Join(names, " "), want)
	}
	if !got[0].NoSelect {
		t.Fatal("the \\Noselect level lost its attribute")
	}

	// Two names for one folder: the second fails alone, naming both;
	// the folder stays with the mailbox the index syncs with it.
	r.opts.Exclude = nil
	got, err = r.selectMailboxes(append(list, mail.RemoteMailbox{Name: "a/b", Delim: '/'}))
	if err != nil {
		t.Fatal(err)
	}
	collided := func(got []mailboxEntry) (ok, failed string) {
		for _, e := range got {
			switch {
			case errors.Is(e.err, ErrNameCollision):
				if !strings.Contains(e.err.Error(), `"a.b"`) || !strings.Contains(e.err.Error(), `"a/b"`) {
					t.Errorf("collision error %q does not name both", e.err)
				}
				failed = e.Name
			case e.err == nil && e.rel == "a/b":
				ok = e.Name
			}
		}
		return ok, failed
	}
	if ok, failed := collided(got); ok != "a.b" || failed != "a/b" {
		t.Fatalf("a/b kept by %q, failed %q", ok, failed)
	}
	r.owners = map[string]string{"a/b": "a/b"}
	got, _ = r.selectMailboxes(append(list, mail.RemoteMailbox{Name: "a/b", Delim: '/'}))
	if ok, failed := collided(got); ok != "a/b" || failed != "a.b" {
		t.Fatalf("with the index: a/b kept by %q, failed %q", ok, failed)
	}
	if len(got) != 6 {
		t.Fatalf("%d entries, want every selected mailbox", len(got))
	}
	r.owners = nil

	// --mailbox names a mailbox that is not there.
	r.opts.Only = []string{"Nope"}
	if _, err := r.selectMailboxes(list); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Fatalf("unknown --mailbox: %v", err)
	}
	r.opts.Only = []string{"inbox"}
	got, err = r.selectMailboxes(list)
	if err != nil || len(got) != 1 || got[0].Name != "INBOX" {
		t.Fatalf("--mailbox inbox: %v %v", got, err)
	}
}

// FuzzGlob: any pattern compiles or is refused, and a pattern without
// wildcards matches exactly the name it spells.
func FuzzGlob(f *testing.F) {
	for _, s := range []string{"*", "%", "Archive/%", "[Gmail]/All Mail", "a.b?c", `\`, "(", ""} {
		f.Add(s, "Archive/2024")
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		g, err := compileGlobs([]string{pattern})
		if err != nil {
			return
		}
		matchAny(g, mail.RemoteMailbox{Name: name, Delim: '/'})
		if !strings.ContainsAny(pattern, "*%?") && !strings.EqualFold(pattern, "INBOX") {
			if !matchAny(g, mail.RemoteMailbox{Name: pattern, Delim: '/'}) {
				t.Fatalf("literal pattern %q does not match itself", pattern)
			}
		}
	})
}
