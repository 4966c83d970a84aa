package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
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
	froms, err := layoutFolders(src)
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
			srcAcc := config.Account{Name: "old", Maildir: root, Layout: src.Layout.Name()}
			dst := config.Account{Name: "new", Maildir: t.TempDir(), Layout: tc.layout.Name(), Mailboxes: config.Mailboxes{Include: []string{"*"}}}
			folders, err := restorePlan(froms, srcAcc, dst, list, nil, satsync.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got, failed []string
			for _, f := range folders {
				if f.err != nil {
					failed = append(failed, f.from)
					continue
				}
				got = append(got, folderLabel(f.from)+" -> "+f.name+" -> "+folderLabel(f.to))
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
