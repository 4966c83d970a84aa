package restore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/mail"
)

// planLines describes a plan as "folder -> mailbox -> target folder", or
// "folder: error" for a folder that fails, in the plan's order.
func planLines(folders []*Folder) []string {
	var out []string
	for _, f := range folders {
		if f.Err != nil {
			out = append(out, FolderLabel(f.From)+": "+f.Err.Error())
			continue
		}
		l := FolderLabel(f.From) + " -> " + f.Mailbox + " -> " + FolderLabel(f.To)
		if f.Fallback != "" {
			l += " (no " + f.Fallback + ")"
		}
		out = append(out, l)
	}
	return out
}

// planMatches reports whether the lines of a plan are the wanted ones: a
// placed folder's line equal, a failed folder's "folder: error" holding
// the wanted "folder: part of the error".
func planMatches(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		folder, part, failed := strings.Cut(want[i], ": ")
		switch {
		case !failed && got[i] != want[i],
			failed && !(strings.HasPrefix(got[i], folder+": ") && strings.Contains(got[i], part)):
			return false
		}
	}
	return true
}

// TestRestorePlanMailboxMap: the plan applies the source's mailboxes.map
// in reverse, by the target server's listing, and places each mailbox
// where the target's map puts it. Error lines are matched by a part of
// them.
func TestRestorePlanMailboxMap(t *testing.T) {
	srcMap := map[string]string{"[Gmail]/Drafts": "Drafts", `\Sent`: "Sent", `\Trash`: "Bin", "Archive": "Vault"}
	sent := mail.RemoteMailbox{Name: "Sent Items", Delim: '/', Attrs: []string{`\Sent`}}
	inbox := mail.RemoteMailbox{Name: "INBOX", Delim: '/'}
	for _, tc := range []struct {
		name    string
		froms   []string
		srcMap  map[string]string // nil: srcMap
		list    []mail.RemoteMailbox
		dst     *Account // nil: in place
		only    []string
		want    []string
		wantErr error
	}{
		{
			name:  "reverse",
			froms: []string{"Bin", "Drafts", "INBOX", "Sent", "Vault", "Work"},
			list:  []mail.RemoteMailbox{inbox, sent},
			want: []string{
				"Vault -> Archive -> Vault", "Bin -> Bin -> Bin (no \\Trash)", "INBOX -> INBOX -> INBOX",
				"Sent -> Sent Items -> Sent", "Work -> Work -> Work", "Drafts -> [Gmail]/Drafts -> Drafts",
			},
		},
		{
			// Archive sorts before Vault, the folder the map gives it.
			name:  "a folder that is a mapped mailbox by its own name",
			froms: []string{"Archive", "Sent", "Sent Items", "Vault"},
			list:  []mail.RemoteMailbox{inbox, sent},
			want: []string{
				"Vault -> Archive -> Vault", "Sent -> Sent Items -> Sent",
				`Archive: mailbox "Archive", which the account's mailboxes.map gives folder Vault`,
				`Sent Items: mailbox "Sent Items", which the account's mailboxes.map gives folder Sent`,
			},
		},
		{
			name:  "alone, in place",
			froms: []string{"Archive"},
			list:  []mail.RemoteMailbox{inbox},
			want:  []string{"Archive: this account syncs with folder Vault"},
		},
		{
			name:  "alone, to an account without a map",
			froms: []string{"Archive"},
			list:  []mail.RemoteMailbox{inbox},
			dst:   &Account{Name: "new"},
			want:  []string{"Archive -> Archive -> Archive"},
		},
		{
			// A remote name wins over an attribute: Sent Items is Old's.
			name:   "the attribute's mailbox is mapped by name",
			froms:  []string{"Old", "Sent"},
			srcMap: map[string]string{`\Sent`: "Sent", "Sent Items": "Old"},
			list:   []mail.RemoteMailbox{inbox, sent},
			want:   []string{"Sent -> Sent -> Sent (no \\Sent)", "Old -> Sent Items -> Old"},
		},
		{
			// In place, the two would share the folder Sent: a sync
			// fails on them, and so does the plan (see "a listed mailbox
			// in the way").
			name:  "several mailboxes with the attribute",
			froms: []string{"INBOX", "Sent"},
			list:  []mail.RemoteMailbox{inbox, sent, {Name: "Sent Messages", Delim: '/', Attrs: []string{`\Sent`}}},
			dst:   &Account{Name: "new"},
			want:  []string{"INBOX -> INBOX -> INBOX", `Sent: the server marks 2 mailboxes \Sent ("Sent Items", "Sent Messages")`},
		},
		{
			name:  "the target's map and layout",
			froms: []string{"Bin", "Drafts", "INBOX", "Sent"},
			list:  []mail.RemoteMailbox{inbox, sent},
			dst: &Account{Name: "new", Layout: maildir.MaildirPlusPlus,
				Map: map[string]string{`\Sent`: "Sent Mail", "[Gmail]/Drafts": "Entwürfe", `\Trash`: "Papierkorb"}},
			want: []string{
				"Bin -> Bin -> .Bin (no \\Trash)", "INBOX -> INBOX -> .", "Sent -> Sent Items -> .Sent Mail", "Drafts -> [Gmail]/Drafts -> .Entwürfe",
			},
		},
		{
			name:  "--mailbox names the server's mailbox",
			froms: []string{"Drafts", "INBOX", "Sent"},
			list:  []mail.RemoteMailbox{inbox, sent},
			only:  []string{"Sent Items"},
			want:  []string{"Sent -> Sent Items -> Sent"},
		},
		{
			// Sent Items and Sent would share the folder Sent.
			name:    "a listed mailbox in the way",
			froms:   []string{"Sent"},
			list:    []mail.RemoteMailbox{inbox, sent, {Name: "Sent", Delim: '/'}},
			wantErr: satsync.ErrNameCollision,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := Account{Name: "old", Layout: maildir.Verbatim, Include: []string{"*"}, Map: srcMap}
			if tc.srcMap != nil {
				src.Map = tc.srcMap
			}
			dst := src
			if tc.dst != nil {
				dst = *tc.dst
				if dst.Layout == nil {
					dst.Layout = maildir.Verbatim
				}
				dst.Include = []string{"*"}
			}
			p := planner{src: src, dst: dst, only: tc.only, inPlace: src.Name == dst.Name}
			folders, err := p.plan(tc.froms, tc.list)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("plan: %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := planLines(folders); !planMatches(got, tc.want) {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestRestoreReplace: a mailbox the restore creates may come back from
// the server with a special-use attribute (Dovecot's special_use for its
// name); the target's mailboxes.map then places it by that attribute.
// In place, where its files cannot move, it fails instead; excluded by
// that attribute, it fails too.
func TestRestoreReplace(t *testing.T) {
	after := []mail.RemoteMailbox{{Name: "INBOX", Delim: '/'}, {Name: "Junk", Delim: '/', Attrs: []string{`\Junk`}}}
	for _, tc := range []struct {
		name    string
		dst     Account
		inPlace bool
		want    string
	}{
		{"to", Account{Map: map[string]string{`\Junk`: "Spam"}}, false, "Junk -> Junk -> Spam"},
		{"in place", Account{Map: map[string]string{`\Junk`: "Spam"}}, true, "Junk: this account syncs with folder Spam"},
		{"excluded", Account{Exclude: []string{`\Junk`}}, false, "Junk: leave out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := tc.dst
			dst.Name, dst.Layout, dst.Include = "new", maildir.Verbatim, []string{"*"}
			f := &Folder{From: "Junk", Mailbox: "Junk", To: "Junk"}
			p := planner{dst: dst, inPlace: tc.inPlace}
			if _, err := p.replace([]*Folder{f}, after); err != nil {
				t.Fatal(err)
			}
			if got := planLines([]*Folder{f}); !planMatches(got, []string{tc.want}) {
				t.Errorf("after the new listing: %s, want %s", got, tc.want)
			}
		})
	}
}

// TestRestorePlanMaildirPlusPlus: the folders of a Maildir++ Maildir are
// read as that layout names them (the root is INBOX; a folder that is
// not canonical Maildir++ fails alone; other directories are no folders)
// and placed where the target's layout puts their mailboxes.
func TestRestorePlanMaildirPlusPlus(t *testing.T) {
	root := t.TempDir()
	for _, rel := range []string{"", ".A.B", ".v1%2E2", ".Друзья", ".A..B", "Archive"} {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(root, rel, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Mkdir(filepath.Join(root, ".cache"), 0o700); err != nil {
		t.Fatal(err)
	}
	src := maildir.Root{Dir: root, Layout: maildir.MaildirPlusPlus}
	froms, err := src.AllFolders()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"", ".A..B", ".A.B", ".v1%2E2", ".Друзья"}; !slices.Equal(froms, want) {
		t.Fatalf("folders %q, want %q", froms, want)
	}
	list := []mail.RemoteMailbox{{Name: "INBOX", Delim: '/'}}
	for _, tc := range []struct {
		layout maildir.Layout
		want   []string // "folder -> mailbox -> target folder", by mailbox
	}{
		{maildir.Verbatim, []string{".A.B -> A/B -> A/B", ". -> INBOX -> INBOX", ".v1%2E2 -> v1.2 -> v1.2", ".Друзья -> Друзья -> Друзья"}},
		{maildir.MaildirPlusPlus, []string{".A.B -> A/B -> .A.B", ". -> INBOX -> .", ".v1%2E2 -> v1.2 -> .v1%2E2", ".Друзья -> Друзья -> .Друзья"}},
	} {
		t.Run(tc.layout.Name(), func(t *testing.T) {
			srcAcc := Account{Name: "old", Layout: src.Layout}
			dst := Account{Name: "new", Layout: tc.layout, Include: []string{"*"}}
			p := planner{src: srcAcc, dst: dst}
			folders, err := p.plan(froms, list)
			if err != nil {
				t.Fatal(err)
			}
			var got, failed []string
			for _, f := range folders {
				if f.Err != nil {
					failed = append(failed, f.From)
					continue
				}
				got = append(got, FolderLabel(f.From)+" -> "+f.Mailbox+" -> "+FolderLabel(f.To))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if !slices.Equal(failed, []string{".A..B"}) {
				t.Errorf("failed folders %q, want the non-canonical .A..B alone", failed)
			}
		})
	}
}
