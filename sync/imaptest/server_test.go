package imaptest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// modes are the server configurations every harness test runs against.
var modes = []struct {
	name  string
	start func(testing.TB) *Server
}{
	{"dovecot", func(t testing.TB) *Server { return StartDovecot(t, DovecotOptions{}) }},
	{"dovecot-plain", func(t testing.TB) *Server { return StartDovecot(t, DovecotOptions{Capabilities: CapsPlain}) }},
	{"memory", StartMemory},
	{"memory-tls", func(t testing.TB) *Server { s, _, _ := StartMemoryTLS(t); return s }},
}

func forEachMode(t *testing.T, test func(t *testing.T, s *Server)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			test(t, m.start(t))
		})
	}
}

// crlf turns a readable multi-line literal into a wire-format message.
func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.TrimLeft(s, "\n"), "\n", "\r\n"))
}

func TestMailboxesNestedAndNonASCII(t *testing.T) {
	forEachMode(t, func(t *testing.T, s *Server) {
		for _, name := range NestedMailboxes {
			s.CreateMailbox(name)
		}
		// Creating again is a no-op, not a failure.
		s.CreateMailbox("Archive/2023")

		want := append(slices.Clone(NestedMailboxes), "Work", "Work/Projects", "日本語")
		slices.Sort(want)
		if got := s.Mailboxes(); !slices.Equal(got, want) {
			t.Errorf("Mailboxes() = %q\nwant %q", got, want)
		}

		// The names survive the trip through modified UTF-7 in both
		// directions: a message appended to one is found there again.
		// Append and AppendMany encode names separately (go-imap, and
		// multiAppend for Dovecot); both must land in the same mailbox.
		for _, name := range []string{"Work/Projects/Ünïcödé", "Друзья", "日本語/メール", "Spaces in name"} {
			body := crlf("Subject: in " + name + "\n\nhello\n")
			uid := s.Append(name, body, nil, time.Time{})
			uids := s.AppendMany(name, []Message{{Body: body}, {Body: body}})
			msgs := s.Messages(name)
			if len(msgs) != 3 || msgs[0].UID != uid || msgs[1].UID != uids[0] || msgs[2].UID != uids[1] || !bytes.Equal(msgs[2].Body, body) {
				t.Errorf("Messages(%q) = %+v, want the three messages appended with UIDs %d, %v", name, msgs, uid, uids)
			}
			if v := s.UIDValidity(name); v == 0 {
				t.Errorf("UIDValidity(%q) = 0", name)
			}
		}
	})
}

func TestAppendRoundTrip(t *testing.T) {
	forEachMode(t, func(t *testing.T, s *Server) {
		body := crlf(`
From: Alice <alice@example.com>
To: me@example.org
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=
Date: Thu, 04 Mar 2021 05:06:07 +0200
Message-ID: <roundtrip@example.com>
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus München.
. a line that starts with a dot
From the start of a line
`)
		date := time.Date(2021, 3, 4, 5, 6, 7, 0, time.FixedZone("", 2*3600))
		uid1 := s.Append("INBOX", body, []string{`\Seen`, "$label1"}, date)
		// A sub-second date is stored to the second: INTERNALDATE has no
		// fractions.
		date2 := time.Date(2022, 12, 31, 23, 59, 58, 700_000_000, time.UTC)
		uid2 := s.Append("INBOX", crlf("Subject: second\n\nbody\n"), nil, date2)
		if uid2 <= uid1 {
			t.Fatalf("UIDs %d then %d, want increasing", uid1, uid2)
		}

		msgs := s.Messages("INBOX")
		if len(msgs) != 2 {
			t.Fatalf("Messages returned %d messages, want 2", len(msgs))
		}
		m := msgs[0]
		if m.UID != uid1 {
			t.Errorf("UID = %d, Append returned %d", m.UID, uid1)
		}
		if !bytes.Equal(m.Body, body) {
			t.Errorf("Body = %q\nwant %q", m.Body, body)
		}
		if want := []string{"$label1", `\Seen`}; !slices.Equal(m.Flags, want) {
			t.Errorf("Flags = %q, want %q", m.Flags, want)
		}
		if !m.Date.Equal(date) {
			t.Errorf("Date = %v, want %v", m.Date, date)
		}
		if msgs[1].UID != uid2 || msgs[1].Flags != nil || !msgs[1].Date.Equal(date2.Truncate(time.Second)) {
			t.Errorf("second message = UID %d flags %q date %v, want UID %d, no flags, %v",
				msgs[1].UID, msgs[1].Flags, msgs[1].Date, uid2, date2.Truncate(time.Second))
		}

		if v1, v2 := s.UIDValidity("INBOX"), s.UIDValidity("INBOX"); v1 == 0 || v1 != v2 {
			t.Errorf("UIDValidity(INBOX) = %d then %d, want the same non-zero value", v1, v2)
		}
	})
}

func TestFlagsAndExpunge(t *testing.T) {
	forEachMode(t, func(t *testing.T, s *Server) {
		const mbox = "Archive"
		s.CreateMailbox(mbox)
		var uids []uint32
		for i := range 4 {
			uids = append(uids, s.Append(mbox, crlf(fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i)), []string{`\Seen`}, time.Time{}))
		}
		a, b, c, d := uids[0], uids[1], uids[2], uids[3]

		s.SetFlags(mbox, a, `\Flagged`, "$label2")
		s.SetFlags(mbox, b)
		s.AddFlags(mbox, c, `\Answered`)
		// d is marked \Deleted by someone else; expunging b must not take
		// it along, also on a server without UIDPLUS.
		s.AddFlags(mbox, d, `\Deleted`)
		s.Expunge(mbox, b)

		want := []Message{
			{UID: a, Flags: []string{"$label2", `\Flagged`}},
			{UID: c, Flags: []string{`\Answered`, `\Seen`}},
			{UID: d, Flags: []string{`\Deleted`, `\Seen`}},
		}
		checkUIDsAndFlags(t, s.Messages(mbox), want)

		s.Expunge(mbox, a, c)
		checkUIDsAndFlags(t, s.Messages(mbox), want[2:])
	})
}

func checkUIDsAndFlags(t *testing.T, got, want []Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].UID != want[i].UID || !slices.Equal(got[i].Flags, want[i].Flags) {
			t.Errorf("message %d: UID %d flags %q, want UID %d flags %q", i, got[i].UID, got[i].Flags, want[i].UID, want[i].Flags)
		}
	}
}

func TestAppendManyCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 2000 messages per server mode")
	}
	corpus := Corpus(CorpusOptions{Seed: 1, Messages: 2000})
	forEachMode(t, func(t *testing.T, s *Server) {
		s.CreateMailbox("Seeded")
		uids := s.AppendMany("Seeded", corpus)
		if len(uids) != len(corpus) {
			t.Fatalf("AppendMany returned %d UIDs for %d messages", len(uids), len(corpus))
		}
		for i := 1; i < len(uids); i++ {
			if uids[i] <= uids[i-1] {
				t.Fatalf("UIDs not increasing at %d: %d then %d", i, uids[i-1], uids[i])
			}
		}
		got := s.Messages("Seeded")
		if len(got) != len(corpus) {
			t.Fatalf("Messages returned %d messages, want %d", len(got), len(corpus))
		}
		bad := 0
		for i, m := range got {
			w := corpus[i]
			if m.UID != uids[i] || !bytes.Equal(m.Body, w.Body) || !slices.Equal(m.Flags, w.Flags) || !m.Date.Equal(w.Date) {
				if bad++; bad <= 3 {
					t.Errorf("message %d: UID %d flags %q date %v size %d; want UID %d flags %q date %v size %d (bodies equal: %v)",
						i, m.UID, m.Flags, m.Date, len(m.Body), uids[i], w.Flags, w.Date, len(w.Body), bytes.Equal(m.Body, w.Body))
				}
			}
		}
		if bad > 0 {
			t.Errorf("%d of %d messages differ", bad, len(got))
		}
	})
}

func TestAppendManyBigMessages(t *testing.T) {
	corpus := Corpus(CorpusOptions{Seed: 2, Messages: 5, BigAttachments: 2})
	forEachMode(t, func(t *testing.T, s *Server) {
		uids := s.AppendMany("INBOX", corpus)
		got := s.Messages("INBOX")
		if len(got) != len(corpus) {
			t.Fatalf("Messages returned %d messages, want %d", len(got), len(corpus))
		}
		for i, m := range got {
			if m.UID != uids[i] || !bytes.Equal(m.Body, corpus[i].Body) {
				t.Errorf("message %d (UID %d, %d bytes) differs from the appended one (UID %d, %d bytes)", i, m.UID, len(m.Body), uids[i], len(corpus[i].Body))
			}
		}
	})
}

// readGreeting reads the server's first line over a fresh raw connection.
func readGreeting(t *testing.T, s *Server) string {
	t.Helper()
	conn, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read greeting: %v", err)
	}
	return line
}

func TestDovecotPreauthGreeting(t *testing.T) {
	s := StartDovecot(t, DovecotOptions{Capabilities: CapsPlain})
	line := readGreeting(t, s)
	if want := "* PREAUTH [CAPABILITY " + CapsPlain + "]"; !strings.HasPrefix(line, want) {
		t.Errorf("greeting = %q, want prefix %q", line, want)
	}
}

func TestDovecotCapabilities(t *testing.T) {
	tests := []struct {
		name    string
		caps    string
		have    []string
		without []string
	}{
		{"default", "", []string{"CONDSTORE", "QRESYNC", "UIDPLUS", "MOVE", "IDLE"}, nil},
		{"condstore-only", CapsCondStoreOnly, []string{"CONDSTORE", "UIDPLUS", "MOVE", "ESEARCH", "LIST-STATUS", "ENABLE", "IDLE", "LITERAL+"}, []string{"QRESYNC"}},
		{"plain", CapsPlain, []string{"IMAP4rev1", "IDLE", "LITERAL+"}, []string{"CONDSTORE", "QRESYNC", "UIDPLUS", "MOVE", "ESEARCH", "LIST-STATUS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			caps := StartDovecot(t, DovecotOptions{Capabilities: tt.caps}).Capabilities()
			for _, c := range tt.have {
				if !slices.Contains(caps, c) {
					t.Errorf("CAPABILITY %q lacks %s", caps, c)
				}
			}
			for _, c := range tt.without {
				if slices.Contains(caps, c) {
					t.Errorf("CAPABILITY %q has %s", caps, c)
				}
			}
		})
	}
}

func TestCapsCondStoreOnlyIsDefaultWithoutQRESYNC(t *testing.T) {
	want := slices.DeleteFunc(strings.Fields(CapsDovecot), func(c string) bool { return c == "QRESYNC" })
	if got := strings.Fields(CapsCondStoreOnly); !slices.Equal(got, want) {
		t.Errorf("CapsCondStoreOnly = %q, want %q", got, want)
	}
}

func TestMemoryTLS(t *testing.T) {
	s, pin, pool := StartMemoryTLS(t)

	conn, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("tls.Dial with the returned pool: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "* OK") {
		t.Errorf("greeting over TLS = %q, %v; want * OK", line, err)
	}
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 || sha256.Sum256(certs[0].RawSubjectPublicKeyInfo) != pin {
		t.Errorf("the returned pin does not match the served certificate's SubjectPublicKeyInfo")
	}

	if _, err := tls.Dial("tcp", s.Addr, &tls.Config{}); err == nil {
		t.Error("tls.Dial without the pool succeeded; want an unknown-authority error")
	}
}

func TestMemoryLogin(t *testing.T) {
	s := StartMemory(t)
	if line := readGreeting(t, s); !strings.HasPrefix(line, "* OK") {
		t.Errorf("greeting = %q, want * OK (the memory server requires LOGIN)", line)
	}
	if s.User == "" || s.Password == "" {
		t.Errorf("User %q Password %q: want both set", s.User, s.Password)
	}
	if caps := s.Capabilities(); slices.Contains(caps, "CONDSTORE") {
		t.Errorf("memory server advertises CONDSTORE: %q", caps)
	}
}

// TestCleanupStopsEverything leaves connections open on purpose and checks
// that the servers' cleanup still ends every imap process and goroutine.
func TestCleanupStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	var procs []*os.Process
	t.Run("dovecot", func(t *testing.T) {
		s := StartDovecot(t, DovecotOptions{})
		s.Append("INBOX", crlf("Subject: x\n\nx\n"), nil, time.Time{})
		readGreeting(t, s)
		leaked, err := s.Dial()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { leaked.Close() })
		leaked.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := bufio.NewReader(leaked).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		s.dovecot.mu.Lock()
		procs = slices.Clone(s.dovecot.started)
		s.dovecot.mu.Unlock()
	})
	t.Run("memory", func(t *testing.T) {
		s, _, _ := StartMemoryTLS(t)
		s.Append("INBOX", crlf("Subject: x\n\nx\n"), nil, time.Time{})
		leaked, err := s.Dial()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { leaked.Close() })
	})

	if len(procs) < 3 {
		t.Errorf("dovecot started %d imap processes, want at least 3 (harness, greeting, leaked)", len(procs))
	}
	for _, p := range procs {
		if err := p.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("imap process %d not reaped after cleanup: signal: %v", p.Pid, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after cleanup, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func BenchmarkAppendMany3000(b *testing.B) {
	corpus := Corpus(CorpusOptions{Seed: 3, Messages: 3000})
	size := 0
	for _, m := range corpus {
		size += len(m.Body)
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			s := m.start(b)
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				i++
				mbox := fmt.Sprintf("Bench%d", i)
				s.CreateMailbox(mbox)
				s.AppendMany(mbox, corpus)
			}
		})
	}
}
