package main

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// TestRestoreMailboxMap restores a backup written through mailboxes.map
// into a Dovecot that marks "Sent Items" \Sent (it exists, empty, as a
// provider makes it) and "Junk" \Junk (it does not exist yet). The
// source's map is applied in reverse: the folder Drafts, mapped from a
// remote name, goes back to "[Gmail]/Drafts"; Sent, mapped from \Sent,
// to "Sent Items"; Bin, mapped from \Trash, which no mailbox has, to a
// mailbox Bin, with a warning. No mailbox is made under a mapped folder's
// own name. In place, the folder of the \Noselect level [Gmail] is made,
// as a sync makes it. With --to, each mailbox's files go where the
// target's own map and layout put it, Junk included, which the server
// marks \Junk once the restore has created it. A sync of the target
// afterwards downloads, uploads and changes nothing.
func TestRestoreMailboxMap(t *testing.T) {
	// mailbox -> the source's folder holding its mail
	from := map[string]string{
		"INBOX": "INBOX", "Archive": "Archive", "[Gmail]/Drafts": "Drafts",
		"Sent Items": "Sent", "Bin": "Bin", "Junk": "Junk",
	}
	counts := map[string]int{"INBOX": 6, "Archive": 4, "Drafts": 3, "Sent": 5, "Bin": 2, "Junk": 3}
	folders, names := slices.Sorted(maps.Values(from)), slices.Sorted(maps.Keys(from))
	rels := map[string]string{}
	for _, f := range folders {
		rels[f] = f
	}
	for _, tc := range []struct {
		name string
		// dst is the target account's layout and map; dstRels the folder
		// of each mailbox in its Maildir. Empty: restored in place.
		dst     restoreSide
		dstRels map[string]string
	}{
		{name: "in-place"},
		{
			name: "to-another-account",
			dst: restoreSide{layout: "maildir++", mailboxMap: map[string]string{
				`\Sent`: "Sent Mail", "[Gmail]/Drafts": "Entwürfe", `\Junk`: "Spam",
			}},
			dstRels: map[string]string{
				"INBOX": "", "Archive": ".Archive", "[Gmail]/Drafts": ".Entwürfe",
				"Sent Items": ".Sent Mail", "Bin": ".Bin", "Junk": ".Spam",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{SpecialUse: map[string]string{"Sent Items": `\Sent`, "Junk": `\Junk`}})
			srv.CreateMailbox("Sent Items")
			dir := t.TempDir()
			src := newRestoreAccount(dir, "old", srv)
			src.mailboxMap = map[string]string{"[Gmail]/Drafts": "Drafts", `\Sent`: "Sent", `\Trash`: "Bin"}
			writeFolders(t, src.maildir, folders, rels, 13, counts)
			accs := []restoreSide{src}
			dst, dstRels, args := src, from, []string{"restore", "old"}
			if tc.dstRels != nil {
				dst = newRestoreAccount(dir, "new", srv)
				dst.layout, dst.mailboxMap = tc.dst.layout, tc.dst.mailboxMap
				dstRels = tc.dstRels
				accs = append(accs, dst)
				args = append(args, "--to", "new")
			}
			cfg := writeAccounts(t, dir, accs...)

			code, out, errs := runCLI(t, append([]string{"--config", cfg}, args...)...)
			if code != exitOK {
				t.Fatalf("restore: exit %d, stdout %q, stderr %q", code, out, errs)
			}
			if !strings.Contains(out, "6 mailboxes (4 created)") || !strings.Contains(out, "23 uploaded") {
				t.Errorf("restore summary %q: want 6 mailboxes, 4 of them created (INBOX and Sent Items exist), and 23 messages uploaded", out)
			}
			if !strings.Contains(errs, `\Trash`) || !strings.Contains(errs, "folder=Bin") {
				t.Errorf("restore stderr %q: want a warning that no mailbox is \\Trash, so Bin keeps its name", errs)
			}
			if got := srv.Mailboxes(); !slices.Equal(got, names) {
				t.Errorf("the server's mailboxes are %q, want %q (none named after a mapped folder)", got, names)
			}
			for _, mb := range names {
				want := folderFilesOf(t, filepath.Join(src.maildir, from[mb]))
				if len(want) != counts[from[mb]] {
					t.Fatalf("%s: the backup holds %d messages, want %d", from[mb], len(want), counts[from[mb]])
				}
				if got := mailOf(srv, mb); !slices.Equal(got, want) {
					t.Errorf("%s: the server has %d messages, the backup's folder %s %d; they differ:\n%s", mb, len(got), from[mb], len(want), listDiff(got, want))
				}
				if got := folderFilesOf(t, filepath.Join(dst.maildir, filepath.FromSlash(dstRels[mb]))); !slices.Equal(got, want) {
					t.Errorf("%s: the target's folder %q differs from the backup's %s:\n%s", mb, dstRels[mb], from[mb], listDiff(got, want))
				}
			}

			// A sync of the target has nothing to do.
			before := treeState(t, dst.maildir)
			trace := filepath.Join(dir, "trace")
			if code, _, errs := runCLI(t, "--config", cfg, "--trace", trace, "sync", dst.name); code != exitOK {
				t.Fatalf("sync %s after the restore: exit %d: %s", dst.name, code, errs)
			}
			data, err := os.ReadFile(trace)
			if err != nil {
				t.Fatal(err)
			}
			if m := changingCommand.FindString(string(data)); m != "" {
				t.Errorf("sync %s after the restore sent %q", dst.name, m)
			}
			if after := treeState(t, dst.maildir); after != before {
				t.Errorf("sync %s after the restore changed its Maildir:\n%s", dst.name, lineDiff(after, before))
			}
			if got := srv.Mailboxes(); !slices.Equal(got, names) {
				t.Errorf("after the sync the server's mailboxes are %q, want %q", got, names)
			}
		})
	}
}

// lineDiff shows the lines only one of two newline-separated texts has.
func lineDiff(got, want string) string {
	return listDiff(strings.Split(got, "\n"), strings.Split(want, "\n"))
}

// planLines describes a plan as "folder -> mailbox -> target folder", or
// "folder: error" for a folder that fails, in the plan's order.
func planLines(folders []*restoreFolder) []string {
	var out []string
	for _, f := range folders {
		if f.err != nil {
			out = append(out, folderLabel(f.from)+": "+f.err.Error())
			continue
		}
		l := folderLabel(f.from) + " -> " + f.name + " -> " + folderLabel(f.to)
		if f.fallback != "" {
			l += " (no " + f.fallback + ")"
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
		dst     *config.Account // nil: in place
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
			dst:   &config.Account{Name: "new"},
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
			dst:   &config.Account{Name: "new"},
			want:  []string{"INBOX -> INBOX -> INBOX", `Sent: the server marks 2 mailboxes \Sent ("Sent Items", "Sent Messages")`},
		},
		{
			name:  "the target's map and layout",
			froms: []string{"Bin", "Drafts", "INBOX", "Sent"},
			list:  []mail.RemoteMailbox{inbox, sent},
			dst: &config.Account{Name: "new", Layout: "maildir++", Mailboxes: config.Mailboxes{
				Map: map[string]string{`\Sent`: "Sent Mail", "[Gmail]/Drafts": "Entwürfe", `\Trash`: "Papierkorb"}}},
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
			src := config.Account{Name: "old", Maildir: t.TempDir(), Mailboxes: config.Mailboxes{Include: []string{"*"}, Map: srcMap}}
			if tc.srcMap != nil {
				src.Mailboxes.Map = tc.srcMap
			}
			dst := src
			if tc.dst != nil {
				dst = *tc.dst
				dst.Maildir = t.TempDir()
				dst.Mailboxes.Include = []string{"*"}
			}
			folders, err := restorePlan(tc.froms, src, dst, tc.list, tc.only, satsync.Options{})
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
		dst     config.Mailboxes
		inPlace bool
		want    string
	}{
		{"to", config.Mailboxes{Map: map[string]string{`\Junk`: "Spam"}}, false, "Junk -> Junk -> Spam"},
		{"in place", config.Mailboxes{Map: map[string]string{`\Junk`: "Spam"}}, true, "Junk: this account syncs with folder Spam"},
		{"excluded", config.Mailboxes{Exclude: []string{`\Junk`}}, false, "Junk: leave out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := config.Account{Name: "new", Maildir: t.TempDir(), Mailboxes: tc.dst}
			dst.Mailboxes.Include = []string{"*"}
			f := &restoreFolder{from: "Junk", name: "Junk", to: "Junk"}
			if _, err := replaceFolders([]*restoreFolder{f}, after, dst, nil, tc.inPlace, satsync.Options{}); err != nil {
				t.Fatal(err)
			}
			if got := planLines([]*restoreFolder{f}); !planMatches(got, []string{tc.want}) {
				t.Errorf("after the new listing: %s, want %s", got, tc.want)
			}
		})
	}
}
