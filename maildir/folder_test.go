package maildir

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// listingFS counts the directories opened for listing.
type listingFS struct {
	osFS
	lists atomic.Int32
}

func (l *listingFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if fi, err := os.Stat(name); err == nil && fi.IsDir() && flag == os.O_RDONLY {
		l.lists.Add(1)
	}
	return l.osFS.OpenFile(name, flag, perm)
}

// TestFindAll: files under the names their flags give are found by a stat,
// one a mail reader renamed since by a listing, and however many keys are
// missing the folder is listed at most twice (new/ and cur/ each time).
func TestFindAll(t *testing.T) {
	lfs := &listingFS{}
	r := NewRootFS(t.TempDir(), lfs)
	f := r.Folder("INBOX")
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := map[string]mail.Flags{}
	for i, flags := range []mail.Flags{mail.NewFlags(), mail.NewFlags(`\Seen`), mail.NewFlags(`\Seen`, `\Flagged`)} {
		key := "k" + string(rune('a'+i))
		if _, err := f.Deliver(ctx, key, strings.NewReader("Subject: x\n\nbody\n"), flags, time.Time{}); err != nil {
			t.Fatal(err)
		}
		want[key] = flags
	}
	// A reader renamed kc's file (another flag) after the delivery.
	if err := f.SetFlags("kc", mail.NewFlags(`\Seen`, `\Answered`)); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		want["gone"+string(rune('a'+i%26))+string(rune('a'+i/26))] = mail.NewFlags()
	}
	lfs.lists.Store(0)
	got, err := f.FindAll(want)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got["ka"].Equal(mail.NewFlags()) || !got["kb"].Equal(mail.NewFlags(`\Seen`)) ||
		!got["kc"].Equal(mail.NewFlags(`\Seen`, `\Answered`)) {
		t.Errorf("FindAll = %v; want ka, kb (as delivered) and kc (\\Answered \\Seen)", got)
	}
	if n := lfs.lists.Load(); n > 4 {
		t.Errorf("%d directory listings for 53 keys, want at most 4", n)
	}
	// With every file under its name, nothing is listed.
	delete(want, "kc")
	for k := range want {
		if strings.HasPrefix(k, "gone") {
			delete(want, k)
		}
	}
	lfs.lists.Store(0)
	if got, err := f.FindAll(want); err != nil || len(got) != 2 {
		t.Fatalf("FindAll(ka, kb) = %v, %v", got, err)
	}
	if n := lfs.lists.Load(); n != 0 {
		t.Errorf("%d listings for files under their names, want 0", n)
	}
}
