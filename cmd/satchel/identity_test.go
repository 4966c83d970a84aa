package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/satchel-mail/satchel/store"
)

func TestCheckIdentity(t *testing.T) {
	const (
		none = iota
		same
		other
		garbled
	)
	tests := []struct {
		name      string
		indexID   bool // the index holds an id
		mailboxes bool // the index holds a mailbox
		folder    bool // the root holds that mailbox's folder
		file      int  // the root's identity file
		write     bool
		want      error
		written   bool // both hold the same id afterwards
	}{
		{"first sync", false, false, false, none, true, nil, true},
		{"first dry run", false, false, false, none, false, nil, false},
		{"same id", true, true, true, same, true, nil, true},
		{"another index's root", true, true, true, other, true, errMaildirMismatch, false},
		{"not satchel's file", true, true, true, garbled, true, errMaildirMismatch, false},
		{"emptied root", true, true, false, none, true, errMaildirMissing, false},
		{"emptied root, dry run", true, true, false, none, false, errMaildirMissing, false},
		{"folders but no file", true, true, true, none, true, errMaildirMissing, false},
		{"older index", false, true, true, none, true, nil, true},
		{"older index, empty root", false, true, false, none, true, errMaildirMissing, false},
		{"new index, existing root", false, false, true, other, true, nil, true},
		{"index id, no mailboxes yet", true, false, false, none, true, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "Mail")
			ix, err := store.Open(t.Context(), filepath.Join(dir, "index.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close()
			if tt.indexID {
				if err := ix.SetMeta(t.Context(), metaMaildirID, "aaaa"); err != nil {
					t.Fatal(err)
				}
			}
			if tt.mailboxes {
				if _, err := ix.EnsureMailbox(t.Context(), "INBOX", "INBOX"); err != nil {
					t.Fatal(err)
				}
			}
			if tt.folder {
				if err := os.MkdirAll(filepath.Join(root, "INBOX", "cur"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			switch tt.file {
			case same:
				err = writeIdentity(root, identity{ID: "aaaa", Account: "personal"})
			case other:
				err = writeIdentity(root, identity{ID: "bbbb", Account: "work"})
			case garbled:
				os.MkdirAll(root, 0o700)
				err = os.WriteFile(filepath.Join(root, identityFile), []byte("hello\n"), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, rootErr := os.Stat(root)

			err = checkIdentity(t.Context(), ix, root, "personal", tt.write)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("checkIdentity = %v, want %v", err, tt.want)
			}
			file, fileHas, _ := readIdentity(root)
			id, idHas, _ := ix.Meta(t.Context(), metaMaildirID)
			if tt.written {
				if !fileHas || !idHas || file.ID != id || id == "" {
					t.Fatalf("after the check: file %+v (%v), index %q (%v); want the same id", file, fileHas, id, idHas)
				}
				if fi, err := os.Stat(filepath.Join(root, identityFile)); err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("identity file: %v, %v; want mode 0600", fi, err)
				}
				return
			}
			if os.IsNotExist(rootErr) {
				if _, err := os.Stat(root); !os.IsNotExist(err) {
					t.Fatalf("the check created %s", root)
				}
			}
			if tt.file == none && fileHas {
				t.Fatal("the check wrote an identity file")
			}
			if !tt.indexID && idHas {
				t.Fatal("the check recorded an id in the index")
			}
		})
	}
}
