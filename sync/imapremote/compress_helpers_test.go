package imapremote

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// wireTap is a TCP relay on loopback that keeps every byte it carries,
// per direction, so a test can see what crossed the network below TLS
// and compression. imaptest.Proxy injects faults but keeps no bytes.
type wireTap struct {
	Host string
	Port int

	mu       sync.Mutex
	toServer bytes.Buffer
	toClient bytes.Buffer
}

// newWireTap relays connections to target ("127.0.0.1:port") until the
// test ends.
func newWireTap(t *testing.T, target string) *wireTap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	w := &wireTap{Host: addr.IP.String(), Port: addr.Port}
	var wg sync.WaitGroup
	var cmu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			cmu.Lock()
			conns = append(conns, client, server)
			cmu.Unlock()
			wg.Add(2)
			go w.copy(&wg, server, client, &w.toServer)
			go w.copy(&wg, client, server, &w.toClient)
		}
	}()
	return w
}

func (w *wireTap) copy(wg *sync.WaitGroup, dst, src net.Conn, keep *bytes.Buffer) {
	defer wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			w.mu.Lock()
			keep.Write(buf[:n])
			w.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// bytes returns what went to the server and what came back so far.
func (w *wireTap) bytes() (toServer, toClient []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.toServer.Bytes()), bytes.Clone(w.toClient.Bytes())
}
