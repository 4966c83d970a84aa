package wiretrace

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"testing"
)

// FuzzClientStream uses its input twice.
//
// As raw client and server streams, cut up and interleaved: the tracer must
// not panic, every record must be well formed, and when the input holds no
// LOGIN or AUTHENTICATE the trace must give both streams back exactly.
//
// As a program that builds a session around configured secrets (LOGIN in
// every form, AUTHENTICATE with initial response, challenges, responses and
// cancel, between arbitrary commands, literals and responses): the trace
// must not hold a secret, and must be the same as with other secrets of the
// same shape.
func FuzzClientStream(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRaw(t, data)
		checkSecrets(t, data)
	})
}

func checkRaw(t *testing.T, data []byte) {
	split := splitFor(data)
	cPieces, sPieces := split(data), split(data)
	var steps []step
	for i := 0; i < max(len(cPieces), len(sPieces)); i++ {
		if i < len(cPieces) {
			steps = append(steps, c(string(cPieces[i])))
		}
		if i < len(sPieces) {
			steps = append(steps, s(string(sPieces[i])))
		}
	}
	got, _ := trace(steps, whole)
	client, server, err := reconstruct(got)
	if err != nil {
		t.Fatalf("malformed trace: %v", err)
	}
	if containsFold(data, "LOGIN") || containsFold(data, "AUTHENTICATE") {
		return
	}
	if !bytes.Equal(client, data) || !bytes.Equal(server, data) {
		t.Fatalf("stream %q\nreconstructed as client %q\nand server %q", data, client, server)
	}
}

// splitFor derives piece sizes from the input itself.
func splitFor(data []byte) splitter {
	if len(data) < 2 {
		return whole
	}
	return sizes(1+int(data[0]%7), 1+int(data[1]%29), 1)
}

func containsFold(data []byte, upper string) bool {
	b := bytes.Clone(data)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return bytes.Contains(b, []byte(upper))
}

// secrets are the credentials a session sends, one per way of sending.
// The two sets have their spaces, quotes, braces and line ends in the same
// places, so that the tracer sees the same framing for both.
type secrets struct {
	atom, quoted, literal string
}

var (
	secretsA = secrets{"Hunter2]Atom", `pa"ss \w{5}d`, "x y\r\n{5}\r\n\"\xc3\xa9\x00"}
	secretsB = secrets{"Zzzzzzz]Zzzz", `zz"zz \z{5}z`, "q q\r\n{5}\r\n\"\xc3\xa9\x00"}
)

func checkSecrets(t *testing.T, data []byte) {
	split := splitFor(data)
	got, _ := trace(program(data, secretsA), split)
	other, _ := trace(program(data, secretsB), split)
	for _, secret := range []string{secretsA.atom, secretsA.quoted, quote([]byte(secretsA.quoted)), secretsA.literal} {
		if bytes.Contains(data, []byte(secret)) {
			continue // the input sends it in the clear itself
		}
		if bytes.Contains([]byte(got), []byte(secret)) {
			t.Fatalf("trace holds the secret %q:\n%s", secret, got)
		}
	}
	if got != other {
		t.Fatalf("trace depends on the secrets:\n%s\nwith others:\n%s", got, other)
	}
}

// programReader hands out the input a byte at a time, then zeros.
type programReader struct{ data []byte }

func (r *programReader) byte() byte {
	if len(r.data) == 0 {
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return b
}

func (r *programReader) bytes(n int) []byte {
	n = min(n, len(r.data))
	b := r.data[:n]
	r.data = r.data[n:]
	return b
}

// text returns up to limit-1 input bytes usable inside one line: no line end,
// and no "}", so that it never announces a literal.
func (r *programReader) text(limit byte, alsoSpace bool) string {
	b := bytes.Clone(r.bytes(int(r.byte() % limit)))
	for i, c := range b {
		switch {
		case c == '\r' || c == '\n':
			b[i] = '.'
		case c == '}':
			b[i] = ')'
		case c == ' ' && alsoSpace:
			b[i] = '_'
		}
	}
	return string(b)
}

// program turns the input into a session that sends sec where
// credentials go and arbitrary input elsewhere.
func program(data []byte, sec secrets) []step {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	r := &programReader{data: data}
	var steps []step
	for i := 0; len(r.data) > 0 && i < 100; i++ {
		tag := fmt.Sprintf("t%d", i)
		switch r.byte() % 8 {
		case 0: // any command line
			steps = append(steps, c(tag+" "+r.text(40, false)+"\r\n"))
		case 1: // a literal of any bytes
			lit := r.bytes(int(r.byte()))
			steps = append(steps, c(fmt.Sprintf("%s APPEND INBOX {%d+}\r\n%s\r\n", tag, len(lit), lit)))
		case 2: // LOGIN
			user := quote([]byte(r.text(12, false)))
			switch r.byte() % 5 {
			case 0:
				steps = append(steps, c(tag+" LOGIN "+user+" "+sec.atom+"\r\n"))
			case 1:
				steps = append(steps, c(tag+" LOGIN "+user+" "+quote([]byte(sec.quoted))+"\r\n"))
			case 2:
				steps = append(steps, c(fmt.Sprintf("%s LOGIN %s {%d+}\r\n%s\r\n", tag, user, len(sec.literal), sec.literal)))
			case 3:
				steps = append(steps,
					c(fmt.Sprintf("%s LOGIN %s {%d}\r\n", tag, user, len(sec.literal))),
					s("+ Ready for literal data\r\n"),
					c(sec.literal+"\r\n"))
			case 4:
				name := r.text(12, false)
				steps = append(steps, c(fmt.Sprintf("%s LOGIN {%d+}\r\n%s %s\r\n", tag, len(name), name, sec.atom)))
			}
			steps = append(steps, s(tag+" NO [AUTHENTICATIONFAILED] "+r.text(20, false)+"\r\n"))
		case 3: // AUTHENTICATE with an initial response (RFC 4959)
			steps = append(steps,
				c(tag+" AUTHENTICATE PLAIN "+b64("\x00me\x00"+sec.atom)+"\r\n"),
				s(tag+" OK "+r.text(20, false)+"\r\n"))
		case 4: // an AUTHENTICATE exchange
			steps = append(steps, c(tag+" AUTHENTICATE "+r.text(12, true)+"\r\n"))
			for range r.byte() % 4 {
				if r.byte()%2 == 0 {
					steps = append(steps, s("* OK "+r.text(20, false)+"\r\n"))
				}
				steps = append(steps, s("+ "+b64(sec.quoted+r.text(8, false))+"\r\n"))
				switch r.byte() % 4 {
				case 0:
					steps = append(steps, c(b64(sec.literal)+"\r\n"))
				case 1:
					steps = append(steps, c("\r\n"))
				case 2:
					steps = append(steps, c("*\r\n"))
				case 3:
					steps = append(steps, c(sec.atom+"\r\n")) // a broken client
				}
			}
			steps = append(steps, s(tag+" NO "+r.text(20, false)+"\r\n"))
		case 5: // any response line
			steps = append(steps, s(r.text(40, false)+"\r\n"))
		case 6: // a literal in a response
			lit := r.bytes(int(r.byte()))
			steps = append(steps, s(fmt.Sprintf("* %d FETCH (BODY[] {%d}\r\n%s)\r\n", i+1, len(lit), lit)))
		case 7: // IDLE, whose continuation is not a challenge
			steps = append(steps,
				c(tag+" IDLE\r\n"),
				s("+ idling\r\n"),
				s("* 1 EXISTS\r\n"),
				c("DONE\r\n"),
				s(tag+" OK "+r.text(20, false)+"\r\n"))
		}
	}
	return steps
}
