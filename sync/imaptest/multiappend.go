package imaptest

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Batch limits for multiAppend: one APPEND command carries at most this many
// messages or bytes, so a failure names a small range and Dovecot never
// holds an unbounded transaction.
const (
	multiAppendMessages = 200
	multiAppendBytes    = 32 << 20
)

// multiAppend stores msgs in mailbox with MULTIAPPEND (RFC 3502) over a
// connection of its own and returns their UIDs in order.
//
// Dovecot saves each APPEND in its own transaction, locking and rewriting
// dovecot-uidlist every time; one APPEND carrying many messages shares that
// cost and seeds several times faster. go-imap has no MULTIAPPEND, hence the
// hand-written commands. Dovecot implements MULTIAPPEND and LITERAL+ even when
// imap_capability hides them, and this connection is the harness's, not the
// code under test's, so the narrowed modes use it too.
func (s *Server) multiAppend(mailbox string, msgs []Message) ([]uint32, error) {
	conn, err := s.Dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Minute))
	br := bufio.NewReader(conn)
	bw := bufio.NewWriterSize(conn, 256<<10)

	greeting, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	if !strings.HasPrefix(greeting, "* PREAUTH ") {
		return nil, fmt.Errorf("greeting %q, want PREAUTH", strings.TrimSpace(greeting))
	}

	name := quoteMailbox(mailbox)
	uids := make([]uint32, 0, len(msgs))
	for start := 0; start < len(msgs); {
		end, size := start, 0
		for end < len(msgs) && end-start < multiAppendMessages && (end == start || size+len(msgs[end].Body) <= multiAppendBytes) {
			size += len(msgs[end].Body)
			end++
		}
		tag := "M" + strconv.Itoa(start)
		fmt.Fprintf(bw, "%s APPEND %s", tag, name)
		for _, m := range msgs[start:end] {
			bw.WriteByte(' ')
			if len(m.Flags) > 0 {
				for _, f := range m.Flags {
					if f == "" || strings.ContainsAny(f, " ()\"{%*]\r\n") {
						return nil, fmt.Errorf("flag %q is not an IMAP flag", f)
					}
				}
				fmt.Fprintf(bw, "(%s) ", strings.Join(m.Flags, " "))
			}
			if !m.Date.IsZero() {
				// RFC 3501 §9 date-time: the day is space-padded.
				fmt.Fprintf(bw, "\"%s\" ", m.Date.Format("_2-Jan-2006 15:04:05 -0700"))
			}
			fmt.Fprintf(bw, "{%d+}\r\n", len(m.Body))
			bw.Write(m.Body)
		}
		bw.WriteString("\r\n")
		if err := bw.Flush(); err != nil {
			return nil, fmt.Errorf("send messages %d to %d: %w", start+1, end, err)
		}
		resp, err := readTagged(br, tag)
		if err != nil {
			return nil, fmt.Errorf("messages %d to %d: %w", start+1, end, err)
		}
		got, err := parseAppendUID(resp)
		if err != nil {
			return nil, fmt.Errorf("messages %d to %d: %w", start+1, end, err)
		}
		if len(got) != end-start {
			return nil, fmt.Errorf("messages %d to %d: APPENDUID names %d UIDs: %q", start+1, end, len(got), resp)
		}
		uids = append(uids, got...)
		start = end
	}

	bw.WriteString("L LOGOUT\r\n")
	if err := bw.Flush(); err == nil {
		readTagged(br, "L")
	}
	return uids, nil
}

// readTagged reads response lines until the one tagged tag and returns it,
// or an error if it is not OK. Untagged responses to APPEND on a connection
// with nothing selected carry no literals, so reading lines is enough.
func readTagged(br *bufio.Reader, tag string) (string, error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("read response: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "* BYE") {
			return "", fmt.Errorf("server closed the connection: %q", line)
		}
		rest, ok := strings.CutPrefix(line, tag+" ")
		if !ok {
			continue
		}
		if !strings.HasPrefix(rest, "OK") {
			return "", fmt.Errorf("server: %q", line)
		}
		return line, nil
	}
}

// parseAppendUID extracts the UIDs from "... OK [APPENDUID v uid-set] ...";
// for MULTIAPPEND the set lists them in message order (RFC 4315 §3).
func parseAppendUID(line string) ([]uint32, error) {
	_, after, ok := strings.Cut(line, "[APPENDUID ")
	if !ok {
		return nil, fmt.Errorf("no APPENDUID in %q", line)
	}
	code, _, ok := strings.Cut(after, "]")
	fields := strings.Fields(code)
	if !ok || len(fields) != 2 {
		return nil, fmt.Errorf("malformed APPENDUID in %q", line)
	}
	var uids []uint32
	for _, r := range strings.Split(fields[1], ",") {
		lo, hi, isRange := strings.Cut(r, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("APPENDUID in %q: %w", line, err)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil {
				return nil, fmt.Errorf("APPENDUID in %q: %w", line, err)
			}
		}
		if a == 0 || b < a {
			return nil, errors.New("APPENDUID range out of order in " + strconv.Quote(line))
		}
		for u := a; u <= b; u++ {
			uids = append(uids, uint32(u))
		}
	}
	return uids, nil
}

// mutf7 is the modified base64 of RFC 3501 §5.1.3: "," instead of "/",
// no padding.
var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// quoteMailbox renders a UTF-8 mailbox name as an IMAP quoted string in
// modified UTF-7 (RFC 3501 §5.1.3): printable ASCII stands for itself, "&"
// becomes "&-", and every other run becomes "&" + modified base64 of its
// UTF-16BE + "-".
func quoteMailbox(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	var b strings.Builder
	b.WriteByte('"')
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		units := utf16.Encode(run)
		raw := make([]byte, 0, 2*len(units))
		for _, u := range units {
			raw = append(raw, byte(u>>8), byte(u))
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(raw))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range name {
		if r < 0x20 || r > 0x7e {
			run = append(run, r)
			continue
		}
		flush()
		switch r {
		case '&':
			b.WriteString("&-")
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	flush()
	b.WriteByte('"')
	return b.String()
}
