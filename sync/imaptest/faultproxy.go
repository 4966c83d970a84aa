package imaptest

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// maxProxyConns bounds the connections a Proxy carries at a time; more are
// closed as soon as they are accepted.
const maxProxyConns = 32

// proxyBuf is the most bytes a Proxy reads from one side before passing
// them on: what a stall holds back, beyond the kernel's buffers.
const proxyBuf = 32 << 10

// Proxy is a TCP proxy on loopback between the code under test and a
// server, which injects network faults: a connection cut after a given
// number of bytes, a stall, a slow link. A fault applies to the
// connections open when it is set and to those opened later, until Heal.
// Create it with NewProxy; it stops in t.Cleanup.
type Proxy struct {
	Addr string // "127.0.0.1:PORT"
	Host string // "127.0.0.1"
	Port int

	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu       sync.Mutex
	changed  *sync.Cond // broadcast when a fault or a connection's state changes
	stopped  bool
	stalled  bool
	rate     int      // bytes per second in each direction of each connection; 0: unlimited
	cut      [2]int64 // per direction (toServer, toClient): bytes left before the cut; -1: no cut
	conns    map[*proxyConn]struct{}
	accepted int
}

// Directions of Proxy.cut.
const (
	toServer = 0
	toClient = 1
)

type proxyConn struct {
	client, server net.Conn
	closed         bool // under Proxy.mu
}

// NewProxy starts a proxy to target, a loopback "host:port" (such as
// Server.Addr), listening on 127.0.0.1.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatalf("imaptest: proxy target %q: %v", target, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("imaptest: proxy target %q is not a loopback address", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("imaptest: proxy listen: %v", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	p := &Proxy{
		Addr:   addr.String(),
		Host:   addr.IP.String(),
		Port:   addr.Port,
		target: target,
		ln:     ln,
		cut:    [2]int64{-1, -1},
		conns:  map[*proxyConn]struct{}{},
	}
	p.changed = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.stop)
	return p
}

// CutAfter cuts a connection: the next n bytes going toClient (server to
// client) or to the server pass, on whichever connections carry them;
// the connection that would carry one more is closed instead, on both
// sides, and the cut is spent. With n = 0, the first connection to carry
// a byte that way is closed before it passes: CutAfter(true, 0) before a
// client connects makes it see the connection end before the greeting.
func (p *Proxy) CutAfter(toClient bool, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut[dirIndex(toClient)] = max(n, 0)
	p.changed.Broadcast()
}

// Stall stops forwarding in both directions and keeps the connections
// open: the peers see silence. New connections are accepted and stalled.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
	p.changed.Broadcast()
}

// Trickle limits each direction of each connection to bytesPerSecond
// (0: unlimited).
func (p *Proxy) Trickle(bytesPerSecond int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = max(bytesPerSecond, 0)
	p.changed.Broadcast()
}

// Heal removes every fault: a cut not yet made, a stall, a trickle.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled, p.rate, p.cut = false, 0, [2]int64{-1, -1}
	p.changed.Broadcast()
}

// Conns is the number of connections accepted so far.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func dirIndex(client bool) int {
	if client {
		return toClient
	}
	return toServer
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepted++
		full := len(p.conns) >= maxProxyConns
		p.mu.Unlock()
		if full {
			client.Close()
			continue
		}
		server, err := net.DialTimeout("tcp", p.target, 10*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		c := &proxyConn{client: client, server: server}
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.forward(c, toServer)
		go p.forward(c, toClient)
	}
}

// forward copies one direction of c through the faults until either side
// ends, then closes both.
func (p *Proxy) forward(c *proxyConn, dir int) {
	defer p.wg.Done()
	defer p.closeConn(c)
	src, dst := c.client, c.server
	if dir == toClient {
		src, dst = c.server, c.client
	}
	buf := make([]byte, proxyBuf)
	for {
		n, err := src.Read(buf)
		for b := buf[:n]; len(b) > 0; {
			k, ok := p.admit(c, dir, len(b))
			if !ok {
				return
			}
			if _, err := dst.Write(b[:k]); err != nil {
				return
			}
			b = b[k:]
		}
		if err != nil {
			return
		}
	}
}

// admit waits until up to want bytes may pass in direction dir of c and
// returns how many; false when c is to be closed (cut, or shut down).
func (p *Proxy) admit(c *proxyConn, dir, want int) (int, bool) {
	p.mu.Lock()
	for p.stalled && !c.closed && !p.stopped {
		p.changed.Wait()
	}
	if c.closed || p.stopped {
		p.mu.Unlock()
		return 0, false
	}
	k := want
	if left := p.cut[dir]; left >= 0 {
		if left == 0 {
			p.cut[dir] = -1
			p.mu.Unlock()
			return 0, false
		}
		k = int(min(int64(k), left))
		p.cut[dir] -= int64(k)
	}
	rate := p.rate
	p.mu.Unlock()
	if rate > 0 {
		// Pass at most a twentieth of a second's worth, then wait that
		// long: bytes keep flowing, slowly.
		k = min(k, max(rate/20, 1))
		if !p.sleep(c, time.Duration(k)*time.Second/time.Duration(rate)) {
			return 0, false
		}
	}
	return k, true
}

// sleep waits for d (at most a twentieth of a second, see admit) and
// reports whether c is still open. A plain sleep: a condition variable
// woken by a timer can miss the wake-up that comes before it waits.
func (p *Proxy) sleep(c *proxyConn, d time.Duration) bool {
	time.Sleep(d)
	p.mu.Lock()
	defer p.mu.Unlock()
	return !c.closed && !p.stopped
}

func (p *Proxy) closeConn(c *proxyConn) {
	p.mu.Lock()
	already := c.closed
	c.closed = true
	delete(p.conns, c)
	p.changed.Broadcast()
	p.mu.Unlock()
	if !already {
		c.client.Close()
		c.server.Close()
	}
}

// stop closes the listener and every connection and waits for the
// proxy's goroutines.
func (p *Proxy) stop() {
	p.mu.Lock()
	p.stopped = true
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.changed.Broadcast()
	p.mu.Unlock()
	p.ln.Close()
	for _, c := range conns {
		p.closeConn(c)
	}
	p.wg.Wait()
}

// String describes the proxy for test logs.
func (p *Proxy) String() string {
	return "proxy " + p.Addr + " to " + p.target + " (" + strconv.Itoa(p.Conns()) + " connections)"
}
