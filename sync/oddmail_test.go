package sync_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// oddMessages are messages that stretch RFC 5322 the way real mail does.
// Each has a unique Subject, which is how a test finds it again. body is
// the message as appended to the server (CRLF); dovecot is the BODY[]
// Dovecot 2.3 then serves, when it differs (see dovecotAlters).
var oddMessages = []struct {
	subject string
	body    string
	dovecot string
}{
	{subject: "bare-cr", body: "Subject: bare-cr\r\n\r\nbefore\rafter\r\nend\r\n"},
	{subject: "nul", body: "Subject: nul\r\n\r\nbefore\x00after\r\n", dovecot: "Subject: nul\r\n\r\nbefore\x80after\r\n"},
	{subject: "no-message-id", body: "From: a@example.org\r\nSubject: no-message-id\r\n\r\nno id here\r\n"},
	{subject: "utf8-header", body: "Subject: utf8-header\r\nFrom: Jürgen Weiß <j@example.org>\r\nComments: Grüße, été, Привет\r\n\r\nbody\r\n"},
	{subject: "latin1-header", body: "Subject: latin1-header\r\nFrom: J\xfcrgen <j@example.org>\r\nComments: Gr\xfc\xdfe\r\n\r\nCaf\xe9\r\n"},
	{subject: "binary-body", body: "Subject: binary-body\r\n\r\n" + string(bytesRange(0x80, 0x100)) + "\r\n"},
	{subject: "no-trailing-newline", body: "Subject: no-trailing-newline\r\n\r\nlast line"},
	{subject: "long-line", body: "Subject: long-line\r\n\r\n" + strings.Repeat("0123456789", 10240) + "\r\nshort\r\n"},
	{subject: "empty-body", body: "Subject: empty-body\r\n\r\n"},
	{subject: "header-only", body: "Subject: header-only\r\n"},
	{subject: "cr-at-end", body: "Subject: cr-at-end\r\n\r\nbody\r", dovecot: "Subject: cr-at-end\r\n\r\nbody"},
	{subject: "bare-lf", body: "Subject: bare-lf\r\n\r\nunix\nline\r\n", dovecot: "Subject: bare-lf\r\n\r\nunix\r\nline\r\n"},
}

func bytesRange(from, to int) []byte {
	var b []byte
	for c := from; c < to; c++ {
		b = append(b, byte(c))
	}
	return b
}

// dovecotAlters documents what Dovecot 2.3 changes in a message it
// stores, as seen in BODY[] afterwards; satchel itself changes nothing
// but CRLF into LF. Dovecot replaces each NUL with 0x80 when it serves
// BODY[] (IMAP literals cannot carry NUL, RFC 9051 §4.3; BINARY[] would
// return it), drops a CR at the very end of the message, and turns a bare
// LF into CRLF (it stores lines, not bytes). Everything else, bare CRs
// and 8-bit header bytes included, comes back byte for byte.
func dovecotAlters(body, dovecot string) string {
	if dovecot != "" {
		return dovecot
	}
	return body
}

// TestOddMessagesDownload: odd messages on the server arrive in the
// Maildir as the server's BODY[] with CRLF turned into LF and nothing
// else changed, in every Dovecot mode; a second sync changes nothing.
func TestOddMessagesDownload(t *testing.T) {
	for _, mode := range serverModes[:3] {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			for _, m := range oddMessages {
				srv.Append("INBOX", []byte(m.body), nil, day)
			}
			for _, m := range oddMessages {
				got, ok := serverMsg(srv, "INBOX", m.subject)
				if !ok {
					t.Fatalf("%s: not on the server", m.subject)
				}
				if want := dovecotAlters(m.body, m.dovecot); string(got.Body) != want {
					t.Errorf("%s: Dovecot serves %q, want %q", m.subject, got.Body, want)
				}
			}
			e := newEnv(t, srv)
			res := e.mustSync()
			if down, _, _ := totals(res); down != len(oddMessages) {
				t.Fatalf("downloaded %d messages, want %d", down, len(oddMessages))
			}
			e.assertMirror(true)
			e.assertSettled()
		})
	}
}

// uploadable reports whether an odd message is uploaded in a server
// mode. bare-lf has no LF form of its own. Without UIDPLUS
// (dovecot-plain) an uploaded message is found again by its size and
// header, and cr-at-end's size changes on the server: see
// TestUploadUnmatchedNeverRepeats.
func uploadable(mode, subject string) bool {
	return subject != "bare-lf" && (mode != "dovecot-plain" || subject != "cr-at-end")
}

// TestOddMessagesUpload: odd messages written into the Maildir (LF line
// ends, as mail readers write them) reach the server as the same bytes
// with each LF turned into CRLF, except for what Dovecot itself alters
// (dovecotAlters); they are recorded, not downloaded back, and a second
// sync changes nothing.
func TestOddMessagesUpload(t *testing.T) {
	for _, mode := range serverModes[:3] {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			e := newEnv(t, srv)
			e.mustSync()
			want := 0
			for _, m := range oddMessages {
				if !uploadable(mode.name, m.subject) {
					continue
				}
				local := bytes.ReplaceAll([]byte(m.body), []byte("\r\n"), []byte("\n"))
				e.writeLocal("INBOX", local, mail.NewFlags(mail.FlagSeen))
				want++
			}
			res := e.mustSync()
			if m := res.Mailboxes[0]; m.Uploaded != want || m.Downloaded != 0 {
				t.Fatalf("uploaded %d, downloaded %d; want %d and 0", m.Uploaded, m.Downloaded, want)
			}
			for _, m := range oddMessages {
				if !uploadable(mode.name, m.subject) {
					continue
				}
				got, ok := serverMsg(srv, "INBOX", m.subject)
				if !ok {
					t.Errorf("%s: not on the server", m.subject)
					continue
				}
				if want := dovecotAlters(m.body, m.dovecot); string(got.Body) != want {
					t.Errorf("%s: the server holds %q, want %q", m.subject, got.Body, want)
				}
			}
			e.assertSettled()
		})
	}
}

// TestUploadUnmatchedNeverRepeats: a server without UIDPLUS stores an
// uploaded message with another size than was sent (Dovecot drops a CR
// at the very end), so satchel cannot find it by size and header. The
// message must still reach the server once: syncing again must neither
// append it again nor download the server's copy as another message.
func TestUploadUnmatchedNeverRepeats(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: imaptest.CapsPlain})
	e := newEnv(t, srv)
	e.mustSync()
	e.writeLocal("INBOX", []byte("Subject: cr-at-end\n\nbody\r"), mail.NewFlags(mail.FlagSeen))
	for i := range 3 {
		res := e.sync()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		t.Logf("sync %d: %v", i+1, res.Mailboxes[0].Err)
	}
	if n, files := len(srv.Messages("INBOX")), e.localFiles("INBOX"); n != 1 || len(files) != 1 {
		t.Errorf("after three syncs the server holds %d copies and the Maildir %d", n, len(files))
	}
}
