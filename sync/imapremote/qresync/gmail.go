package qresync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	gosync "sync"
	"unicode/utf16"
)

// Gmail's IMAP extensions (X-GM-EXT-1,
// https://developers.google.com/gmail/imap/imap-extensions) add FETCH items
// go-imap cannot ask for and fails a whole FETCH over (X-GM-MSGID,
// X-GM-LABELS). GmailFetch asks for them in a command of its own, written
// between two of go-imap's, and takes its responses out of what go-imap
// reads, as Enable does with its reply.

// maxGmailLine bounds one FETCH response of a GmailFetch, literals
// included: a label list of a megabyte is not a label list.
const maxGmailLine = 1 << 20

// GmailMessage is one message's answer to a GmailFetch.
type GmailMessage struct {
	UID    uint32
	MsgID  uint64 // X-GM-MSGID; 0 when the server sent none
	ModSeq uint64 // 0 when not asked or not sent
	// Labels are the X-GM-LABELS as sent, decoded: quoted strings
	// unquoted, modified UTF-7 (RFC 3501 §5.1.3) decoded where it is
	// valid, system labels ("\Inbox", atom or quoted) with their
	// backslash. HasLabels tells an empty list from none sent.
	Labels    []string
	HasLabels bool
	Flags     []string // FLAGS, when asked
	HasFlags  bool
}

// GmailFetch says what a GmailFetch asks for.
type GmailFetch struct {
	// Set is the UID set, "1:*" or "4,7:9".
	Set string
	// Labels adds X-GM-LABELS, Flags adds FLAGS, ModSeq adds MODSEQ.
	Labels, Flags, ModSeq bool
	// ChangedSince, if not 0, asks only for messages whose MODSEQ is
	// higher (RFC 7162 §3.1.4), and for their MODSEQ.
	ChangedSince uint64
}

func (f GmailFetch) command(tag string) (string, error) {
	if f.Set == "" || !validSet(f.Set) {
		return "", fmt.Errorf("gmail fetch: bad UID set %q", f.Set)
	}
	items := "UID X-GM-MSGID"
	if f.Labels {
		items += " X-GM-LABELS"
	}
	if f.Flags {
		items += " FLAGS"
	}
	if f.ModSeq && f.ChangedSince == 0 {
		items += " MODSEQ"
	}
	cmd := tag + " UID FETCH " + f.Set + " (" + items
	if f.ChangedSince > 0 {
		cmd += " MODSEQ) (CHANGEDSINCE " + strconv.FormatUint(f.ChangedSince, 10) + ")"
	} else {
		cmd += ")"
	}
	return cmd + "\r\n", nil
}

// validSet reports whether s is a sequence-set of numbers, ":" and ","
// and "*": nothing that could end the command early.
func validSet(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= '0' && ch <= '9' || ch == ':' || ch == ',' || ch == '*') {
			return false
		}
	}
	return true
}

// pendingGmail is a GmailFetch whose tagged reply has not been read yet.
type pendingGmail struct {
	tag  string
	msgs []GmailMessage
	err  error      // a malformed response of its own
	done chan error // receives the outcome once; buffered
}

// StartGmailFetch writes the FETCH of f with a tag of its own and returns
// without waiting; wait returns the messages of its FETCH responses, in
// the order read. Commands go-imap writes meanwhile travel with it. Only
// FETCH responses carrying an X-GM- item are taken as its answer; any
// other (a flag change another session made, go-imap's own FETCH) passes
// on to go-imap. Call it only where the server advertises X-GM-EXT-1,
// with a mailbox selected.
func (c *Conn) StartGmailFetch(ctx context.Context, f GmailFetch) (wait func(context.Context) ([]GmailMessage, error), err error) {
	return c.startGmail(ctx, f.command)
}

// GmailStore adds labels to messages or removes them (STORE +X-GM-LABELS,
// -X-GM-LABELS).
type GmailStore struct {
	Set    string // UIDs
	Remove bool   // remove the labels instead of adding them
	// Labels as X-GM-LABELS spells them, decoded: system labels with
	// their backslash ("\Inbox"), others in UTF-8 ("Entwürfe",
	// "Projects/Alpha"), sent in modified UTF-7 (RFC 3501 §5.1.3).
	Labels []string
}

func (g GmailStore) command(tag string) (string, error) {
	if g.Set == "" || !validSet(g.Set) {
		return "", fmt.Errorf("gmail store: bad UID set %q", g.Set)
	}
	if len(g.Labels) == 0 {
		return "", errors.New("gmail store: no labels")
	}
	op := "+"
	if g.Remove {
		op = "-"
	}
	var b strings.Builder
	b.WriteString(tag + " UID STORE " + g.Set + " " + op + "X-GM-LABELS (")
	for i, l := range g.Labels {
		if i > 0 {
			b.WriteByte(' ')
		}
		if err := writeLabel(&b, l); err != nil {
			return "", err
		}
	}
	b.WriteString(")\r\n")
	return b.String(), nil
}

// writeLabel writes a label as a STORE X-GM-LABELS argument: a system
// label as an atom, any other as a quoted string in modified UTF-7.
func writeLabel(b *strings.Builder, l string) error {
	if l == "" || strings.ContainsAny(l, "\r\n\x00") {
		return fmt.Errorf("gmail store: label %q cannot be sent", l)
	}
	if isSystemLabel(l) {
		b.WriteString(l)
		return nil
	}
	b.WriteByte('"')
	for _, ch := range encodeMUTF7(l) {
		if ch == '"' || ch == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(ch)
	}
	b.WriteByte('"')
	return nil
}

// isSystemLabel: "\Inbox", "\Important" and the like, atoms of letters.
func isSystemLabel(l string) bool {
	if len(l) < 2 || l[0] != '\\' {
		return false
	}
	for _, ch := range l[1:] {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z') {
			return false
		}
	}
	return true
}

// StartGmailStore writes the STORE of g beside go-imap's commands, as
// StartGmailFetch does; wait returns the labels the server reports
// afterwards (its FETCH responses), which may leave out messages.
func (c *Conn) StartGmailStore(ctx context.Context, g GmailStore) (wait func(context.Context) ([]GmailMessage, error), err error) {
	return c.startGmail(ctx, g.command)
}

// StoreGmail is StartGmailStore and its wait.
func (c *Conn) StoreGmail(ctx context.Context, g GmailStore) ([]GmailMessage, error) {
	wait, err := c.StartGmailStore(ctx, g)
	if err != nil {
		return nil, err
	}
	return wait(ctx)
}

func (c *Conn) startGmail(ctx context.Context, build func(tag string) (string, error)) (wait func(context.Context) ([]GmailMessage, error), err error) {
	c.wmu.Lock()
	c.mu.Lock()
	switch {
	case c.readErr != nil:
		err := c.readErr
		c.mu.Unlock()
		c.wmu.Unlock()
		return nil, fmt.Errorf("gmail fetch: %w", err)
	case c.gmail != nil || !c.w.atBoundary():
		c.mu.Unlock()
		c.wmu.Unlock()
		return nil, fmt.Errorf("gmail fetch: %w", ErrBusy)
	}
	c.tags++
	pg := &pendingGmail{tag: "G" + strconv.FormatUint(c.tags, 10), done: make(chan error, 1)}
	cmd, err := build(pg.tag)
	if err != nil {
		c.mu.Unlock()
		c.wmu.Unlock()
		return nil, err
	}
	c.gmail = pg
	c.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { c.Close() })
	_, err = io.WriteString(c.Conn, cmd)
	stop()
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		if c.gmail == pg {
			c.gmail = nil
		}
		c.mu.Unlock()
		return nil, fmt.Errorf("gmail fetch: %w", ctxErr(ctx, err))
	}
	var once gosync.Once
	var result error
	return func(ctx context.Context) ([]GmailMessage, error) {
		once.Do(func() {
			select {
			case result = <-pg.done:
				result = ctxErr(ctx, result)
			case <-ctx.Done():
				c.Close()
				result = ctx.Err()
			}
		})
		if result != nil {
			return nil, result
		}
		return pg.msgs, nil
	}, nil
}

// FetchGmail is StartGmailFetch and its wait.
func (c *Conn) FetchGmail(ctx context.Context, f GmailFetch) ([]GmailMessage, error) {
	wait, err := c.StartGmailFetch(ctx, f)
	if err != nil {
		return nil, err
	}
	return wait(ctx)
}

// gmailLine is the read side's state for a FETCH response that may answer
// a GmailFetch: it is kept whole (literals included, as on the wire) until
// it is known whether it is one.
type gmailLine struct {
	buf    []byte
	mark   literalMark
	left   int64 // literal bytes still to keep
	ours   bool  // an X-GM- item was seen: the line is removed
	passAt int   // bytes of buf already handed to go-imap (lineHeld)
	// after is the state to go on in once buf is handed on: a literal
	// of afterLeft bytes, or the next line.
	afterLeft int64
}

// gmailFeed keeps bytes of the FETCH response being examined. It returns
// how many of buf it consumed and whether the response is complete
// (ours), or must be handed on unchanged (pass).
func (g *gmailLine) feed(buf []byte) (n int, complete, pass bool) {
	if g.left > 0 {
		k := int(min(int64(len(buf)), g.left))
		g.buf = append(g.buf, buf[:k]...)
		g.left -= int64(k)
		return k, false, false
	}
	for i, b := range buf {
		g.buf = append(g.buf, b)
		size, literal, end := g.mark.feed(b, false)
		if !literal && !end {
			continue
		}
		g.mark = literalMark{}
		if !g.ours && hasGmailItem(g.buf) {
			g.ours = true
		}
		switch {
		case !g.ours:
			// Not an answer of ours: hand on what was kept, and go on
			// with the literal it announced, if any.
			if literal {
				g.afterLeft = size
			}
			return i + 1, false, true
		case literal:
			g.left = size
			return i + 1, false, false
		default:
			return i + 1, true, false
		}
	}
	return len(buf), false, false
}

// hasGmailItem reports whether a FETCH response's text holds an X-GM-
// item name at the top level of its attribute list.
func hasGmailItem(line []byte) bool {
	open := bytes.IndexByte(line, '(')
	if open < 0 {
		return false
	}
	p := &gmailParser{b: line, i: open + 1}
	for {
		p.spaces()
		name := p.name()
		if name == "" {
			return false
		}
		if len(name) > 5 && strings.ToUpper(name[:5]) == "X-GM-" {
			return true
		}
		p.spaces()
		if p.skip() != nil {
			return false
		}
	}
}

// parseGmailFetch reads "* N FETCH (att value ...)" as kept by gmailLine.
func parseGmailFetch(line []byte) (GmailMessage, error) {
	var m GmailMessage
	open := bytes.IndexByte(line, '(')
	if open < 0 {
		return m, errors.New("no attribute list")
	}
	p := &gmailParser{b: line, i: open + 1}
	for {
		p.spaces()
		if p.peek() == ')' {
			return m, nil
		}
		name := p.name()
		if name == "" {
			return m, fmt.Errorf("attribute name expected at byte %d", p.i)
		}
		p.spaces()
		var err error
		switch strings.ToUpper(name) {
		case "UID":
			var n uint64
			n, err = p.number()
			m.UID = uint32(n)
			if n > 0xffffffff {
				err = errors.New("UID out of range")
			}
		case "X-GM-MSGID":
			m.MsgID, err = p.number()
		case "MODSEQ":
			if !p.eat('(') {
				return m, errors.New("MODSEQ: ( expected")
			}
			m.ModSeq, err = p.number()
			if err == nil && !p.eat(')') {
				err = errors.New("MODSEQ: ) expected")
			}
		case "X-GM-LABELS", "FLAGS":
			var list []string
			list, err = p.list(strings.ToUpper(name) == "X-GM-LABELS")
			if strings.ToUpper(name) == "FLAGS" {
				m.Flags, m.HasFlags = list, true
			} else {
				m.Labels, m.HasLabels = list, true
			}
		default:
			err = p.skip()
		}
		if err != nil {
			return m, fmt.Errorf("%s: %w", name, err)
		}
	}
}

// gmailParser reads the attribute list of a kept FETCH response.
type gmailParser struct {
	b []byte
	i int
}

func (p *gmailParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *gmailParser) eat(ch byte) bool {
	if p.peek() == ch {
		p.i++
		return true
	}
	return false
}

func (p *gmailParser) spaces() {
	for p.peek() == ' ' {
		p.i++
	}
}

// atom reads an atom; a leading backslash is kept (a system flag or
// label), as are "[" and "]" (never in the names read here).
func (p *gmailParser) atom() string {
	start := p.i
	for p.i < len(p.b) {
		ch := p.b[p.i]
		if ch <= ' ' || ch == '(' || ch == ')' || ch == '{' || ch == '"' || ch == 0x7f {
			break
		}
		p.i++
	}
	return string(p.b[start:p.i])
}

// name reads an attribute name, with its section ("BODY[HEADER.FIELDS
// (A B)]") and partial ("<0>").
func (p *gmailParser) name() string {
	start := p.i
	for p.i < len(p.b) {
		ch := p.b[p.i]
		if ch == '[' {
			end := bytes.IndexByte(p.b[p.i:], ']')
			if end < 0 {
				p.i = len(p.b)
				break
			}
			p.i += end + 1
			continue
		}
		if ch <= ' ' || ch == '(' || ch == ')' || ch == '{' || ch == '"' || ch == 0x7f {
			break
		}
		p.i++
	}
	return string(p.b[start:p.i])
}

// skip skips one value: an atom or number, NIL, a quoted string, a
// literal, or a parenthesized list of them.
func (p *gmailParser) skip() error {
	switch p.peek() {
	case '(':
		p.i++
		for {
			p.spaces()
			if p.eat(')') {
				return nil
			}
			if p.peek() == 0 {
				return errors.New("list not closed")
			}
			if err := p.skip(); err != nil {
				return err
			}
		}
	case '"':
		_, err := p.quoted()
		return err
	case '{':
		_, err := p.literal()
		return err
	default:
		if p.atom() == "" {
			return fmt.Errorf("unexpected %q", p.peek())
		}
		return nil
	}
}

func (p *gmailParser) number() (uint64, error) {
	s := p.atom()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("number expected, got %q", s)
	}
	return n, nil
}

// list reads a parenthesized list of atoms, quoted strings and literals.
// Labels are decoded from modified UTF-7 where valid; flags are not.
func (p *gmailParser) list(labels bool) ([]string, error) {
	if !p.eat('(') {
		if labels && bytes.EqualFold(p.b[p.i:min(p.i+3, len(p.b))], []byte("NIL")) {
			p.i += 3
			return nil, nil
		}
		return nil, errors.New("( expected")
	}
	out := []string{}
	for {
		p.spaces()
		var s string
		quoted := false
		switch p.peek() {
		case ')':
			p.i++
			return out, nil
		case 0:
			return nil, errors.New("list not closed")
		case '"':
			v, err := p.quoted()
			if err != nil {
				return nil, err
			}
			s, quoted = v, true
		case '{':
			v, err := p.literal()
			if err != nil {
				return nil, err
			}
			s, quoted = v, true
		default:
			s = p.atom()
			if s == "" {
				return nil, fmt.Errorf("unexpected %q in list", p.peek())
			}
		}
		if labels && (quoted || s[0] != '\\') {
			if d, ok := decodeMailbox(s); ok && s != "INBOX" {
				s = d
			}
		}
		out = append(out, s)
	}
}

func (p *gmailParser) quoted() (string, error) {
	p.i++ // "
	var b []byte
	for p.i < len(p.b) {
		ch := p.b[p.i]
		p.i++
		switch ch {
		case '"':
			return string(b), nil
		case '\\':
			if p.i == len(p.b) {
				return "", errors.New("quoted string not closed")
			}
			b = append(b, p.b[p.i])
			p.i++
		case '\r', '\n':
			return "", errors.New("line end in a quoted string")
		default:
			b = append(b, ch)
		}
	}
	return "", errors.New("quoted string not closed")
}

func (p *gmailParser) literal() (string, error) {
	end := bytes.IndexByte(p.b[p.i:], '}')
	if end < 0 {
		return "", errors.New("literal not closed")
	}
	n, err := strconv.Atoi(string(bytes.TrimSuffix(p.b[p.i+1:p.i+end], []byte("+"))))
	if err != nil || n < 0 {
		return "", errors.New("bad literal size")
	}
	p.i += end + 1
	p.eat(' ') // go-imap's framing allows one SP before the CRLF
	p.eat('\r')
	if !p.eat('\n') {
		return "", errors.New("literal: line end expected")
	}
	if p.i+n > len(p.b) {
		return "", errors.New("literal cut short")
	}
	s := string(p.b[p.i : p.i+n])
	p.i += n
	return s, nil
}

func (g *gmailLine) reset() {
	buf := g.buf[:0]
	if cap(buf) > 64<<10 {
		buf = nil
	}
	*g = gmailLine{buf: buf}
}

// gmailRead takes a removed FETCH response that answers the pending
// GmailFetch.
func (c *Conn) gmailRead(line []byte) {
	m, err := parseGmailFetch(line)
	c.mu.Lock()
	defer c.mu.Unlock()
	pg := c.gmail
	if pg == nil {
		return
	}
	if err != nil {
		if pg.err == nil {
			pg.err = fmt.Errorf("gmail fetch: malformed FETCH response: %w", err)
		}
		return
	}
	pg.msgs = append(pg.msgs, m)
}

// gmailReplyRead takes the tagged reply to the pending GmailFetch.
func (c *Conn) gmailReplyRead(line []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pg := c.gmail
	if pg == nil {
		return
	}
	c.gmail = nil
	fields := bytes.Fields(line)
	err := pg.err
	switch {
	case err != nil:
	case len(fields) > 1 && bytes.EqualFold(fields[1], []byte("OK")):
		c.noteTagged(line)
	case len(fields) > 1:
		err = &ServerError{Status: string(bytes.ToUpper(fields[1])), Text: string(bytes.Join(fields[2:], []byte(" ")))}
	default:
		err = errors.New("gmail fetch: server replied with an empty status")
	}
	pg.done <- err
}

// ServerError is a tagged NO or BAD in reply to a command of this package.
type ServerError struct {
	Status string // "NO" or "BAD"
	Text   string // the resp-text, response code included
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("server replied %s %q", e.Status, e.Text)
}

// encodeMUTF7 encodes s in modified UTF-7 (RFC 3501 §5.1.3): printable
// ASCII as itself ("&" as "&-"), runs of anything else as UTF-16BE in
// modified BASE64 between "&" and "-".
func encodeMUTF7(s string) string {
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		raw := make([]byte, 2*len(run))
		for i, u := range run {
			raw[2*i], raw[2*i+1] = byte(u>>8), byte(u)
		}
		b.WriteByte('&')
		b.WriteString(mutf7Base64.EncodeToString(raw))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		run = utf16.AppendRune(run, r)
	}
	flush()
	return b.String()
}
