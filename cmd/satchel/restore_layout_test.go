package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

// layoutMailboxes are the mailboxes of the layout restore tests with
// their folders in each layout: INBOX (the root itself in Maildir++), a
// nested mailbox whose parent is no mailbox (Dovecot leaves A \Noselect),
// a name with a "." in it, and non-ASCII names, one below a parent that
// is a mailbox of its own.
var layoutMailboxes = []struct{ name, verbatim, maildirPP string }{
	{"INBOX", "INBOX", ""},
	{"A/B", "A/B", ".A.B"},
	{"v1.2", "v1.2", ".v1%2E2"},
	{"Друзья", "Друзья", ".Друзья"},
	{"Work", "Work", ".Work"},
	{"Work/Ünïcödé", "Work/Ünïcödé", ".Work.Ünïcödé"},
}

// layoutRels maps each of layoutMailboxes to its folder in layout.
func layoutRels(layout string) map[string]string {
	rels := map[string]string{}
	for _, m := range layoutMailboxes {
		rels[m.name] = m.verbatim
		if layout == "maildir++" {
			rels[m.name] = m.maildirPP
		}
	}
	return rels
}

// TestRestoreLayouts restores a Maildir into an empty Dovecot with each
// layout on either side: in place from a maildir++ Maildir, and with --to
// from maildir++ to verbatim and back. Each local folder becomes the
// mailbox it stands for in the source's layout, the server then holds
// exactly the backup's mail, the target's Maildir (with --to) holds it
// where the target's layout puts it, and a sync of the target afterwards
// downloads, uploads and changes nothing.
func TestRestoreLayouts(t *testing.T) {
	names := make([]string, len(layoutMailboxes))
	for i, m := range layoutMailboxes {
		names[i] = m.name
	}
	slices.Sort(names)
	counts := map[string]int{"INBOX": 12, "A/B": 5, "v1.2": 4, "Друзья": 6, "Work": 3, "Work/Ünïcödé": 7}
	for _, tc := range []struct {
		name     string
		src, dst string // layouts; dst "-": restored in place
	}{
		{"in-place/maildir++", "maildir++", "-"},
		{"maildir++-to-verbatim", "maildir++", "verbatim"},
		{"verbatim-to-maildir++", "verbatim", "maildir++"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{})
			dir := t.TempDir()
			src := newRestoreAccount(dir, "old", srv)
			src.layout = tc.src
			accs := []restoreSide{src}
			dst, args := src, []string{"restore", "old"}
			if tc.dst != "-" {
				dst = newRestoreAccount(dir, "new", srv)
				dst.layout = tc.dst
				accs = append(accs, dst)
				args = append(args, "--to", "new")
			}
			srcRels, dstRels := layoutRels(src.layout), layoutRels(dst.layout)
			writeFolders(t, src.maildir, names, srcRels, 7, counts)
			cfg := writeAccounts(t, dir, accs...)

			code, out, errs := runCLI(t, append([]string{"--config", cfg}, args...)...)
			if code != exitOK {
				t.Fatalf("restore: exit %d, stdout %q, stderr %q", code, out, errs)
			}
			if !strings.Contains(out, "6 mailboxes (5 created)") || !strings.Contains(out, "37 uploaded") {
				t.Errorf("restore summary %q: want 6 mailboxes, 5 of them created (INBOX exists), and 37 messages uploaded", out)
			}
			if got := srv.Mailboxes(); !slices.Equal(got, names) {
				t.Errorf("the server's mailboxes are %q, want %q", got, names)
			}
			for _, mb := range names {
				want := folderFilesOf(t, filepath.Join(src.maildir, filepath.FromSlash(srcRels[mb])))
				if len(want) != counts[mb] {
					t.Fatalf("%s: the backup holds %d messages, want %d", mb, len(want), counts[mb])
				}
				if got := mailOf(srv, mb); !slices.Equal(got, want) {
					t.Errorf("%s: the server has %d messages, the backup %d; they differ:\n%s", mb, len(got), len(want), listDiff(got, want))
				}
				if got := folderFilesOf(t, filepath.Join(dst.maildir, filepath.FromSlash(dstRels[mb]))); !slices.Equal(got, want) {
					t.Errorf("%s: the target's folder %q differs from the backup:\n%s", mb, dstRels[mb], listDiff(got, want))
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
				t.Errorf("sync %s after the restore changed its Maildir", dst.name)
			}
			if got := srv.Mailboxes(); !slices.Equal(got, names) {
				t.Errorf("after the sync the server's mailboxes are %q, want %q", got, names)
			}
		})
	}
}
