package maildir

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"pgregory.net/rapid"
)

func TestLFWriter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a\r\nb\r\n", "a\nb\n"},
		{"a\nb\n", "a\nb\n"},
		{"a\rb", "a\rb"},
		{"\r\r\n", "\r\n"},
		{"\r\n\r\n", "\n\n"},
		{"\r", "\r"},
		{"a\r", "a\r"},
		{"\n\r", "\n\r"},
		{"\r\r\r", "\r\r\r"},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 2, 3, len(tt.in) + 1} {
			var buf bytes.Buffer
			w := NewLFWriter(&buf)
			for in := tt.in; in != ""; {
				n := min(size, len(in))
				if m, err := w.Write([]byte(in[:n])); m != n || err != nil {
					t.Fatalf("Write = %d, %v", m, err)
				}
				in = in[n:]
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("LF(%q) in writes of %d = %q, want %q", tt.in, size, buf.String(), tt.want)
			}
		}
	}
}

func TestLFWriterHoldsTrailingCR(t *testing.T) {
	var buf bytes.Buffer
	w := NewLFWriter(&buf)
	if _, err := w.Write([]byte("a\r")); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "a" {
		t.Errorf("after writing %q: %q, want the CR held back", "a\r", buf.String())
	}
	if err := w.(interface{ Flush() error }).Flush(); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "a\r" {
		t.Errorf("after Flush: %q, want %q", buf.String(), "a\r")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errBoom }

func TestLFWriterErrorSticks(t *testing.T) {
	w := NewLFWriter(failWriter{})
	if _, err := w.Write([]byte("x")); !errors.Is(err, errBoom) {
		t.Fatalf("Write: %v, want %v", err, errBoom)
	}
	if _, err := w.Write([]byte("\r")); !errors.Is(err, errBoom) {
		t.Errorf("second Write: %v, want %v", err, errBoom)
	}
	if err := w.Close(); !errors.Is(err, errBoom) {
		t.Errorf("Close: %v, want %v", err, errBoom)
	}
}

func TestCRLFReader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"\r", "\r"},
		{"a\r\r\n", "a\r\r\n"},
		{"\n\r\n\r", "\r\n\r\n\r"},
	}
	for _, tt := range tests {
		got, err := io.ReadAll(NewCRLFReader(strings.NewReader(tt.in)))
		if err != nil || string(got) != tt.want {
			t.Errorf("CRLF(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		// CR and LF in different reads, and a caller reading one byte
		// at a time.
		r := iotest.OneByteReader(NewCRLFReader(iotest.OneByteReader(strings.NewReader(tt.in))))
		got, err = io.ReadAll(r)
		if err != nil || string(got) != tt.want {
			t.Errorf("CRLF(%q) byte by byte = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if err := iotest.TestReader(NewCRLFReader(strings.NewReader(tt.in)), []byte(tt.want)); err != nil {
			t.Errorf("CRLF(%q): %v", tt.in, err)
		}
	}
}

func TestCRLFReaderPassesErrors(t *testing.T) {
	r := NewCRLFReader(io.MultiReader(strings.NewReader("a\n"), iotest.ErrReader(errBoom)))
	got, err := io.ReadAll(r)
	if !errors.Is(err, errBoom) || string(got) != "a\r\n" {
		t.Errorf("ReadAll = %q, %v; want %q, %v", got, err, "a\r\n", errBoom)
	}
}

// genText draws strings rich in CR and LF, sometimes arbitrary bytes.
func genText() *rapid.Generator[string] {
	return rapid.OneOf(
		rapid.Map(rapid.SliceOf(rapid.SampledFrom([]byte("\r\na"))), func(b []byte) string { return string(b) }),
		rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) }),
	)
}

// genCuts draws sorted cut points of a string of length n.
func genCuts(t *rapid.T, n int) []int {
	cuts := rapid.SliceOf(rapid.IntRange(0, n)).Draw(t, "cuts")
	slices.Sort(cuts)
	return append(cuts, n)
}

func TestLFWriterProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genText().Draw(t, "s")
		var buf bytes.Buffer
		w := NewLFWriter(&buf)
		prev := 0
		for _, c := range genCuts(t, len(s)) {
			if _, err := w.Write([]byte(s[prev:c])); err != nil {
				t.Fatal(err)
			}
			prev = c
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if want := strings.ReplaceAll(s, "\r\n", "\n"); buf.String() != want {
			t.Fatalf("LF(%q) = %q, want %q", s, buf.String(), want)
		}
	})
}

// chunkReader returns the chunks of a string one per Read.
type chunkReader struct{ chunks []string }

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

func TestCRLFReaderProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genText().Draw(t, "s")
		var chunks []string
		prev := 0
		for _, c := range genCuts(t, len(s)) {
			chunks = append(chunks, s[prev:c])
			prev = c
		}
		r := NewCRLFReader(&chunkReader{chunks: chunks})
		var out []byte
		bufSize := rapid.IntRange(1, 8).Draw(t, "bufSize")
		buf := make([]byte, bufSize)
		for {
			n, err := r.Read(buf)
			out = append(out, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range out {
			if c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("CRLF(%q) = %q has a bare LF at %d", s, out, i)
			}
		}
		// Only CRs are added, and exactly before bare LFs.
		var want []byte
		for i := 0; i < len(s); i++ {
			if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
				want = append(want, '\r')
			}
			want = append(want, s[i])
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("CRLF(%q) = %q, want %q", s, out, want)
		}
		// Storing an upload's form again gives the stored form.
		var back bytes.Buffer
		w := NewLFWriter(&back)
		if _, err := w.Write(out); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if lf := strings.ReplaceAll(s, "\r\n", "\n"); back.String() != lf {
			t.Fatalf("LF(CRLF(%q)) = %q, want %q", s, back.String(), lf)
		}
	})
}
