package sync

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestStampWait: once stampWait says a directory's modification time can
// be trusted (settleStamps waiting for it, within settleWait), the next
// change to the directory gets another one; a change just made cannot be
// trusted yet; whole-second times need two seconds.
func TestStampWait(t *testing.T) {
	dir := t.TempDir()
	mtime := func() time.Time {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	fresh := 0
	for i := range 50 {
		if err := os.WriteFile(filepath.Join(dir, "a"+strconv.Itoa(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		m1 := mtime()
		w := stampWait(m1)
		if w > 0 {
			fresh++
		}
		if w > settleWait {
			t.Fatalf("wait %v after a change, more than %v", w, settleWait)
		}
		if !settleStamps(context.Background(), []time.Time{m1}, settleWait) {
			t.Fatalf("not settled within %v", settleWait)
		}
		if w := stampWait(m1); w != 0 {
			t.Fatalf("still %v to wait after waiting", w)
		}
		if err := os.WriteFile(filepath.Join(dir, "b"+strconv.Itoa(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if m2 := mtime(); m2.Equal(m1) {
			t.Fatalf("a change after the wait kept the modification time %v", m1)
		}
	}
	if fresh == 0 {
		t.Errorf("no change was too recent to trust at once")
	}
	if w := stampWait(time.Now().Add(-time.Second)); w != 0 {
		t.Errorf("a second-old change: wait %v, want 0", w)
	}
	if w := stampWait(time.Now().Truncate(time.Second)); w < time.Second {
		t.Errorf("whole-second time of this second: wait %v, want more than 1s", w)
	}
}
