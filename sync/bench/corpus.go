package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// message is one message as appended to the server: CRLF line ends.
type message struct {
	flags []string
	date  time.Time // INTERNALDATE
	body  []byte
}

// sizes says how big the messages of a mailbox are: text of textMin to
// textMax bytes, and with probability bigShare an attachment of bigMin to
// bigMax bytes (before base64) besides. Sizes are drawn uniformly.
type sizes struct {
	textMin, textMax int
	bigShare         float64
	bigMin, bigMax   int
}

// gen draws messages from a seed: the same seed gives the same mail. The
// mail is not a test fixture (sync/imaptest's corpus is): it only has to
// look like mail to a sync tool, with real headers and sizes, since both
// tools move the bytes untouched.
type gen struct {
	r *rand.Rand
	n int // messages drawn so far, for unique Message-IDs
}

func newGen(seed uint64, stream uint64) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, stream))}
}

var (
	benchWords = strings.Fields(`the of and to in is that it for on was with as be at by this
		have from or had not but what all were when we there can an your which their said if
		do will each about how up out them then many some so these would other into has more
		two like see time could no make than first been its who now people my made over did
		down only way find use may long little very after words called just where most know
		get through back much before go good new write our used me too any day same right
		look think also around another came come work three must because does part even place
		well such here take why things help put years different away again off went old number
		release build budget meeting invoice schedule review draft server backup deadline`)
	benchNames = []string{"Alice Martin", "Bob Chen", "Carol Diaz", "Dave Okafor", "Erin Walsh",
		"Frank Osei", "Grace Kim", "Heidi Larsen", "Ivan Petrov", "Judy Nakamura"}
	benchDomains = []string{"example.com", "example.org", "example.net", "lists.example.org"}
	benchEpoch   = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
)

// next draws one message of the given sizes.
func (g *gen) next(sz sizes) message {
	r := g.r
	g.n++
	date := benchEpoch.Add(-time.Duration(r.Int64N(int64(4 * 365 * 24 * time.Hour)))).Truncate(time.Second)
	from := benchNames[r.IntN(len(benchNames))]
	domain := benchDomains[r.IntN(len(benchDomains))]
	var b bytes.Buffer
	fmt.Fprintf(&b, "Received: from mx%d.%s (mx.%s [192.0.2.%d])\r\n\tby mail.example.org with ESMTPS id %08x\r\n\tfor <me@example.org>; %s\r\n",
		r.IntN(4), domain, domain, 1+r.IntN(254), r.Uint32(), date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: %s <%s@%s>\r\n", from, strings.ToLower(strings.Fields(from)[0]), domain)
	b.WriteString("To: Satchel User <me@example.org>\r\n")
	fmt.Fprintf(&b, "Subject: %s\r\n", g.words(3+r.IntN(6)))
	fmt.Fprintf(&b, "Date: %s\r\n", date.Add(-time.Duration(r.IntN(600))*time.Second).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%d.%016x@%s>\r\n", g.n, r.Uint64(), domain)
	b.WriteString("MIME-Version: 1.0\r\n")

	textLen := sz.textMin
	if sz.textMax > sz.textMin {
		textLen += r.IntN(sz.textMax - sz.textMin + 1)
	}
	big := 0
	if sz.bigShare > 0 && r.Float64() < sz.bigShare {
		big = sz.bigMin + r.IntN(sz.bigMax-sz.bigMin+1)
	}
	if big == 0 {
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
		g.text(&b, max(textLen-b.Len(), 64))
	} else {
		boundary := fmt.Sprintf("=_bench_%016x", r.Uint64())
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary)
		fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary)
		g.text(&b, textLen)
		fmt.Fprintf(&b, "--%s\r\nContent-Type: application/pdf; name=\"scan-%d.pdf\"\r\n"+
			"Content-Disposition: attachment; filename=\"scan-%d.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
			boundary, g.n, g.n)
		g.base64(&b, big)
		fmt.Fprintf(&b, "--%s--\r\n", boundary)
	}
	return message{flags: g.flags(), date: date, body: b.Bytes()}
}

func (g *gen) words(n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = benchWords[g.r.IntN(len(benchWords))]
	}
	return strings.Join(w, " ")
}

// text appends about n bytes of prose in lines of at most 76 characters.
func (g *gen) text(b *bytes.Buffer, n int) {
	end := b.Len() + n
	line := 0
	for b.Len() < end {
		w := benchWords[g.r.IntN(len(benchWords))]
		if line > 0 && line+1+len(w) > 76 {
			b.WriteString("\r\n")
			line = 0
		} else if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\r\n")
}

// base64 appends n incompressible bytes (like the compressed formats real
// attachments are) in base64 lines of 76 characters (RFC 2045 §6.8).
func (g *gen) base64(b *bytes.Buffer, n int) {
	var key [32]byte
	for i := 0; i < len(key); i += 8 {
		binary.LittleEndian.PutUint64(key[i:], g.r.Uint64())
	}
	src := rand.NewChaCha8(key)
	raw := make([]byte, 57*1024) // 57 bytes make one 76-character line
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	b.Grow(n/57*78 + 80)
	for n > 0 {
		chunk := raw[:min(n, len(raw))]
		src.Read(chunk)
		n -= len(chunk)
		base64.StdEncoding.Encode(enc, chunk)
		out := enc[:base64.StdEncoding.EncodedLen(len(chunk))]
		for len(out) > 0 {
			k := min(76, len(out))
			b.Write(out[:k])
			b.WriteString("\r\n")
			out = out[k:]
		}
	}
}

// flags: most mail read, some answered or flagged, as in a real mailbox.
func (g *gen) flags() []string {
	var f []string
	if g.r.IntN(100) < 15 {
		f = append(f, `\Answered`)
	}
	if g.r.IntN(100) < 6 {
		f = append(f, `\Flagged`)
	}
	if g.r.IntN(100) < 80 {
		f = append(f, `\Seen`)
	}
	return f
}
