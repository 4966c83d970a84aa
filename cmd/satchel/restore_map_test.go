package main

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/sync/imaptest"
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
