package wiretrace

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// argText never contains '}' or LF, so an argument never announces a
// literal or ends a line by accident; the generators below add those
// where they mean to.
var argText = rapid.StringOfN(rapid.RuneFrom([]rune("abcXYZ019 ()[]+~\"\\*%.\r{")), 0, 12, -1)

// literalData mixes random bytes with fragments that look like protocol.
var literalData = rapid.Custom(func(t *rapid.T) string {
	parts := rapid.SliceOfN(rapid.OneOf(
		rapid.StringN(0, 8, -1),
		rapid.Map(rapid.SliceOfN(rapid.Byte(), 1, 16), func(b []byte) string { return string(b) }),
		rapid.SampledFrom([]string{
			"\r\n", "\n", "\r", "{5}\r\n", "~{3+}\r\n", "a1 LOGIN me secret\r\n",
			"a2 AUTHENTICATE PLAIN\r\n", "+ c2VjcmV0\r\n", "*\r\n", "a2 OK\r\n",
		}),
	), 0, 8).Draw(t, "parts")
	return strings.Join(parts, "")
})

// announce returns a random announcement of a literal holding data.
func announce(t *rapid.T, data string) string {
	form := rapid.SampledFrom([]string{"{%d}", "{%d+}", "~{%d}", "~{%d+}"}).Draw(t, "literal form")
	return fmt.Sprintf(form, len(data)) + "\r\n" + data
}

// clientCommand is a command that has no secrets, with arguments, some of
// them literals.
func clientCommand(t *rapid.T) string {
	var b strings.Builder
	b.WriteString(rapid.StringMatching(`[A-Za-z0-9]{1,5}`).Draw(t, "tag"))
	b.WriteString(" ")
	b.WriteString(rapid.SampledFrom([]string{"NOOP", "SELECT", "APPEND", "UID", "FETCH", "ID", "x", "login2"}).Draw(t, "name"))
	for range rapid.IntRange(0, 3).Draw(t, "args") {
		b.WriteString(" " + argText.Draw(t, "arg"))
		if rapid.Bool().Draw(t, "literal") {
			b.WriteString(announce(t, literalData.Draw(t, "literal data")))
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// serverResponse is any response outside an AUTHENTICATE exchange.
func serverResponse(t *rapid.T) string {
	text := argText.Draw(t, "text")
	switch rapid.IntRange(0, 4).Draw(t, "kind") {
	case 0:
		return "* OK " + text + "\r\n"
	case 1:
		return rapid.StringMatching(`[A-Za-z0-9]{1,5}`).Draw(t, "tag") + " NO " + text + "\r\n"
	case 2:
		return "+ " + text + "\r\n"
	case 3:
		return "* " + text + " {5}\r\n"
	}
	var b strings.Builder
	b.WriteString("* 1 FETCH (")
	for range rapid.IntRange(1, 3).Draw(t, "items") {
		b.WriteString("BODY[] " + announce(t, literalData.Draw(t, "body")) + argText.Draw(t, "after"))
	}
	b.WriteString(")\r\n")
	return b.String()
}

// cut splits data into pieces of random sizes.
func cut(t *rapid.T, data []byte, label string) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := min(rapid.IntRange(1, 40).Draw(t, label), len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// Without credentials nothing is redacted, so the trace gives back both
// streams byte for byte, however they were cut up and interleaved.
func TestTraceReconstructsStreams(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var client, server []byte
		for range rapid.IntRange(0, 6).Draw(t, "commands") {
			client = append(client, clientCommand(t)...)
		}
		for range rapid.IntRange(0, 6).Draw(t, "responses") {
			server = append(server, serverResponse(t)...)
		}
		// Unfinished tails: the trace must keep them too.
		client = append(client, argText.Draw(t, "client tail")...)
		server = append(server, argText.Draw(t, "server tail")...)

		cPieces, sPieces := cut(t, client, "client piece"), cut(t, server, "server piece")
		var steps []step
		for len(cPieces)+len(sPieces) > 0 {
			if len(sPieces) == 0 || len(cPieces) > 0 && rapid.Bool().Draw(t, "client next") {
				steps, cPieces = append(steps, c(string(cPieces[0]))), cPieces[1:]
			} else {
				steps, sPieces = append(steps, s(string(sPieces[0]))), sPieces[1:]
			}
		}
		got, _ := trace(steps, whole)
		gotClient, gotServer, err := reconstruct(got)
		if err != nil {
			t.Fatalf("malformed trace: %v\n%s", err, got)
		}
		if !bytes.Equal(gotClient, client) {
			t.Fatalf("client stream\n%q\nreconstructed as\n%q", client, gotClient)
		}
		if !bytes.Equal(gotServer, server) {
			t.Fatalf("server stream\n%q\nreconstructed as\n%q", server, gotServer)
		}
	})
}

// password draws passwords made to be awkward: spaces, quotes, braces,
// announcements, CRLF, non-ASCII and NUL.
var password = rapid.Custom(func(t *rapid.T) []byte {
	parts := rapid.SliceOfN(rapid.OneOf(
		rapid.SliceOfN(rapid.Byte(), 1, 6),
		rapid.SliceOfN(rapid.ByteRange('a', 'z'), 1, 6),
		rapid.SampledFrom([][]byte{
			[]byte(" "), []byte(`"`), []byte(`\`), []byte("{5}"), []byte("{5}\r\n"),
			[]byte("\r\n"), []byte("é"), []byte("}"), []byte("~{"), []byte("*"), []byte("+ "),
		}),
	), 1, 6).Draw(t, "password parts")
	return bytes.Join(parts, nil)
})

// isAtom reports whether p can be sent as an atom (RFC 9051 §9:
// ASTRING-CHAR, which excludes space, controls, quotes, braces, "(", ")",
// "%", "*" and "\").
func isAtom(p []byte) bool {
	for _, b := range p {
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`(){%*"\`, b) >= 0 {
			return false
		}
	}
	return len(p) > 0
}

// quote returns p as a quoted string (RFC 9051 §4.3).
func quote(p []byte) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range p {
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// session is a client logging in with pw in every way it can, each
// attempt failing, then going on with other commands.
func session(pw []byte, form string) []step {
	b64 := base64.StdEncoding.EncodeToString
	plain := b64(append([]byte("\x00me\x00"), pw...))
	var loginArg string
	steps := []step{s("* OK [CAPABILITY IMAP4rev2 LITERAL+ SASL-IR AUTH=PLAIN] ready\r\n")}
	switch form {
	case "atom":
		loginArg = string(pw)
	case "quoted":
		loginArg = quote(pw)
	case "literal+":
		loginArg = fmt.Sprintf("{%d+}\r\n%s", len(pw), pw)
	case "literal":
		steps = append(steps,
			c(fmt.Sprintf("a1 LOGIN me {%d}\r\n", len(pw))),
			s("+ Ready for literal data\r\n"),
			c(string(pw)+"\r\n"))
	}
	if loginArg != "" {
		steps = append(steps, c("a1 LOGIN me "+loginArg+"\r\n"))
	}
	return append(steps,
		s("a1 NO [AUTHENTICATIONFAILED] no\r\n"),
		c("a2 AUTHENTICATE PLAIN "+plain+"\r\n"),
		s("a2 NO [AUTHENTICATIONFAILED] no\r\n"),
		c("a3 AUTHENTICATE PLAIN\r\n"),
		s("+ \r\n"),
		c(plain+"\r\n"),
		s("a3 NO [AUTHENTICATIONFAILED] no\r\n"),
		c("a4 AUTHENTICATE XOAUTH2 "+b64([]byte("user=me\x01auth=Bearer "+string(pw)+"\x01\x01"))+"\r\n"),
		s("+ "+b64([]byte(`{"status":"401","token":"`+string(pw)+`"}`))+"\r\n"),
		c("\r\n"),
		s("a4 NO [AUTHENTICATIONFAILED] no\r\n"),
		c("a5 AUTHENTICATE PLAIN\r\n"),
		s("+ "+b64(pw)+"\r\n"),
		c("*\r\n"),
		s("a5 BAD cancelled\r\n"),
		c("a6 LOGOUT\r\n"),
		s("* BYE\r\na6 OK\r\n"),
	)
}

// No password reaches the trace, in any encoding, however the bytes are
// cut up. Stronger: the trace is the same as with a different password of
// the same length, so it tells nothing about the password but the length
// of a literal.
func TestPasswordNeverInTrace(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pw := password.Draw(t, "password")
		forms := []string{"literal", "literal+"}
		if !bytes.ContainsAny(pw, "\r\n") {
			forms = append(forms, "quoted")
		}
		if isAtom(pw) {
			forms = append(forms, "atom")
		}
		form := rapid.SampledFrom(forms).Draw(t, "form")
		other := bytes.Repeat([]byte("Q"), len(pw))

		split := func(label string) splitter {
			return func(data []byte) [][]byte { return cut(t, data, label) }
		}
		got, sent := trace(session(pw, form), split("piece"))
		want, _ := trace(session(other, form), split("other piece"))

		plain := []byte(base64.StdEncoding.EncodeToString(append([]byte("\x00me\x00"), pw...)))
		if !bytes.Contains(sent, plain) {
			t.Fatalf("the session never sent the password")
		}
		secrets := [][]byte{pw, []byte(quote(pw)), plain}
		for _, secret := range secrets {
			if strings.Contains(got, string(secret)) && !strings.Contains(want, string(secret)) {
				t.Fatalf("trace holds %q:\n%s", secret, got)
			}
		}
		if got != want {
			t.Fatalf("trace depends on the password %q:\n%s\nwith %q:\n%s", pw, got, other, want)
		}
	})
}
