package sync

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/sync/mail"
)

func TestNamingShapes(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		shape  string
		ns     mail.Namespaces
		prefix *string
		delim  rune
		// server name → folder levels, and back
		names map[string]string
		// names of other users' and shared namespaces
		foreign []string
	}{
		{shape: `("" "/")`, ns: mail.Namespaces{Known: true, Personal: []mail.Namespace{{Prefix: "", Delim: '/'}}}, delim: '/',
			names: map[string]string{"INBOX": "INBOX", "Archive": "Archive", "Archive/2024": "Archive/2024", "INBOX/Sub": "INBOX/Sub"}},
		{shape: `("" ".")`, ns: mail.Namespaces{Known: true, Personal: []mail.Namespace{{Prefix: "", Delim: '.'}}}, delim: '.',
			names: map[string]string{"INBOX": "INBOX", "Archive.2024": "Archive/2024"}},
		{shape: `("INBOX." ".")`, ns: mail.Namespaces{Known: true, Personal: []mail.Namespace{{Prefix: "INBOX.", Delim: '.'}}}, delim: '.',
			names: map[string]string{"INBOX": "INBOX", "INBOX.Archive": "Archive", "INBOX.Archive.2024": "Archive/2024", "INBOX.Größe": "Größe"}},
		{shape: `("INBOX/" "/")`, ns: mail.Namespaces{Known: true, Personal: []mail.Namespace{{Prefix: "INBOX/", Delim: '/'}}}, delim: '/',
			names: map[string]string{"INBOX": "INBOX", "INBOX/Archive": "Archive", "INBOX/Archive/2024": "Archive/2024"}},
		{shape: "no NAMESPACE", ns: mail.Namespaces{}, delim: '.',
			names: map[string]string{"INBOX": "INBOX", "Archive.2024": "Archive/2024"}},
		{shape: "no NAMESPACE, imap.prefix", ns: mail.Namespaces{}, prefix: str("INBOX."), delim: '.',
			names: map[string]string{"INBOX": "INBOX", "INBOX.Archive": "Archive"}},
		{shape: `imap.prefix "" over ("INBOX." ".")`, ns: mail.Namespaces{Known: true, Personal: []mail.Namespace{{Prefix: "INBOX.", Delim: '.'}}}, prefix: str(""), delim: '.',
			names: map[string]string{"INBOX": "INBOX", "INBOX.Archive": "INBOX/Archive"}},
		{shape: `("INBOX." ".") beside shared ""`, ns: mail.Namespaces{Known: true,
			Personal: []mail.Namespace{{Prefix: "INBOX.", Delim: '.'}}, Other: []mail.Namespace{{Prefix: "user.", Delim: '.'}}, Shared: []mail.Namespace{{Prefix: "", Delim: '.'}}}, delim: '.',
			names:   map[string]string{"INBOX": "INBOX", "INBOX.Archive": "Archive", "inbox.Sent": "Sent"},
			foreign: []string{"user.bob", "user.bob.Sent", "Public", "Public.Lists"}},
		{shape: `("" "/") beside "Shared/"`, ns: mail.Namespaces{Known: true,
			Personal: []mail.Namespace{{Prefix: "", Delim: '/'}}, Shared: []mail.Namespace{{Prefix: "Shared/", Delim: '/'}}}, delim: '/',
			names:   map[string]string{"INBOX": "INBOX", "Archive": "Archive", "Sharedness": "Sharedness"},
			foreign: []string{"Shared/team", "Shared/team/2024"}},
	}
	for _, c := range cases {
		t.Run(c.shape, func(t *testing.T) {
			n := namingFrom(c.ns, c.prefix, c.delim)
			for server, local := range c.names {
				m := mail.RemoteMailbox{Name: canonMailbox(server), Delim: c.delim}
				if n.isForeign(m.Name) {
					t.Errorf("%q taken for another namespace's", server)
				}
				levels := n.levels(m)
				if got := strings.Join(levels, "/"); got != local {
					t.Errorf("%q: folder %q, want %q", server, got, local)
				}
				back, err := n.remoteName(levels, c.delim)
				if err != nil || !sameMailbox(back, canonPrefix(server)) {
					t.Errorf("folder %q: mailbox %q (%v), want %q", local, back, err, server)
				}
			}
			for _, name := range c.foreign {
				if !n.isForeign(name) {
					t.Errorf("%q not taken for another namespace's", name)
				}
				if got := n.levels(mail.RemoteMailbox{Name: name, Delim: c.delim}); !slices.Equal(got, strings.Split(name, string(c.delim))) {
					t.Errorf("%q: folder levels %q, want its whole name", name, got)
				}
			}
		})
	}
}

func TestNamingRefusals(t *testing.T) {
	hosting := namingFrom(mail.Namespaces{Known: true, Personal: []mail.Namespace{{Prefix: "INBOX.", Delim: '.'}}}, nil, '.')
	// A level holding the delimiter cannot be one level on the server.
	if _, err := hosting.remoteName([]string{"v1.2"}, '.'); !errors.Is(err, ErrFolderName) || !strings.Contains(err.Error(), `"v1.2"`) {
		t.Errorf("v1.2 on a '.' server: %v", err)
	}
	// A legacy folder below INBOX keeps its prefix: the same mailbox as
	// the folder Archive, which the engine then refuses as a collision.
	if got, err := hosting.remoteName([]string{"INBOX", "Archive"}, '.'); err != nil || got != "INBOX.Archive" {
		t.Errorf("INBOX/Archive: %q, %v", got, err)
	}
	if got, err := hosting.remoteName([]string{"Archive"}, '.'); err != nil || got != "INBOX.Archive" {
		t.Errorf("Archive: %q, %v", got, err)
	}
	// An index that keeps prefixed folder names creates nothing outside
	// the prefix, and says how to go on.
	full := *hosting
	full.full = true
	if _, err := full.remoteName([]string{"Projekte"}, '.'); !errors.Is(err, ErrFolderName) || !strings.Contains(err.Error(), "migrate-folders") {
		t.Errorf("full names, Projekte: %v", err)
	}
	if got, err := full.remoteName([]string{"INBOX", "Projekte"}, '.'); err != nil || got != "INBOX.Projekte" {
		t.Errorf("full names, INBOX/Projekte: %q, %v", got, err)
	}
	if got := full.levels(mail.RemoteMailbox{Name: "INBOX.Archive", Delim: '.'}); !slices.Equal(got, []string{"INBOX", "Archive"}) {
		t.Errorf("full names, INBOX.Archive: %q", got)
	}
	// No hierarchy: one level only.
	flat := namingFrom(mail.Namespaces{}, nil, 0)
	if _, err := flat.remoteName([]string{"a", "b"}, 0); !errors.Is(err, ErrFolderName) {
		t.Errorf("levels on a flat server: %v", err)
	}
	// INBOX.inbox is a folder of its own name, which a case-insensitive
	// file system shares with INBOX: selectMailboxes refuses the pair.
	r := &runner{names: hosting, deps: Deps{LocalPath: func(l []string) (string, error) { return strings.Join(l, "/"), nil }}}
	got, err := r.selectMailboxes([]mail.RemoteMailbox{{Name: "INBOX", Delim: '.'}, {Name: "INBOX.inbox", Delim: '.'}, {Name: "INBOX.Archive", Delim: '.'}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		switch e.Name {
		case "INBOX.inbox":
			if !errors.Is(e.err, ErrNameCollision) || !strings.Contains(e.err.Error(), `"INBOX"`) {
				t.Errorf("INBOX.inbox: %v", e.err)
			}
		default:
			if e.err != nil {
				t.Errorf("%s: %v", e.Name, e.err)
			}
		}
	}
}

func TestNamedIncludes(t *testing.T) {
	ns := namingFrom(mail.Namespaces{Known: true, Personal: []mail.Namespace{{Prefix: "INBOX.", Delim: '.'}}, Shared: []mail.Namespace{{Prefix: "", Delim: '.'}}, Other: []mail.Namespace{{Prefix: "user.", Delim: '.'}}}, nil, '.')
	list := []mail.RemoteMailbox{{Name: "INBOX", Delim: '.'}, {Name: "INBOX.Archive", Delim: '.'}, {Name: "Public.Lists", Delim: '.'}, {Name: "user.bob.Sent", Delim: '.'}}
	for _, c := range []struct {
		include []string
		want    string
	}{
		{[]string{"*"}, "INBOX INBOX.Archive"},
		{[]string{"%", "*"}, "INBOX INBOX.Archive"},
		{[]string{"*", "Public.*"}, "INBOX INBOX.Archive Public.Lists"},
		{[]string{"*", "user.bob.*"}, "INBOX INBOX.Archive user.bob.Sent"},
		{[]string{"INBOX*"}, "INBOX INBOX.Archive"},
	} {
		r := &runner{names: ns, opts: Options{Include: c.include}, deps: Deps{LocalPath: func(l []string) (string, error) { return strings.Join(l, "/"), nil }}}
		got, err := r.selectMailboxes(list)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range got {
			names = append(names, e.Name)
		}
		if strings.Join(names, " ") != c.want {
			t.Errorf("include %q selects %q, want %q", c.include, names, c.want)
		}
	}
}

// FuzzNaming: a folder's levels name a mailbox whose folder is those
// levels again, in every namespace shape, or the folder is refused.
func FuzzNaming(f *testing.F) {
	for _, s := range []string{"Archive", "Archive/2024", "INBOX", "inbox", "v1.2", "Größe/x", "INBOX/Sub", ""} {
		f.Add(s, "INBOX.", ".")
		f.Add(s, "", "/")
		f.Add(s, "INBOX/", "/")
	}
	f.Fuzz(func(t *testing.T, path, prefix, sep string) {
		if len([]rune(sep)) != 1 || path == "" {
			return
		}
		delim := []rune(sep)[0]
		n := namingFrom(mail.Namespaces{Known: true, Personal: []mail.Namespace{{Prefix: prefix, Delim: delim}}}, nil, delim)
		levels := strings.Split(path, "/")
		name, err := n.remoteName(levels, delim)
		if err != nil {
			return
		}
		if slices.Contains(levels, "") || strings.EqualFold(levels[0], "INBOX") || prefix != "" && !strings.HasSuffix(prefix, sep) {
			return // not a folder's levels, or a legacy folder below INBOX
		}
		got := n.levels(mail.RemoteMailbox{Name: canonMailbox(name), Delim: delim})
		if !slices.Equal(got, levels) {
			t.Fatalf("levels %q → mailbox %q → levels %q", levels, name, got)
		}
	})
}
