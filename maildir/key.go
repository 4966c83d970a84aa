package maildir

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// keyCounter makes keys unique within the process even when two are made
// in the same microsecond (the spec's "Q" delivery counter).
var keyCounter atomic.Uint64

// keyHost is the host part of every key, computed once.
var keyHost = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return escapeHost(h)
})

// escapeHost makes a host name safe inside a key. The Maildir spec
// (https://cr.yp.to/proto/maildir.html) replaces "/" with "\057" and ":"
// with "\072": a key is a single path element and must not contain the
// info separator.
func escapeHost(h string) string {
	return strings.NewReplacer("/", `\057`, ":", `\072`, "\x00", `\000`).Replace(h)
}

// NewKey returns a new unique key in the modern Maildir form
// "<seconds>.M<microseconds>P<pid>Q<counter>R<random>.<host>". Time, pid
// and counter make it unique on this host; 64 random bits guard against
// pid reuse across reboots and clock steps; the host name against other
// machines delivering into a shared directory.
func NewKey() string {
	now := time.Now()
	var rnd [8]byte
	// crypto/rand.Read never returns an error (it aborts the program
	// instead), so there is nothing to handle.
	_, _ = rand.Read(rnd[:])

	b := make([]byte, 0, 96)
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, ".M"...)
	b = strconv.AppendInt(b, int64(now.Nanosecond()/1000), 10)
	b = append(b, 'P')
	b = strconv.AppendInt(b, int64(os.Getpid()), 10)
	b = append(b, 'Q')
	b = strconv.AppendUint(b, keyCounter.Add(1), 10)
	b = append(b, 'R')
	b = hex.AppendEncode(b, rnd[:])
	b = append(b, '.')
	b = append(b, keyHost()...)
	return string(b)
}
