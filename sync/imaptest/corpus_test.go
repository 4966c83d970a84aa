package imaptest

import (
	"bytes"
	"io"
	"mime"
	"net/mail"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCorpusDeterministic(t *testing.T) {
	opts := CorpusOptions{Seed: 7, Messages: 300, BigAttachments: 2, BigSize: 256 << 10}
	a, b := Corpus(opts), Corpus(opts)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two corpora with the same options differ")
	}
	opts.Seed = 8
	c := Corpus(opts)
	same := 0
	for i := range a {
		if bytes.Equal(a[i].Body, c[i].Body) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("seeds 7 and 8 produced %d identical messages", same)
	}
}

func TestCorpusCounts(t *testing.T) {
	tests := []struct {
		opts      CorpusOptions
		wantBig   int
		wantNoID  int
		wantPairs int
	}{
		{CorpusOptions{Seed: 1, Messages: 0}, 0, 0, 0},
		{CorpusOptions{Seed: 1, Messages: 3}, 0, 0, 0},
		{CorpusOptions{Seed: 1, Messages: 10, BigAttachments: 1, BigSize: 1 << 20}, 1, 0, 1},
		{CorpusOptions{Seed: 1, Messages: 2, BigAttachments: 5, BigSize: 1 << 20}, 2, 0, 0},
		{CorpusOptions{Seed: 5, Messages: 1000, BigAttachments: 3, BigSize: 1 << 20}, 3, 20, 2},
	}
	for _, tt := range tests {
		msgs := Corpus(tt.opts)
		if len(msgs) != tt.opts.Messages {
			t.Errorf("%+v: %d messages", tt.opts, len(msgs))
			continue
		}
		bigSize := tt.opts.BigSize
		if bigSize == 0 {
			bigSize = DefaultBigSize
		}
		big, noID, pairs := 0, 0, 0
		ids := map[string]int{}
		for _, m := range msgs {
			if len(m.Body) > bigSize {
				big++
			}
			id := header(t, m.Body).Get("Message-ID")
			if id == "" {
				noID++
				continue
			}
			if ids[id]++; ids[id] == 2 {
				pairs++
			}
		}
		if big != tt.wantBig || noID != tt.wantNoID || pairs != tt.wantPairs {
			t.Errorf("%+v: %d big, %d without Message-ID, %d shared Message-IDs; want %d, %d, %d",
				tt.opts, big, noID, pairs, tt.wantBig, tt.wantNoID, tt.wantPairs)
		}
		for id, n := range ids {
			if n > 2 {
				t.Errorf("%+v: Message-ID %s used %d times", tt.opts, id, n)
			}
		}
	}
}

func TestCorpusDefaultBigSize(t *testing.T) {
	msgs := Corpus(CorpusOptions{Seed: 1, Messages: 2, BigAttachments: 1})
	big := 0
	for _, m := range msgs {
		if len(m.Body) > DefaultBigSize {
			big++
		}
	}
	if big != 1 {
		t.Errorf("%d messages larger than %d bytes, want 1", big, DefaultBigSize)
	}
}

func header(t *testing.T, body []byte) mail.Header {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	return m.Header
}

// TestCorpusMessagesAreWellFormed parses every message the way a mail
// reader would.
func TestCorpusMessagesAreWellFormed(t *testing.T) {
	msgs := Corpus(CorpusOptions{Seed: 11, Messages: 600})
	allowed := []string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`, "$Forwarded", "$label1", "$label2", "$label3"}
	var dec mime.WordDecoder
	multipart, nonASCIISubject, utf8Body, flagged := 0, 0, 0, 0
	for i, m := range msgs {
		if bytes.Contains(bytes.ReplaceAll(m.Body, []byte("\r\n"), nil), []byte("\n")) ||
			bytes.Contains(bytes.ReplaceAll(m.Body, []byte("\r\n"), nil), []byte("\r")) {
			t.Fatalf("message %d has a bare CR or LF", i)
		}
		if !bytes.HasSuffix(m.Body, []byte("\r\n")) {
			t.Errorf("message %d does not end in CRLF", i)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(m.Body))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		h := msg.Header
		if _, err := h.AddressList("From"); err != nil {
			t.Errorf("message %d: From %q: %v", i, h.Get("From"), err)
		}
		if _, err := h.AddressList("To"); err != nil {
			t.Errorf("message %d: To %q: %v", i, h.Get("To"), err)
		}
		sent, err := h.Date()
		if err != nil {
			t.Errorf("message %d: Date: %v", i, err)
		} else if m.Date.Before(sent) || m.Date.Sub(sent) > 10*time.Minute {
			t.Errorf("message %d: INTERNALDATE %v not within 10 minutes after Date %v", i, m.Date, sent)
		}
		if m.Date.After(corpusEpoch.Add(10*time.Minute)) || m.Date.Before(corpusEpoch.Add(-corpusSpan)) || m.Date.Nanosecond() != 0 {
			t.Errorf("message %d: INTERNALDATE %v outside the corpus span or not whole seconds", i, m.Date)
		}
		subject, err := dec.DecodeHeader(h.Get("Subject"))
		if err != nil || subject == "" {
			t.Errorf("message %d: Subject %q: %q, %v", i, h.Get("Subject"), subject, err)
		}
		if !isASCII(subject) {
			nonASCIISubject++
		}
		ctype, params, err := mime.ParseMediaType(h.Get("Content-Type"))
		if err != nil {
			t.Errorf("message %d: Content-Type: %v", i, err)
		}
		if ctype == "multipart/mixed" {
			multipart++
			if !strings.Contains(string(m.Body), "\r\n--"+params["boundary"]+"--\r\n") {
				t.Errorf("message %d: no closing boundary", i)
			}
		} else {
			text, _ := io.ReadAll(msg.Body)
			if len(text) < 1024 || len(text) > 31*1024 {
				t.Errorf("message %d: text body of %d bytes, want 1–30 KB", i, len(text))
			}
			if params["charset"] == "utf-8" {
				utf8Body++
			}
		}
		if !slices.IsSorted(m.Flags) {
			t.Errorf("message %d: flags %q not sorted", i, m.Flags)
		}
		for _, f := range m.Flags {
			if !slices.Contains(allowed, f) {
				t.Errorf("message %d: unexpected flag %q", i, f)
			}
		}
		if slices.Contains(m.Flags, `\Flagged`) {
			flagged++
		}
		if m.UID != 0 {
			t.Errorf("message %d: UID %d, want 0", i, m.UID)
		}
	}
	// Each kind is drawn with probability of at least 1 in 16; with 600
	// messages none of them can plausibly be missing.
	for what, n := range map[string]int{"multipart": multipart, "non-ASCII subjects": nonASCIISubject, "UTF-8 bodies": utf8Body, `\Flagged`: flagged} {
		if n == 0 {
			t.Errorf("no %s among %d messages", what, len(msgs))
		}
	}
}
