package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/satchel-mail/satchel/sync/mail"
)

// memIndex is the part of an index the identity check uses, in memory.
type memIndex struct {
	meta      map[string]string
	mailboxes []mail.Mailbox
}

func (m *memIndex) Meta(_ context.Context, key string) (string, bool, error) {
	v, ok := m.meta[key]
	return v, ok, nil
}

func (m *memIndex) SetMeta(_ context.Context, key, value string) error {
	m.meta[key] = value
	return nil
}

func (m *memIndex) Mailboxes(context.Context) ([]mail.Mailbox, error) { return m.mailboxes, nil }

func (m *memIndex) Path() string { return "index.db" }

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
		{"another index's root", true, true, true, other, true, ErrMismatch, false},
		{"not satchel's file", true, true, true, garbled, true, ErrMismatch, false},
		{"emptied root", true, true, false, none, true, ErrMissing, false},
		{"emptied root, dry run", true, true, false, none, false, ErrMissing, false},
		{"folders but no file", true, true, true, none, true, ErrMissing, false},
		{"older index", false, true, true, none, true, nil, true},
		{"older index, empty root", false, true, false, none, true, ErrMissing, false},
		{"new index, existing root", false, false, true, other, true, nil, true},
		{"index id, no mailboxes yet", true, false, false, none, true, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := Root{Dir: filepath.Join(t.TempDir(), "Mail")}
			ix := &memIndex{meta: map[string]string{}}
			if tt.indexID {
				ix.meta[MetaIdentity] = "aaaa"
			}
			if tt.mailboxes {
				ix.mailboxes = []mail.Mailbox{{ID: 1, Name: "INBOX", LocalPath: "INBOX"}}
			}
			if tt.folder {
				if err := os.MkdirAll(filepath.Join(root.Dir, "INBOX", "cur"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			switch tt.file {
			case same:
				err = root.WriteIdentity(Identity{ID: "aaaa", Account: "personal"})
			case other:
				err = root.WriteIdentity(Identity{ID: "bbbb", Account: "work"})
			case garbled:
				os.MkdirAll(root.Dir, 0o700)
				err = os.WriteFile(filepath.Join(root.Dir, IdentityFile), []byte("hello\n"), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, rootErr := os.Stat(root.Dir)

			err = root.CheckIdentity(t.Context(), ix, "personal", tt.write)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("CheckIdentity = %v, want %v", err, tt.want)
			}
			file, fileHas, _ := root.ReadIdentity()
			id, idHas := ix.meta[MetaIdentity]
			if tt.written {
				if !fileHas || !idHas || file.ID != id || id == "" {
					t.Fatalf("after the check: file %+v (%v), index %q (%v); want the same id", file, fileHas, id, idHas)
				}
				if fi, err := os.Stat(filepath.Join(root.Dir, IdentityFile)); err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("identity file: %v, %v; want mode 0600", fi, err)
				}
				return
			}
			if os.IsNotExist(rootErr) {
				if _, err := os.Stat(root.Dir); !os.IsNotExist(err) {
					t.Fatalf("the check created %s", root.Dir)
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

// TestCheckIdentityRemovesStaleTemporary: the temporary file of an
// identity file a killed run never renamed is removed by the next run
// that writes.
func TestCheckIdentityRemovesStaleTemporary(t *testing.T) {
	root := Root{Dir: t.TempDir()}
	stale := filepath.Join(root.Dir, IdentityFile+".tmp1234")
	if err := os.WriteFile(stale, []byte("id: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := root.CheckIdentity(t.Context(), &memIndex{meta: map[string]string{}}, "personal", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the stale temporary file is still there (%v)", err)
	}
}
