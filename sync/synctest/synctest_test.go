package synctest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/imaptest"
)

// TestBuffer: writes from several goroutines all land, and Seen fires
// once the text is there, whether it came before or after the call.
func TestBuffer(t *testing.T) {
	var b Buffer
	early := b.Seen("line 9\n")
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { b.Write([]byte("line " + string(rune('0'+i)) + "\n")) })
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 10 {
		t.Fatalf("%d lines, want 10: %q", n, b.String())
	}
	for _, ch := range []<-chan struct{}{early, b.Seen("line 3")} {
		select {
		case <-ch:
		case <-time.After(time.Second):
			t.Fatal("Seen did not fire for a text the buffer holds")
		}
	}
	select {
	case <-b.Seen("never written"):
		t.Fatal("Seen fired for a text the buffer does not hold")
	default:
	}
	b.Reset()
	if b.String() != "" {
		t.Fatalf("after Reset: %q", b.String())
	}
}

// TestRemoteOptions: the options log in to the test server, and the
// trace records the session without the password.
func TestRemoteOptions(t *testing.T) {
	srv := imaptest.StartMemory(t)
	var trace Buffer
	c, err := imapremote.Dial(t.Context(), RemoteOptions(srv, &trace))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !strings.Contains(trace.String(), "C: ") || strings.Contains(trace.String(), srv.Password) {
		t.Fatalf("trace %q: want the session, without the password", trace.String())
	}
}
