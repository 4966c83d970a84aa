package imaptest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Scripted is a fake IMAP server whose answers come from a script, for
// tests of how the code under test copes with a broken or hostile server:
// malformed responses, literals cut short, mailbox names no real server
// hands out, messages larger than memory. It frames what the client sends
// (command lines and their literals, RFC 9051 §4.3) and nothing more: what
// a command means and what is answered is the script's business.
//
// Every connection is greeted with a PREAUTH response carrying the
// capability list (RFC 9051 §7.1.4), so the client goes straight to the
// authenticated state, and is then served one command at a time on its own
// goroutine.
//
// A Scripted server is a Server for the purpose of reaching it (Host, Port
// and Addr are set); its seeding and inspection methods would talk to the
// script, so tests do not call them.
type Scripted struct {
	Addr string // "127.0.0.1:PORT"
	Host string // "127.0.0.1"
	Port int

	t    testing.TB
	opts ScriptOptions
	ln   net.Listener
	wg   sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	accepted int
	commands []string
	dropped  int // commands not kept in commands
	closing  bool
}

// ScriptOptions configures StartScripted.
type ScriptOptions struct {
	// Capabilities are advertised in the greeting and in reply to
	// CAPABILITY; nil means just "IMAP4rev1".
	Capabilities []string
	// Greeting, when set, replaces the whole greeting line (without its
	// CRLF), e.g. "* BYE go away".
	Greeting string
	// Script answers each command. A script that writes nothing for a
	// command leaves it to the defaults (see StartScripted). It is called
	// on the connection's goroutine, one command at a time per
	// connection; connections run concurrently.
	Script Script
}

// Script answers one command. tag is the client's tag; command is the
// command name in upper case, with "UID " kept in front of the command it
// modifies ("UID FETCH"); args is the rest of the command as sent, each
// literal included as "{N}\r\n" followed by its bytes (ScriptArgs splits
// it). w writes the answer.
type Script func(tag, command, args string, w *ScriptWriter)

// Canned returns a script that answers each command named in responses
// (by its name as a Script receives it: "LIST", "UID FETCH") by writing
// the value as it is, then a tagged OK. Other commands get the defaults.
func Canned(responses map[string]string) Script {
	return func(tag, command, args string, w *ScriptWriter) {
		if r, ok := responses[command]; ok {
			w.Raw(r)
			w.OK(command + " completed")
		}
	}
}

// Limits that keep a misbehaving client from making the server use
// unbounded memory or goroutines: a command line (literals excluded)
// longer than maxScriptLine, a command whose literals add up to more than
// maxScriptLiterals, or a connection beyond maxScriptConns is dropped.
const (
	maxScriptLine     = 1 << 20
	maxScriptLiterals = 64 << 20
	maxScriptConns    = 64
	maxScriptLog      = 10000 // commands kept for Commands
	maxScriptLogLine  = 512   // bytes of each command kept
)

// StartScripted starts a scripted server on 127.0.0.1:0; it stops in
// t.Cleanup, closing every connection (a script blocked writing to one
// then fails its writes and returns).
//
// Commands the script does not answer get the defaults: CAPABILITY lists
// the capabilities; LOGOUT answers BYE and OK and closes the connection;
// NOOP, CHECK, UNSELECT, CLOSE and ENABLE answer OK (ENABLE enables
// nothing); anything else answers BAD.
func StartScripted(t testing.TB, opts ScriptOptions) *Scripted {
	t.Helper()
	if opts.Capabilities == nil {
		opts.Capabilities = []string{"IMAP4rev1"}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("imaptest: listen: %v", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	s := &Scripted{
		Addr:  addr.String(),
		Host:  addr.IP.String(),
		Port:  addr.Port,
		t:     t,
		opts:  opts,
		ln:    ln,
		conns: make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.stop)
	return s
}

// Server returns a Server describing how to reach s, for code that takes
// one (test environments built for the real servers).
func (s *Scripted) Server() *Server {
	return &Server{Kind: "scripted", Addr: s.Addr, Host: s.Host, Port: s.Port, t: s.t}
}

// Connections is how many connections the server has accepted so far.
func (s *Scripted) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Commands returns the commands received so far on all connections, in
// the order they were read, each as "COMMAND args" (without the tag),
// cut at 512 bytes. Only the first 10000 are kept.
func (s *Scripted) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *Scripted) stop() {
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		s.t.Errorf("imaptest: scripted server: a connection goroutine did not finish (a script that blocks on something other than the connection?)")
	}
}

func (s *Scripted) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closing || len(s.conns) >= maxScriptConns {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.accepted++
		n := s.accepted
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c, n)
	}
}

func (s *Scripted) serve(c net.Conn, n int) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	defer func() {
		if v := recover(); v != nil {
			s.t.Errorf("imaptest: script panicked on connection %d: %v\n%s", n, v, debug.Stack())
		}
	}()
	w := &ScriptWriter{Conn: n, c: c, bw: bufio.NewWriter(c)}
	greeting := s.opts.Greeting
	if greeting == "" {
		greeting = "* PREAUTH [CAPABILITY " + strings.Join(s.opts.Capabilities, " ") + "] scripted server ready"
	}
	w.Line("%s", greeting)
	if w.flush() != nil {
		return
	}
	br := bufio.NewReaderSize(c, 64<<10)
	for !w.closed {
		tag, command, args, err := readCommand(br, w)
		if err != nil {
			return
		}
		s.log(command + " " + args)
		w.Tag, w.wrote = tag, false
		if s.opts.Script != nil {
			s.opts.Script(tag, command, args, w)
		}
		if !w.wrote && !w.closed {
			s.defaultAnswer(command, w)
		}
		if w.flush() != nil {
			return
		}
	}
}

func (s *Scripted) log(cmd string) {
	if len(cmd) > maxScriptLogLine {
		cmd = cmd[:maxScriptLogLine]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.commands) >= maxScriptLog {
		s.dropped++
		return
	}
	s.commands = append(s.commands, strings.TrimSpace(cmd))
}

func (s *Scripted) defaultAnswer(command string, w *ScriptWriter) {
	switch command {
	case "CAPABILITY":
		w.Line("* CAPABILITY %s", strings.Join(s.opts.Capabilities, " "))
		w.OK("CAPABILITY completed")
	case "LOGOUT":
		w.Line("* BYE logging out")
		w.OK("LOGOUT completed")
		w.Close()
	case "NOOP", "CHECK", "UNSELECT", "CLOSE", "ENABLE":
		w.OK(command + " completed")
	default:
		w.BAD("unknown command")
	}
}

// readCommand reads one command: its line and the literals it announces,
// answering "+" to each synchronizing literal (RFC 9051 §7.5; "{N+}" of
// RFC 7888 waits for none).
func readCommand(br *bufio.Reader, w *ScriptWriter) (tag, command, args string, err error) {
	var b strings.Builder
	literals := int64(0)
	for {
		line, err := readLine(br)
		if err != nil {
			return "", "", "", err
		}
		b.WriteString(line)
		size, nonSync, ok := literalAtEnd(line)
		if !ok {
			break
		}
		if literals += size; literals > maxScriptLiterals {
			return "", "", "", fmt.Errorf("command literals over %d bytes", maxScriptLiterals)
		}
		if !nonSync {
			w.Raw("+ go ahead\r\n")
			if err := w.flush(); err != nil {
				return "", "", "", err
			}
		}
		b.WriteString("\r\n")
		if _, err := io.CopyN(&b, br, size); err != nil {
			return "", "", "", err
		}
	}
	text := b.String()
	tag, rest, _ := strings.Cut(text, " ")
	command, args, _ = strings.Cut(rest, " ")
	command = strings.ToUpper(command)
	if command == "UID" {
		var sub string
		sub, args, _ = strings.Cut(args, " ")
		command += " " + strings.ToUpper(sub)
	}
	return tag, command, args, nil
}

// readLine reads up to an LF and returns the line without its line end.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxScriptLine {
			return "", fmt.Errorf("command line over %d bytes", maxScriptLine)
		}
		switch {
		case err == nil:
			return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return "", err
		}
	}
}

// literalAtEnd reports whether line ends with "{N}" or "{N+}".
func literalAtEnd(line string) (size int64, nonSync, ok bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false, false
	}
	open := strings.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false, false
	}
	num := line[open+1 : len(line)-1]
	if nonSync = strings.HasSuffix(num, "+"); nonSync {
		num = num[:len(num)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, false, false
	}
	return n, nonSync, true
}

// ScriptWriter writes a script's answer to one command. Its methods write
// exactly what they are given, well-formed or not; the first write error
// (the client hung up) is kept and makes later writes do nothing.
type ScriptWriter struct {
	// Tag is the tag of the command being answered.
	Tag string
	// Conn numbers the connection: 1 for the first one accepted.
	Conn int

	c      net.Conn
	bw     *bufio.Writer
	err    error
	wrote  bool
	closed bool
}

// Raw writes s as it is.
func (w *ScriptWriter) Raw(s string) {
	w.wrote = true
	if w.err == nil && !w.closed {
		_, w.err = w.bw.WriteString(s)
	}
}

// Line writes a formatted line and CRLF.
func (w *ScriptWriter) Line(format string, args ...any) {
	w.Raw(fmt.Sprintf(format, args...) + "\r\n")
}

// OK, NO and BAD write the tagged status response to the command.
func (w *ScriptWriter) OK(text string)  { w.Line("%s OK %s", w.Tag, text) }
func (w *ScriptWriter) NO(text string)  { w.Line("%s NO %s", w.Tag, text) }
func (w *ScriptWriter) BAD(text string) { w.Line("%s BAD %s", w.Tag, text) }

// Literal writes "{N}", CRLF and the N bytes of body. What precedes and
// follows it on the response line is the caller's to write.
func (w *ScriptWriter) Literal(body []byte) {
	w.Raw("{" + strconv.Itoa(len(body)) + "}\r\n")
	w.Raw(string(body))
}

// LiteralFrom writes "{size}", CRLF and size bytes read from r as they
// are read, for literals too large to hold. If r ends early the literal
// is cut short, as CutLiteral does on purpose.
func (w *ScriptWriter) LiteralFrom(size int64, r io.Reader) {
	w.Raw("{" + strconv.FormatInt(size, 10) + "}\r\n")
	if w.err == nil && !w.closed {
		_, w.err = io.CopyN(w.bw, r, size)
	}
}

// CutLiteral announces a literal of announced bytes, sends only sent
// (fewer), and closes the connection: a server that died mid-message.
func (w *ScriptWriter) CutLiteral(announced int64, sent []byte) {
	w.Raw("{" + strconv.FormatInt(announced, 10) + "}\r\n")
	w.Raw(string(sent))
	w.Close()
}

// Close sends what was written and closes the connection; nothing more is
// read from it or written to it.
func (w *ScriptWriter) Close() {
	w.wrote = true
	if w.closed {
		return
	}
	w.flush()
	w.closed = true
	w.c.Close()
}

// Err is the first write error, nil while the client is reading.
func (w *ScriptWriter) Err() error { return w.err }

func (w *ScriptWriter) flush() error {
	if w.err == nil && !w.closed {
		w.err = w.bw.Flush()
	}
	return w.err
}

// ScriptArgs splits a command's arguments into its top-level values: an
// atom as it is, a quoted string or a literal as its content, and a
// parenthesized list as its text with the parentheses. Brackets keep their
// content together ("BODY.PEEK[HEADER.FIELDS (A B)]" is one value), as in
// fetch attributes (RFC 9051 §6.4.5). It fails on an unterminated value.
func ScriptArgs(args string) ([]string, error) {
	var out []string
	for i := 0; i < len(args); {
		switch c := args[i]; {
		case c == ' ':
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(args) && args[j] != '"'; j++ {
				if args[j] == '\\' && j+1 < len(args) {
					j++
				}
				b.WriteByte(args[j])
			}
			if j == len(args) {
				return nil, fmt.Errorf("unterminated quoted string at %d", i)
			}
			out = append(out, b.String())
			i = j + 1
		case c == '{':
			end := strings.Index(args[i:], "}\r\n")
			if end < 0 {
				return nil, fmt.Errorf("malformed literal at %d", i)
			}
			size, _, ok := literalAtEnd(args[i : i+end+1])
			start := i + end + 3
			if !ok || int64(len(args)-start) < size {
				return nil, fmt.Errorf("malformed literal at %d", i)
			}
			out = append(out, args[start:start+int(size)])
			i = start + int(size)
		default:
			j, depth := i, 0
		value:
			for ; j < len(args); j++ {
				switch args[j] {
				case '(', '[':
					depth++
				case ')', ']':
					if depth--; depth < 0 {
						break value
					}
				case ' ':
					if depth == 0 {
						break value
					}
				}
			}
			if depth != 0 {
				return nil, fmt.Errorf("unbalanced parentheses or brackets at %d", i)
			}
			out = append(out, args[i:j])
			i = j
		}
	}
	return out, nil
}

// Quote returns s as an IMAP quoted string (RFC 9051 §4.3), for scripts
// that write mailbox names; it escapes only '"' and '\'.
func Quote(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
