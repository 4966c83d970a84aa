package imaptest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"mime"
	"slices"
	"strings"
	"time"
)

// NestedMailboxes are mailbox names for hierarchy and non-ASCII tests: a
// parent with children, a three-level path with Latin diacritics, Cyrillic,
// CJK under a CJK parent, spaces, and the usual special-use name.
var NestedMailboxes = []string{
	"INBOX",
	"Archive",
	"Archive/2023",
	"Archive/2024",
	"Work/Projects/Ünïcödé",
	"Друзья",
	"日本語/メール",
	"Spaces in name",
	"Sent",
}

// CorpusOptions configures Corpus.
type CorpusOptions struct {
	Seed     int64
	Messages int // how many messages
	// BigAttachments is how many of the Messages carry one attachment of
	// BigSize bytes (before base64), for multi-MB message tests. Capped at
	// Messages.
	BigAttachments int
	BigSize        int // bytes; default 3 MiB
}

// DefaultBigSize is the attachment size of big corpus messages when
// CorpusOptions.BigSize is zero.
const DefaultBigSize = 3 << 20

// corpusEpoch anchors corpus dates: they must not depend on when the test
// runs, or the corpus would not be deterministic.
var corpusEpoch = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)

// corpusSpan is how far back corpus dates go.
const corpusSpan = 5 * 365 * 24 * time.Hour

// Corpus returns opts.Messages messages, the same ones for the same
// options. They look like real mail as sent over IMAP, CRLF line endings
// throughout:
//   - headers Received (folded), From, To, sometimes Cc, Subject, Date,
//     Message-ID, MIME-Version, Content-Type; names and about one subject
//     in six are non-ASCII, as RFC 2047 encoded words;
//   - Message-ID is unique except that one message in 50 has none and one
//     pair (plus one per 1000 messages) shares one, as duplicates do in
//     real mailboxes;
//   - text/plain bodies of 1–30 KB, some UTF-8 in 8bit; about one message
//     in six is multipart/mixed with one or two base64 attachments
//     (1–200 KB), and BigAttachments of them carry one of BigSize instead;
//   - flags drawn from \Seen \Answered \Flagged \Draft $Forwarded, and now
//     and then a keyword $label1..$label3, sorted;
//   - Date (INTERNALDATE) within the five years before 2025, a few minutes
//     after the Date header, in whole seconds, UTC.
//
// UIDs are zero.
func Corpus(opts CorpusOptions) []Message {
	n := max(opts.Messages, 0)
	bigSize := opts.BigSize
	if bigSize <= 0 {
		bigSize = DefaultBigSize
	}
	r := rand.New(rand.NewPCG(uint64(opts.Seed), 0x5a7c4e1c0a9b3d21))

	// Roles are drawn up front from one permutation so they never overlap:
	// big messages first, then messages without Message-ID, then the
	// duplicates (each copies the ID of an earlier message).
	perm := r.Perm(n)
	bigCount := min(max(opts.BigAttachments, 0), n)
	noIDCount := n / 50
	dupPairs := 0
	if n >= 4 {
		dupPairs = 1 + n/1000
	}
	if bigCount+noIDCount+2*dupPairs > n {
		noIDCount = max(0, n-bigCount-2*dupPairs)
	}
	if bigCount+noIDCount+2*dupPairs > n {
		dupPairs = max(0, (n-bigCount-noIDCount)/2)
	}
	big := make(map[int]bool, bigCount)
	noID := make(map[int]bool, noIDCount)
	dupOf := make(map[int]int, dupPairs) // message index -> index whose ID it reuses
	k := 0
	for ; k < bigCount; k++ {
		big[perm[k]] = true
	}
	for end := k + noIDCount; k < end; k++ {
		noID[perm[k]] = true
	}
	for i := 0; i < dupPairs; i++ {
		a, b := perm[k], perm[k+1]
		k += 2
		dupOf[max(a, b)] = min(a, b)
	}

	msgs := make([]Message, n)
	ids := make([]string, n)
	for i := range msgs {
		g := msgGen{r: r, i: i, seed: opts.Seed}
		src, dup := dupOf[i]
		switch {
		case noID[i]:
		case dup:
			ids[i] = ids[src]
		default:
			ids[i] = fmt.Sprintf("<%d.%08x.%d@%s>", i, r.Uint32(), opts.Seed, pick(r, domains))
		}
		attach := 0
		if big[i] {
			attach = bigSize
		}
		msgs[i] = g.message(ids[i], attach)
	}
	return msgs
}

type msgGen struct {
	r    *rand.Rand
	i    int
	seed int64
}

type person struct{ name, addr string }

var (
	domains = []string{"example.com", "example.org", "example.net", "mail.example.com"}
	people  = []person{
		{"Alice Martin", "alice"}, {"Bob Chen", "bob.chen"}, {"Carol Diaz", "carol"},
		{"Dave O'Neil", "dave"}, {"Erin Walsh", "erin"}, {"Frank Osei", "frank.osei"},
		{"Jürgen Weiß", "juergen"}, {"Zoë Dubois", "zoe"}, {"Иван Петров", "ivan"},
		{"田中 太郎", "tanaka"}, {"Søren Kierkegaard", "soren"}, {"", "noreply"},
		{"Björk Guðmundsdóttir", "bjork"}, {"Ana-María López", "ana"},
	}
	subjectWords = strings.Fields(`quarterly report meeting notes invoice draft
		review schedule update project plan budget travel lunch friday deadline
		release build failure proposal contract photos agenda follow-up question
		reminder summary migration server backup weekend conference slides`)
	utf8Subjects = []string{
		"Réunion de l'équipe demain", "Встреча в пятницу", "会議の議事録",
		"Grüße aus München", "Café ☕ tomorrow?", "Smörgåsbord på fredag",
		"Überweisung für März", "Ελληνικά θέματα", "¿Nos vemos el sábado?",
	}
	bodyWords = strings.Fields(`the of and to in is that it for on was with as
		be at by this have from or had not but what all were when we there can
		an your which their said if do will each about how up out them then she
		many some so these would other into has more her two like him see time
		could no make than first been its who now people my made over did down
		only way find use may water long little very after words called just
		where most know get through back much before go good new write our used
		me man too any day same right look think also around another came come
		work three word must because does part even place well such here take
		why things help put years different away again off went old number`)
	utf8Words = strings.Fields(`naïve café Grüße façade smörgåsbord déjà vu
		Привет мир こんにちは 世界 Ünïcödé crème brûlée jalapeño Zürich Ærø`)
	attachmentKinds = []struct{ ctype, name string }{
		{"application/pdf", "report-%d.pdf"},
		{"image/jpeg", "photo-%d.jpg"},
		{"application/octet-stream", "data-%d.bin"},
		{"application/zip", "archive-%d.zip"},
	}
	zones = []*time.Location{
		time.UTC,
		time.FixedZone("", 1*3600),
		time.FixedZone("", -5*3600),
		time.FixedZone("", 9*3600),
		time.FixedZone("", 5*3600+1800),
		time.FixedZone("", -8*3600),
	}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// message renders one message; attach > 0 makes it multipart with one
// attachment of that many bytes.
func (g *msgGen) message(msgID string, attach int) Message {
	r := g.r
	sent := corpusEpoch.Add(-time.Duration(r.Int64N(int64(corpusSpan)))).Truncate(time.Second)
	received := sent.Add(time.Duration(r.IntN(600)) * time.Second)
	from := pick(r, people)
	fromDomain := pick(r, domains)
	utf8Body := r.IntN(6) == 0

	var h bytes.Buffer
	hdr := func(format string, args ...any) {
		fmt.Fprintf(&h, format, args...)
		h.WriteString("\r\n")
	}
	hdr("Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\r\n\tby mail.example.org with ESMTPS id %08x\r\n\tfor <me@example.org>; %s",
		r.IntN(4), fromDomain, r.IntN(4), fromDomain, 1+r.IntN(254), r.Uint32(), received.In(pick(r, zones)).Format(time.RFC1123Z))
	hdr("From: %s", address(from, fromDomain))
	hdr("To: %s", address(person{"Satchel User", "me"}, "example.org"))
	if r.IntN(5) == 0 {
		hdr("Cc: %s, %s", address(pick(r, people), pick(r, domains)), address(pick(r, people), pick(r, domains)))
	}
	subject := g.subject()
	if strings.HasPrefix(subject, "Re: ") {
		hdr("In-Reply-To: <%x.%d@%s>", r.Uint64(), g.seed, pick(r, domains))
	}
	if isASCII(subject) {
		hdr("Subject: %s", subject)
	} else if r.IntN(2) == 0 {
		hdr("Subject: %s", mime.BEncoding.Encode("UTF-8", subject))
	} else {
		hdr("Subject: %s", mime.QEncoding.Encode("UTF-8", subject))
	}
	hdr("Date: %s", sent.In(pick(r, zones)).Format(time.RFC1123Z))
	if msgID != "" {
		hdr("Message-ID: %s", msgID)
	}
	hdr("MIME-Version: 1.0")

	text := g.text(1024+r.IntN(29*1024), utf8Body)
	textType, textCTE := "text/plain; charset=us-ascii", "7bit"
	if utf8Body {
		textType, textCTE = "text/plain; charset=utf-8", "8bit"
	}

	var body bytes.Buffer
	nAttach := 0
	if attach > 0 {
		nAttach = 1
	} else if r.IntN(6) == 0 {
		nAttach = 1 + r.IntN(2)
	}
	if nAttach == 0 {
		hdr("Content-Type: %s", textType)
		hdr("Content-Transfer-Encoding: %s", textCTE)
		body.Write(text)
	} else {
		boundary := fmt.Sprintf("=_satchel_%016x", r.Uint64())
		hdr("Content-Type: multipart/mixed; boundary=\"%s\"", boundary)
		body.WriteString("This is a multi-part message in MIME format.\r\n\r\n")
		fmt.Fprintf(&body, "--%s\r\nContent-Type: %s\r\nContent-Transfer-Encoding: %s\r\n\r\n", boundary, textType, textCTE)
		body.Write(text)
		for j := 0; j < nAttach; j++ {
			size := attach
			if size == 0 {
				size = 1024 + r.IntN(199*1024)
			}
			kind := pick(r, attachmentKinds)
			name := fmt.Sprintf(kind.name, g.i*10+j)
			fmt.Fprintf(&body, "--%s\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
				boundary, kind.ctype, name, name)
			writeBase64(&body, randomBytes(r, size))
		}
		fmt.Fprintf(&body, "--%s--\r\n", boundary)
	}

	h.WriteString("\r\n")
	h.Write(body.Bytes())
	return Message{Flags: g.flags(), Date: received, Body: h.Bytes()}
}

func address(p person, domain string) string {
	addr := p.addr + "@" + domain
	switch {
	case p.name == "":
		return addr
	case isASCII(p.name):
		if strings.ContainsAny(p.name, `'"(),.:;<>@[\]`) {
			return fmt.Sprintf("%q <%s>", p.name, addr)
		}
		return p.name + " <" + addr + ">"
	default:
		return mime.QEncoding.Encode("UTF-8", p.name) + " <" + addr + ">"
	}
}

func (g *msgGen) subject() string {
	r := g.r
	var s string
	if r.IntN(6) == 0 {
		s = pick(r, utf8Subjects)
	} else {
		words := make([]string, 3+r.IntN(6))
		for i := range words {
			words[i] = pick(r, subjectWords)
		}
		s = strings.ToUpper(words[0][:1]) + strings.Join(words, " ")[1:]
	}
	switch r.IntN(8) {
	case 0, 1:
		s = "Re: " + s
	case 2:
		s = "Fwd: " + s
	}
	return s
}

// text returns about size bytes of prose in lines of at most 76 characters,
// paragraphs separated by blank lines, ending in CRLF.
func (g *msgGen) text(size int, utf8 bool) []byte {
	r := g.r
	var b bytes.Buffer
	b.Grow(size + 100)
	line := 0
	for b.Len() < size {
		w := pick(r, bodyWords)
		if utf8 && r.IntN(8) == 0 {
			w = pick(r, utf8Words)
		}
		if line > 0 && line+1+len(w) > 76 {
			b.WriteString("\r\n")
			line = 0
			if r.IntN(8) == 0 {
				b.WriteString("\r\n")
			}
		}
		if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func (g *msgGen) flags() []string {
	r := g.r
	var f []string
	if r.IntN(100) < 75 {
		f = append(f, `\Seen`)
	}
	if r.IntN(100) < 15 {
		f = append(f, `\Answered`)
	}
	if r.IntN(100) < 8 {
		f = append(f, `\Flagged`)
	}
	if r.IntN(100) < 2 {
		f = append(f, `\Draft`)
	}
	if r.IntN(100) < 5 {
		f = append(f, `$Forwarded`)
	}
	if r.IntN(100) < 3 {
		f = append(f, fmt.Sprintf("$label%d", 1+r.IntN(3)))
	}
	slices.Sort(f)
	return f
}

// randomBytes returns n incompressible bytes, like the compressed formats
// real attachments are. They come from a ChaCha8 stream keyed from r, whose
// bulk Read is far faster than drawing from r eight bytes at a time, which
// matters for multi-MB attachments.
func randomBytes(r *rand.Rand, n int) []byte {
	var key [32]byte
	for i := 0; i < len(key); i += 8 {
		binary.LittleEndian.PutUint64(key[i:], r.Uint64())
	}
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// writeBase64 writes data base64-encoded in 76-character lines (RFC 2045
// §6.8).
func writeBase64(w *bytes.Buffer, data []byte) {
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(data)))
	base64.StdEncoding.Encode(enc, data)
	w.Grow(len(enc) + len(enc)/76*2 + 2)
	for len(enc) > 76 {
		w.Write(enc[:76])
		w.WriteString("\r\n")
		enc = enc[76:]
	}
	w.Write(enc)
	w.WriteString("\r\n")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
