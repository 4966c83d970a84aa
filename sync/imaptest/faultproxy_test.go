package imaptest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// target is a loopback server for the proxy tests: it echoes what it
// receives, or first sends greet when set, and counts what it received.
type target struct {
	addr  string
	mu    sync.Mutex
	got   []int // bytes received, per connection, in accept order
	greet []byte
}

func startTarget(t *testing.T, greet []byte) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{addr: ln.Addr().String(), greet: greet}
	var wg sync.WaitGroup
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.mu.Lock()
			i := len(tg.got)
			tg.got = append(tg.got, 0)
			conns = append(conns, c)
			tg.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if greet != nil {
					c.Write(greet)
				}
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					tg.mu.Lock()
					tg.got[i] += n
					tg.mu.Unlock()
					if greet == nil && n > 0 {
						c.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		tg.mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		tg.mu.Unlock()
		wg.Wait()
	})
	return tg
}

func (tg *target) received() []int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]int(nil), tg.got...)
}

func dialProxy(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Only keeps a broken proxy from hanging the test.
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

func TestProxyForwards(t *testing.T) {
	p := NewProxy(t, startTarget(t, nil).addr)
	c := dialProxy(t, p)
	data := pattern(200 << 10)
	go c.Write(data)
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Error("echo differs")
	}
	if p.Conns() != 1 {
		t.Errorf("Conns %d, want 1", p.Conns())
	}
}

func TestProxyCutToClient(t *testing.T) {
	greet := pattern(1000)
	p := NewProxy(t, startTarget(t, greet).addr)
	p.CutAfter(true, 300)
	got, err := io.ReadAll(dialProxy(t, p))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, greet[:300]) {
		t.Errorf("got %d bytes before the cut, want the first 300", len(got))
	}
	// The cut is spent: the next connection is whole.
	c := dialProxy(t, p)
	got = make([]byte, len(greet))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, greet) {
		t.Errorf("second connection: %v, %d bytes", err, len(got))
	}
	if p.Conns() != 2 {
		t.Errorf("Conns %d, want 2", p.Conns())
	}
}

func TestProxyCutBeforeAnything(t *testing.T) {
	p := NewProxy(t, startTarget(t, []byte("* OK hello\r\n")).addr)
	p.CutAfter(true, 0)
	got, err := io.ReadAll(dialProxy(t, p))
	if err != nil || len(got) != 0 {
		t.Errorf("read %q, %v; want nothing, then the end", got, err)
	}
}

func TestProxyCutToServer(t *testing.T) {
	tg := startTarget(t, []byte{})
	p := NewProxy(t, tg.addr)
	p.CutAfter(false, 300)
	c := dialProxy(t, p)
	c.Write(pattern(1000))
	// The connection ends from the proxy's side (with a reset if the
	// proxy had not read all that was sent).
	io.Copy(io.Discard, c)
	// The target's count is complete once it has seen the end too.
	for range 100 {
		if got := tg.received(); len(got) == 1 && got[0] == 300 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("target received %v bytes, want [300]", tg.received())
}

func TestProxyStall(t *testing.T) {
	p := NewProxy(t, startTarget(t, nil).addr)
	c := dialProxy(t, p)
	p.Stall()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 4)
	if n, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read during a stall: %q, %v; want nothing", buf[:n], err)
	}
	p.Heal()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Errorf("after Heal: %q, %v", buf, err)
	}
}

func TestProxyTrickle(t *testing.T) {
	p := NewProxy(t, startTarget(t, nil).addr)
	p.Trickle(100_000)
	c := dialProxy(t, p)
	data := pattern(20_000)
	go c.Write(data)
	var got []byte
	reads := 0
	buf := make([]byte, len(data))
	for len(got) < len(data) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
		reads++
	}
	if !bytes.Equal(got, data) {
		t.Error("trickled data differs")
	}
	// A twentieth of a second's worth at a time: 5,000 bytes.
	if reads < 4 {
		t.Errorf("%d bytes came in %d reads, want them in pieces", len(data), reads)
	}
}

func TestProxyStopsWithTest(t *testing.T) {
	tg := startTarget(t, nil)
	var p *Proxy
	var c net.Conn
	t.Run("inner", func(t *testing.T) {
		p = NewProxy(t, tg.addr)
		p.Stall()
		var err error
		if c, err = net.Dial("tcp", p.Addr); err != nil {
			t.Fatal(err)
		}
	})
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("a connection through a stopped proxy still reads")
	}
	if c2, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		c2.Close()
		t.Error("a stopped proxy still accepts connections")
	}
}

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalTB) Helper() {}

func TestProxyLoopbackOnly(t *testing.T) {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewProxy(f, "192.0.2.1:143")
	}()
	<-done
	if f.msg == "" {
		t.Error("NewProxy accepted a target outside loopback")
	}
}
