package verify_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/satchel-mail/satchel/sync/verify"
)

// TestVerifyProgressFile: records survive a reopen; a line cut short by a crash
// is ignored and does not swallow the next record; Done forgets all.
func TestVerifyProgressFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress")
	a := verify.Entry{Mailbox: "INBOX", UIDValidity: 7, UID: 1, Key: "k1", Size: 10, ModTime: 100}
	b := verify.Entry{Mailbox: "Друзья\t\"x\"", UIDValidity: 7, UID: 2, Key: "k2", Size: 20, ModTime: 200}
	c := verify.Entry{Mailbox: "INBOX", UIDValidity: 7, UID: 3, Key: "k3", Size: 30, ModTime: 300}

	p, err := verify.OpenProgress(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Verified(a) {
		t.Fatal("a new progress file knows a message")
	}
	for _, e := range []verify.Entry{a, b} {
		if err := p.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	// A crash in the middle of a write.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"mailbox":"INBOX","uidval`)
	f.Close()

	p, err = verify.OpenProgress(path)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Verified(a) || !p.Verified(b) || p.Len() != 2 {
		t.Fatalf("after a reopen: a %v, b %v, %d records", p.Verified(a), p.Verified(b), p.Len())
	}
	changed := a
	changed.ModTime++
	if p.Verified(changed) {
		t.Error("a file changed since counts as verified")
	}
	if err := p.Record(c); err != nil {
		t.Fatal(err)
	}
	p.Close()
	p, err = verify.OpenProgress(path)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Verified(c) || p.Len() != 3 {
		t.Fatalf("the record after a cut line was lost: %d records", p.Len())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("progress file mode: %v %v", fi.Mode(), err)
	}
	if err := p.Done(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Done left the file: %v", err)
	}
	if p.Verified(a) {
		t.Error("Done did not forget")
	}
}
