// Command gmailserve serves sync/imaptest's Gmail emulation as a program,
// for the bench (sync/bench), which drives satchel only through its binary
// and so cannot start the emulation in its own process. It seeds the
// account with generated mail, each message carrying two labels, prints
// one line of JSON saying where the server listens and how to log in, and
// serves until its standard input closes or it gets SIGINT or SIGTERM.
//
//	go run ./sync/imaptest/gmailserve [-messages N] [-seed S] [-labels A,B,...]
//
// Message i is labelled \Inbox and one of -labels (the labels in turn), so
// that it shows in three mailboxes: INBOX, its label's and "[Gmail]/All
// Mail". Bodies are plain text mail of 2–30 KB, the same for the same
// -seed; no message is \Flagged, which on Gmail is a third label
// (\Starred).
//
// It is test support (layers_test.go): it imports sync/imaptest, and
// nothing imports it.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

// ready is the line printed once the account is seeded.
type ready struct {
	Addr     string `json:"addr"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	User     string `json:"user"`
	Password string `json:"password"`
	Messages int    `json:"messages"`
	// Copies is how many mailbox entries show the messages: what a client
	// that syncs every mailbox sees, and mbsync downloads.
	Copies int `json:"copies"`
	// Labels are the user labels, each message's second.
	Labels []string `json:"labels"`
	Seed   float64  `json:"seed_seconds"`
}

func main() {
	n := flag.Int("messages", 10000, "messages to seed")
	seed := flag.Uint64("seed", 1, "seed of the generated mail")
	labels := flag.String("labels", "Work,Lists,Receipts,Travel", "user labels, comma-separated: message i gets \\Inbox and the (i mod len)-th")
	flag.Parse()
	user := strings.Split(*labels, ",")
	if *n < 0 || len(user) == 0 || user[0] == "" {
		fmt.Fprintln(os.Stderr, "gmailserve: -messages must be ≥ 0 and -labels name at least one label")
		os.Exit(2)
	}

	t := newProgramTB()
	defer t.cleanup()
	began := time.Now()
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{})
	g := rand.New(rand.NewPCG(*seed, 0x6a11))
	copies := 0
	for i := range *n {
		id := srv.GmailAdd(imaptest.GmailMessage{
			Body:   message(g, i),
			Labels: []string{`\Inbox`, user[i%len(user)]},
			Flags:  []string{`\Seen`},
			Date:   epoch.Add(-time.Duration(*n-i) * 17 * time.Minute),
		})
		copies += srv.GmailCopies(id)
	}
	line, err := json.Marshal(ready{Addr: srv.Addr, Host: srv.Host, Port: srv.Port, User: srv.User, Password: srv.Password,
		Messages: *n, Copies: copies, Labels: user, Seed: time.Since(began).Seconds()})
	if err != nil {
		t.Fatalf("gmailserve: %v", err)
	}
	fmt.Printf("%s\n", line)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-stop:
	case <-eof:
	}
}

var (
	epoch = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
	words = strings.Fields(`the of and to in is that it for on was with as be at by this
		have from or had not but what all were when we there can an your which their said
		if do will each about how up out them then many some so these would other into has
		more two like see time could no make than first been its who now people my made over
		did down only way find use may long little very after words called just where most
		know get through back much before go good new write our used me too any day same
		release build budget meeting invoice schedule review draft server backup deadline`)
	senders = []string{"Alice Martin", "Bob Chen", "Carol Diaz", "Dave Okafor", "Erin Walsh", "Frank Osei"}
)

// message draws message i: a few headers and 2–30 KB of text in lines of
// about 70 characters, CRLF line ends.
func message(r *rand.Rand, i int) []byte {
	var b bytes.Buffer
	from := senders[r.IntN(len(senders))]
	date := epoch.Add(-time.Duration(r.Int64N(int64(3 * 365 * 24 * time.Hour)))).Truncate(time.Second)
	fmt.Fprintf(&b, "From: %s <%s@example.com>\r\n", from, strings.ToLower(strings.Fields(from)[0]))
	b.WriteString("To: Satchel User <satchel@gmail.com>\r\n")
	fmt.Fprintf(&b, "Subject: %s %d\r\n", words[r.IntN(len(words))], i)
	fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%d.%016x@example.com>\r\n", i, r.Uint64())
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	end := b.Len() + 2<<10 + r.IntN(28<<10)
	for col := 0; b.Len() < end; {
		w := words[r.IntN(len(words))]
		if col > 0 && col+len(w) >= 70 {
			b.WriteString("\r\n")
			col = 0
		} else if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// programTB is the testing.TB that StartGmail and the Gmail* methods are
// given outside a test: a failure ends the program, cleanups run when
// main returns. The embedded testing.TB is nil: a method not implemented
// here panics, which says which one the emulation started to call.
type programTB struct {
	testing.TB
	cleanups []func()
}

func newProgramTB() *programTB { return &programTB{} }

func (t *programTB) Helper()      {}
func (t *programTB) Name() string { return "gmailserve" }
func (t *programTB) Failed() bool { return false }

func (t *programTB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *programTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Errorf reports and goes on, as in a test; the bench sees it on stderr.
func (t *programTB) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gmailserve: "+format+"\n", args...)
}

// Fatalf reports, cleans up and exits: the emulation cannot go on.
func (t *programTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gmailserve: "+format+"\n", args...)
	t.cleanup()
	os.Exit(1)
}

func (t *programTB) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }

// TempDir gives a directory removed at cleanup.
func (t *programTB) TempDir() string {
	dir, err := os.MkdirTemp("", "gmailserve-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// cleanup runs the cleanups registered so far, last first, once.
func (t *programTB) cleanup() {
	for len(t.cleanups) > 0 {
		f := t.cleanups[len(t.cleanups)-1]
		t.cleanups = t.cleanups[:len(t.cleanups)-1]
		f()
	}
}
