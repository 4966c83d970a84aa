package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// latencyProxy forwards TCP connections to a server, delaying every chunk
// by delay in each direction, as a network with a round-trip time of
// 2×delay and unlimited bandwidth would: chunks queue up and are delivered
// delay after they were read, so a pipelining client pays one round trip
// for a whole pipeline and a client that waits for each reply pays one per
// command.
//
// It also counts, per connection, the client's bursts: data from the
// client after data from the server (or after the start) opens a new
// burst. With the delay, a client that sends commands back to back, without
// waiting, fills one burst; each burst is one round trip the client waited
// for. That count works for any client, which is what the mbsync column
// needs (sync/imaptest's fault proxy sleeps per chunk, which would make
// pipelined data pay the delay once per chunk, so the bench has its own).
//
// With a rate, the proxy is also a link of that many bytes per second in
// each direction, shared by all its connections: each direction is one
// first-in first-out queue that sends a chunk only once the chunks read
// before it, on any connection, have gone out at the rate (a token bucket
// without burst), and the delay runs from there.
type latencyProxy struct {
	ln     net.Listener
	target string
	delay  time.Duration
	// up and down are the two directions' queues; nil without a rate.
	up, down *bottleneck

	mu    sync.Mutex
	conns []*connStats
	wg    sync.WaitGroup
}

// connStats is what the proxy saw on one connection.
type connStats struct {
	mu         sync.Mutex
	lastClient bool    // the last data seen came from the client
	up, down   int64   // bytes from the client, from the server
	bursts     []burst // client bursts in order
	cmd        cmdParser
}

// burst is one run of client data the server had not answered in between:
// the tagged commands that started in it.
type burst struct {
	commands []string // "SELECT", "UID FETCH", ...
	at       time.Time
}

func startLatencyProxy(target string, delay time.Duration) (*latencyProxy, error) {
	return startLink(target, delay, 0)
}

// startLink starts a proxy that is also a link of rate bytes per second in
// each direction (0: unlimited).
func startLink(target string, delay time.Duration, rate float64) (*latencyProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &latencyProxy{ln: ln, target: target, delay: delay}
	if rate > 0 {
		p.up, p.down = &bottleneck{rate: rate}, &bottleneck{rate: rate}
	}
	go p.accept()
	return p, nil
}

// bottleneck is one direction of a link with a limited rate.
type bottleneck struct {
	rate float64 // bytes per second
	mu   sync.Mutex
	free time.Time // when the link has sent everything queued so far
}

// sent queues n bytes read at now and returns when their last byte has
// gone out.
func (b *bottleneck) sent(now time.Time, n int) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free = later(b.free, now).Add(time.Duration(float64(n) / b.rate * float64(time.Second)))
	return b.free
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (p *latencyProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *latencyProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		st := &connStats{}
		p.mu.Lock()
		p.conns = append(p.conns, st)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var both sync.WaitGroup
			both.Add(2)
			go p.pipe(client, server, st, true, &both)
			go p.pipe(server, client, st, false, &both)
			both.Wait()
			client.Close()
			server.Close()
		}()
	}
}

// chunk is data read at one moment, due at the other end delay later.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst with the delay. When src ends, what is queued is
// delivered and dst's write side is closed, so a LOGOUT's reply and the
// server's close still reach the client.
func (p *latencyProxy) pipe(src, dst net.Conn, st *connStats, fromClient bool, wg *sync.WaitGroup) {
	defer wg.Done()
	queue := make(chan chunk, 1<<14)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range queue {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				src.Close()
				for range queue {
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			data := bytes.Clone(buf[:n])
			st.saw(fromClient, data)
			out := time.Now()
			if link := map[bool]*bottleneck{true: p.up, false: p.down}[fromClient]; link != nil {
				out = link.sent(out, n)
			}
			queue <- chunk{data: data, due: out.Add(p.delay)}
		}
		if err != nil {
			break
		}
	}
	close(queue)
	<-done
}

func (st *connStats) saw(fromClient bool, data []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !fromClient {
		st.down += int64(len(data))
		st.lastClient = false
		return
	}
	st.up += int64(len(data))
	if !st.lastClient || len(st.bursts) == 0 {
		st.bursts = append(st.bursts, burst{at: time.Now()})
		st.lastClient = true
	}
	cur := &st.bursts[len(st.bursts)-1]
	st.cmd.feed(data, func(name string) { cur.commands = append(cur.commands, name) })
}

// take returns the statistics of the connections made since the last
// call, once they have all closed (or ctx ends), and forgets them.
func (p *latencyProxy) take(ctx context.Context) []*connStats {
	idle := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.conns
	p.conns = nil
	return out
}

func (p *latencyProxy) close() { p.ln.Close() }

// cmdParser finds the tagged commands in the client's byte stream: a line
// that starts a command (not literal data, not the rest of a command after
// a literal) is "tag NAME ...", NAME an IMAP command in capitals as both
// tools send them; a line ending in {N}, {N+} or ~{N} announces N literal
// bytes (RFC 9051 §4.3, RFC 7888, RFC 3516), after which the same command
// goes on.
type cmdParser struct {
	// noLiterals makes the parser take every line for a possible command
	// start: for a stream that interleaves connections, where one
	// connection's literal would swallow the others' commands. Then only
	// the list of command names keeps message text from counting.
	noLiterals bool
	literal    int64  // literal bytes still to skip
	continued  bool   // the next line continues a command
	head       []byte // the current line's first bytes
	tail       []byte // its last bytes
}

// imapCommands are the command names counted (RFC 9051 §6 and the
// extensions the tools use).
const imapCommands = `CAPABILITY|NOOP|LOGOUT|STARTTLS|AUTHENTICATE|LOGIN|ENABLE|SELECT|EXAMINE|CREATE|DELETE|RENAME|` +
	`SUBSCRIBE|UNSUBSCRIBE|LIST|LSUB|NAMESPACE|STATUS|APPEND|IDLE|CHECK|CLOSE|UNSELECT|EXPUNGE|SEARCH|` +
	`FETCH|STORE|COPY|MOVE|ID|COMPRESS|GETQUOTAROOT|GETQUOTA|SORT|THREAD|ESEARCH|NOTIFY|GETMETADATA|SETMETADATA`

var (
	commandStart = regexp.MustCompile(`^[A-Za-z0-9.]+ (UID )?(` + imapCommands + `)( |\r?$)`)
	literalEnd   = regexp.MustCompile(`~?\{([0-9]+)\+?\}\r?$`)
)

func (c *cmdParser) feed(data []byte, command func(string)) {
	for len(data) > 0 {
		if c.literal > 0 {
			k := min(int64(len(data)), c.literal)
			c.literal -= k
			data = data[k:]
			continue
		}
		i := bytes.IndexByte(data, '\n')
		part := data
		if i >= 0 {
			part = data[:i]
		}
		if len(c.head) < 200 {
			c.head = append(c.head, part[:min(len(part), 200-len(c.head))]...)
		}
		c.tail = append(c.tail, part...)
		if len(c.tail) > 40 {
			c.tail = c.tail[len(c.tail)-40:]
		}
		if i < 0 {
			return
		}
		data = data[i+1:]
		if !c.continued {
			if m := commandStart.FindSubmatch(c.head); m != nil {
				name := string(m[1]) + string(m[2])
				command(name)
			}
		}
		c.continued = false
		if m := literalEnd.FindSubmatch(c.tail); m != nil && !c.noLiterals {
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			c.literal = n
			c.continued = true
		}
		c.head, c.tail = c.head[:0], c.tail[:0]
	}
}

// roundTrips counts the bursts after authentication of each connection: a
// burst that carries LOGIN, AUTHENTICATE or STARTTLS, and every burst
// before it, belong to the login. Dovecot sessions here are PREAUTH, so
// for both tools every burst counts, but a last one of LOGOUT alone.
// Commands are counted as before, LOGOUT included.
func roundTrips(conns []*connStats) *trips {
	t := &trips{ByCommand: map[string]int{}, Connections: len(conns)}
	var start time.Time
	for _, st := range conns {
		st.mu.Lock()
		if len(st.bursts) > 0 && (start.IsZero() || st.bursts[0].at.Before(start)) {
			start = st.bursts[0].at
		}
		st.mu.Unlock()
	}
	for _, st := range conns {
		st.mu.Lock()
		first := 0
		for i, b := range st.bursts {
			for _, c := range b.commands {
				if c == "LOGIN" || c == "AUTHENTICATE" || c == "STARTTLS" {
					first = i + 1
				}
			}
		}
		t.BytesDown += st.down
		t.BytesUp += st.up
		last := len(st.bursts)
		if last > first && slices.Equal(st.bursts[last-1].commands, []string{"LOGOUT"}) {
			// A LOGOUT the client does not wait for costs no round
			// trip; the proxy cannot tell whether it was waited for, so
			// a last burst of LOGOUT alone is not counted (for both
			// tools alike).
			last--
		}
		n := last - first
		t.RoundTrips += n
		t.Longest = max(t.Longest, n)
		var seq []string
		for _, b := range st.bursts[first:] {
			for _, c := range b.commands {
				t.ByCommand[c]++
				t.Commands++
			}
			seq = append(seq, fmt.Sprintf("%dms %s", b.at.Sub(start).Milliseconds(), strings.Join(b.commands, ",")))
		}
		t.Bursts = append(t.Bursts, seq)
		st.mu.Unlock()
	}
	return t
}
