package crashtest

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imaptest"
)

// worldMailboxes are the mailboxes every world starts with. Their names
// need no escaping, so each is the Maildir folder of the same relative
// path (README, "How mail is laid out") and the harness finds them without
// the maildir package. "Archive" is both a mailbox and the parent of
// another. The folder lifecycle scenarios rename and delete some of them
// (world.mailboxes).
var worldMailboxes = []string{"Archive", "Archive/2024", "Drafts", "INBOX", "Sent", "Друзья"}

// serverMode is one way of presenting Dovecot: the rounds of a scenario
// take turns, so that a crash hits QRESYNC deltas, CONDSTORE deltas and
// full scans, APPENDUID and the search for an upload, MOVE and COPY plus
// EXPUNGE.
type serverMode struct {
	name string
	caps string
}

var serverModes = []serverMode{
	{"qresync", ""},
	{"condstore", imaptest.CapsCondStoreOnly},
	{"plain", imaptest.CapsPlain},
}

// want is a message the scenario expects at the end, on both sides.
type want struct {
	id      string // its X-Crash-ID
	mailbox string
	flags   flags  // on the server, keywords included; the file has flags.maildir()
	body    []byte // LF line ends, as the Maildir holds it
	date    time.Time
}

// world is one account under test: a Dovecot, a configuration, a Maildir,
// an index, and the model of what both sides must hold once synced.
type world struct {
	t *testing.T
	// rng draws the world's mail and changes; delays draws kill delays,
	// apart, so that the same seed gives the same mail and changes
	// whatever the kills did.
	rng    *rand.Rand
	delays *rand.Rand
	tag    string // prefix of this world's X-Crash-IDs
	mode   serverMode
	srv    *imaptest.Server

	dir    string // everything satchel may write is below it
	config string
	root   string // the Maildir root
	index  string
	runDir string // traces, logs and index copies of each run

	model map[string]*want
	// mailboxes are the mailboxes both sides must have at the end, sorted:
	// worldMailboxes, as the scenario renamed, deleted and created them.
	mailboxes []string
	next      int // numbers the X-Crash-IDs
	runs      int // satchel runs so far
	agains    int // how often the scenario's work was given again
	// firstSeen records, per X-Crash-ID, the first observation after a
	// kill that found it twice on a side or on neither side.
	firstSeen map[string]string
	// kills describes each killed run, for the report of a failure.
	kills []string
	// problems are the failures found in this world; the round reports
	// them together with the killed runs.
	problems []string
}

func (w *world) problem(format string, args ...any) {
	w.problems = append(w.problems, fmt.Sprintf(format, args...))
}

func newWorld(t *testing.T, seed uint64, mode serverMode, tag string) *world {
	t.Helper()
	srv := imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: mode.caps})
	for _, mb := range worldMailboxes {
		srv.CreateMailbox(mb)
	}
	dir := t.TempDir()
	w := &world{
		t: t, rng: rand.New(rand.NewPCG(seed, 0x63726173687465)), delays: rand.New(rand.NewPCG(seed, 0x64656c617973)),
		tag: tag, mode: mode, srv: srv,
		dir: dir, config: filepath.Join(dir, "config.yaml"), root: filepath.Join(dir, "Mail"),
		index: filepath.Join(dir, "state", "crash.db"), runDir: filepath.Join(dir, "runs"),
		model: map[string]*want{}, mailboxes: slices.Clone(worldMailboxes), firstSeen: map[string]string{},
	}
	if err := os.Mkdir(w.runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Dovecot sessions are PREAUTH: the password is never asked for.
	cfg := fmt.Sprintf(`accounts:
  - name: crash
    imap:
      host: %s
      port: %d
      tls: none
      user: %s
      password_command: "echo x"
    maildir: %q
    index: %q
`, srv.Host, srv.Port, srv.User, w.root, w.index)
	if err := os.WriteFile(w.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// newID returns a fresh X-Crash-ID.
func (w *world) newID() string {
	w.next++
	return fmt.Sprintf("%s-%d", w.tag, w.next)
}

// pickMailbox draws a mailbox, INBOX most often.
func (w *world) pickMailbox() string {
	weights := map[string]int{"INBOX": 8, "Archive": 3, "Archive/2024": 3, "Drafts": 1, "Sent": 2, "Друзья": 3}
	n := w.rng.IntN(20)
	for _, mb := range worldMailboxes {
		if n -= weights[mb]; n < 0 {
			return mb
		}
	}
	return "INBOX"
}

// seedServer appends n corpus messages, big of them with an attachment of
// bigSize bytes, each with an X-Crash-ID header of its own in front,
// spread over the mailboxes.
func (w *world) seedServer(n, big, bigSize int) {
	w.t.Helper()
	corpus := imaptest.Corpus(imaptest.CorpusOptions{
		Seed: int64(w.rng.Uint64() >> 1), Messages: n, BigAttachments: big, BigSize: bigSize,
	})
	byBox := map[string][]imaptest.Message{}
	for _, m := range corpus {
		id := w.newID()
		m.Body = append([]byte("X-Crash-ID: "+id+"\r\n"), m.Body...)
		mb := w.pickMailbox()
		byBox[mb] = append(byBox[mb], m)
		w.model[id] = &want{id: id, mailbox: mb, flags: newFlags(m.Flags...), body: lf(m.Body), date: m.Date}
	}
	w.appendByBox(byBox)
}

// appendByBox appends each mailbox's messages, mailbox by mailbox in a
// fixed order.
func (w *world) appendByBox(byBox map[string][]imaptest.Message) {
	w.t.Helper()
	for _, mb := range slices.Sorted(maps.Keys(byBox)) {
		if len(byBox[mb]) > 0 {
			w.srv.AppendMany(mb, byBox[mb])
		}
	}
}

// forgetLocal deletes the Maildir and the index, as someone starting
// afresh would; the server and the model stay.
func (w *world) forgetLocal() {
	w.t.Helper()
	for _, p := range []string{w.root, filepath.Dir(w.index)} {
		if err := os.RemoveAll(p); err != nil {
			w.t.Fatal(err)
		}
	}
}

// appendServer appends n new messages as another client would (a phone,
// a delivery), with random flags.
func (w *world) appendServer(n int) {
	w.t.Helper()
	byBox := map[string][]imaptest.Message{}
	for range n {
		id := w.newID()
		m := w.serverMessage(id)
		mb := w.pickMailbox()
		byBox[mb] = append(byBox[mb], m)
		w.model[id] = &want{id: id, mailbox: mb, flags: m.Flags, body: lf(m.Body), date: m.Date}
	}
	w.appendByBox(byBox)
}

// appendServerIn appends n new messages to one mailbox, as appendServer
// does.
func (w *world) appendServerIn(mb string, n int) {
	w.t.Helper()
	var msgs []imaptest.Message
	for range n {
		id := w.newID()
		m := w.serverMessage(id)
		msgs = append(msgs, m)
		w.model[id] = &want{id: id, mailbox: mb, flags: m.Flags, body: lf(m.Body), date: m.Date}
	}
	w.appendByBox(map[string][]imaptest.Message{mb: msgs})
}

// serverMessage draws a message as another client appends it: a body,
// random flags, now and then a keyword, a date.
func (w *world) serverMessage(id string) imaptest.Message {
	body := crlf(w.message(id, w.rng.IntN(3) > 0, w.bodySize()))
	f := w.randomFlags()
	if w.rng.IntN(5) == 0 {
		f = f.with("$label1", true)
	}
	return imaptest.Message{Flags: f, Date: w.date(), Body: body}
}

// writeLocal writes n new messages into the Maildir as a mail reader or a
// delivery agent would: unseen mail in new/ (a bare key, or an empty ":2,"
// info), the rest in cur/ with its flags, LF line ends, some without a
// Message-ID, mtime in whole seconds.
func (w *world) writeLocal(n int) {
	w.t.Helper()
	boxes := []string{"INBOX", "Sent", "Drafts", "Archive", "Archive/2024", "Друзья"}
	for range n {
		id := w.newID()
		body := w.message(id, w.rng.IntN(4) > 0, w.bodySize())
		mb := boxes[w.rng.IntN(len(boxes))]
		w.writeFile(id, body, mb)
	}
}

// writeLocalIn writes n new messages into one folder, as writeLocal does.
func (w *world) writeLocalIn(mb string, n int) {
	w.t.Helper()
	for range n {
		id := w.newID()
		w.writeFile(id, w.message(id, w.rng.IntN(4) > 0, w.bodySize()), mb)
	}
}

// writeFile writes one new message into a folder with drawn flags, as a
// mail reader or a delivery agent would (see writeLocal).
func (w *world) writeFile(id string, body []byte, mb string) {
	w.t.Helper()
	f := w.randomFlags()
	switch mb {
	case "Sent":
		f = f.with(`\Seen`, true)
	case "Drafts":
		f = newFlags(`\Draft`, `\Seen`)
	}
	key := w.localKey()
	rel := filepath.Join("cur", key+":2,"+f.letters())
	if !f.has(`\Seen`) && w.rng.IntN(3) > 0 {
		// Unseen mail as a delivery agent leaves it: in new/, with no
		// flags, the info part absent or empty.
		f = flags{}
		rel = filepath.Join("new", key)
		if w.rng.IntN(2) == 0 {
			rel += ":2,"
		}
	}
	date := w.date()
	path := filepath.Join(w.folder(mb), rel)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Chtimes(path, date, date); err != nil {
		w.t.Fatal(err)
	}
	w.model[id] = &want{id: id, mailbox: mb, flags: f, body: body, date: date}
}

// localKey is a unique part of a file name as mutt makes them.
func (w *world) localKey() string {
	return fmt.Sprintf("%d.%d_%d.crashtest", 1750000000+w.rng.IntN(1e7), 1000+w.rng.IntN(60000), w.rng.Uint32())
}

// folder is the Maildir folder of a mailbox.
func (w *world) folder(mailbox string) string {
	return filepath.Join(w.root, filepath.FromSlash(mailbox))
}

func (w *world) date() time.Time {
	return time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(w.rng.IntN(90*24*3600)) * time.Second)
}

// randomFlags draws system flags: mostly read, now and then answered,
// flagged or forwarded.
func (w *world) randomFlags() flags {
	var f []string
	if w.rng.IntN(3) > 0 {
		f = append(f, `\Seen`)
	}
	if w.rng.IntN(6) == 0 {
		f = append(f, `\Answered`)
	}
	if w.rng.IntN(8) == 0 {
		f = append(f, `\Flagged`)
	}
	if w.rng.IntN(12) == 0 {
		f = append(f, `$Forwarded`)
	}
	return newFlags(f...)
}

// bodySize is mostly a few KB; one message in ten is large enough that
// moving it takes a while.
func (w *world) bodySize() int {
	if w.rng.IntN(10) == 0 {
		return 200<<10 + w.rng.IntN(800<<10)
	}
	return 500 + w.rng.IntN(20<<10)
}

var words = strings.Fields(`the of and to in is that it for on was with as be at by this have
	from or had not but what all were when we there can an your which their said if do will
	each about how up out them then many some so these would other into has more two like
	naïve café Grüße façade smörgåsbord Привет こんにちは Zürich`)

// message renders a message with LF line ends, unique by its X-Crash-ID,
// Subject and (if it has one) Message-ID.
func (w *world) message(id string, withMessageID bool, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "X-Crash-ID: %s\n", id)
	fmt.Fprintf(&b, "From: Satchel User <me@example.org>\nTo: Someone <someone@example.net>\n")
	fmt.Fprintf(&b, "Subject: note %s\n", id)
	fmt.Fprintf(&b, "Date: %s\n", w.date().Format(time.RFC1123Z))
	if withMessageID {
		fmt.Fprintf(&b, "Message-ID: <%s@crashtest.example.org>\n", id)
	}
	b.WriteString("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
	line := 0
	for b.Len() < size {
		word := words[w.rng.IntN(len(words))]
		if line+len(word) > 72 {
			b.WriteByte('\n')
			line = 0
		} else if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	b.WriteString("\n")
	return b.Bytes()
}

// lf turns CRLF into LF, as satchel stores server mail.
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// crlf turns LF into CRLF, as a message travels over IMAP.
func crlf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }

// crashID returns the X-Crash-ID of a message's header, "" if none.
func crashID(msg []byte) string {
	header, _, _ := bytes.Cut(msg, []byte("\n\n"))
	if h, _, ok := bytes.Cut(msg, []byte("\r\n\r\n")); ok && len(h) < len(header) {
		header = h
	}
	for _, line := range bytes.Split(header, []byte("\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(name), "X-Crash-ID") {
			return strings.TrimSpace(string(value))
		}
	}
	return ""
}

// sortedIDs returns the model's X-Crash-IDs in a fixed order, so draws
// from the world's random source depend only on its seed.
func (w *world) sortedIDs() []string {
	ids := make([]string, 0, len(w.model))
	for id := range w.model {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	return ids
}
