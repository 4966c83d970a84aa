package maildir

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/textproto"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Delivered describes a message written by Deliver.
type Delivered struct {
	Key       string // the file name before ":2,"
	Name      string // base name, e.g. "1732570000.M123P45Q6R9f3a.host:2,S"
	Subdir    string // "new" or "cur"
	Size      int64  // bytes written locally (after CRLF→LF)
	MessageID string // Message-ID header value (e.g. "<a@b>"), "" if none
}

// deliverChunk is how much of the message is read at a time; ctx is
// checked between chunks.
const deliverChunk = 64 << 10

// Deliver streams r into a new message file, following the Maildir
// delivery protocol (https://cr.yp.to/proto/maildir.html): the file is
// created in tmp/ under a new unique key with mode 0600 (set explicitly,
// whatever the umask), written with each CRLF turned into LF (bare CRs and
// bare LFs are kept, nothing else changes, and the message is never held
// whole in memory), its mtime and atime set to date (left alone when date
// is zero), fsynced, and renamed into new/ when flags lacks \Seen or cur/
// when it has it, named "<key>:2,<letters>"; that directory is then
// fsynced. Only when Deliver returns nil is the message durable.
//
// The Message-ID header is read from the first 256 KiB of the header while
// streaming; a missing or broken header gives "".
//
// If r fails, ctx is cancelled, or any step fails, the tmp file is removed
// and nothing appears in new/ or cur/. ctx is checked between chunks of r.
func (d Dir) Deliver(ctx context.Context, r io.Reader, flags mail.Flags, date time.Time) (Delivered, error) {
	return d.DeliverKey(ctx, NewKey(), r, flags, date)
}

// DeliverKey is Deliver under a key the caller chose (from NewKey): a
// caller that records its intent before delivering can then find the
// file after a crash.
func (d Dir) DeliverKey(ctx context.Context, key string, r io.Reader, flags mail.Flags, date time.Time) (Delivered, error) {
	return d.deliver(ctx, key, r, flags, date, true)
}

// DeliverKeyLazy is DeliverKey without the final directory fsync: the
// message is complete in new/ or cur/ but its name is durable only after
// SyncDirs. A caller that delivers a batch pays one directory fsync for
// all of it, and must not record the messages anywhere before SyncDirs
// returns.
func (d Dir) DeliverKeyLazy(ctx context.Context, key string, r io.Reader, flags mail.Flags, date time.Time) (Delivered, error) {
	return d.deliver(ctx, key, r, flags, date, false)
}

// SyncDirs makes the entries of new/ and cur/ durable.
func (d Dir) SyncDirs() error {
	// cur/ first: a lazy rename from new/ to cur/ must not lose its new
	// name while the old one's removal is durable.
	for _, sub := range []string{subCur, subNew} {
		if err := syncDir(d.disk(), filepath.Join(d.Path, sub)); err != nil {
			return err
		}
	}
	return nil
}

func (d Dir) deliver(ctx context.Context, key string, r io.Reader, flags mail.Flags, date time.Time, syncDirNow bool) (Delivered, error) {
	st, err := d.Stage(ctx, key, r, flags, date)
	if err != nil {
		return Delivered{}, err
	}
	return st.commit(syncDirNow)
}

// Staged is a message written to tmp/, neither durable nor in new/ or cur/
// yet: Commit finishes its delivery, Abort removes it. Staging lets a
// caller read the next message from the network while this one's fsync
// runs, so that the file system commits many together.
type Staged struct {
	d     Dir
	fsys  FS
	f     File
	tmp   string
	key   string
	flags mail.Flags
	size  int64
	id    string
	ended bool
	// linked: tmp is a hard link to a durable file (StageLink); f is nil.
	linked bool
}

// Stage writes a message (CRLF read as LF) under key into tmp/, with
// mtime date, as Deliver does, without its fsync and its rename. On error
// nothing is left behind.
func (d Dir) Stage(ctx context.Context, key string, r io.Reader, flags mail.Flags, date time.Time) (*Staged, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("deliver to %s: %w", d.Path, err)
	}
	if !validKey(key) {
		return nil, fmt.Errorf("deliver to %s: invalid key %q: %w", d.Path, key, fs.ErrInvalid)
	}
	fsys := d.disk()
	tmp := filepath.Join(d.Path, subTmp, key)
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("deliver to %s: %w", d.Path, err)
	}
	st := &Staged{d: d, fsys: fsys, f: f, tmp: tmp, key: key, flags: flags}
	// The umask may have removed bits from the mode given to OpenFile.
	if err := f.Chmod(0o600); err != nil {
		st.Abort()
		return nil, fmt.Errorf("deliver to %s: %w", d.Path, err)
	}
	sniff := &headerSniffer{}
	if st.size, err = copyLF(ctx, io.MultiWriter(f, sniff), r); err != nil {
		st.Abort()
		return nil, fmt.Errorf("deliver to %s: %w", d.Path, err)
	}
	st.id = sniff.messageID()
	if !date.IsZero() {
		// Before the fsync, so the date is durable too. Mail readers
		// show and sort by mtime; it carries the IMAP INTERNALDATE.
		if err := fsys.Chtimes(tmp, date, date); err != nil {
			st.Abort()
			return nil, fmt.Errorf("deliver to %s: %w", d.Path, err)
		}
	}
	return st, nil
}

// MessageID is the staged message's Message-ID header, "" if none.
func (st *Staged) MessageID() string { return st.id }

// Commit fsyncs the staged file and moves it into new/ or cur/ by \Seen,
// named "<key>:2,<letters>", without the directory fsync: its name is
// durable only after SyncDirs, and nothing may record it before. On
// error the file is removed. It may run on another goroutine than Stage.
func (st *Staged) Commit() (Delivered, error) { return st.commit(false) }

func (st *Staged) commit(syncDirNow bool) (Delivered, error) {
	if st.ended {
		return Delivered{}, fmt.Errorf("deliver to %s: %s already ended", st.d.Path, st.key)
	}
	st.ended = true
	renamed := false
	defer func() {
		if !renamed {
			_ = st.fsys.Remove(st.tmp)
		}
	}()
	// A link's file is durable already (StageLink); only its new name
	// is to be made so.
	if !st.linked {
		if err := st.f.Sync(); err != nil {
			_ = st.f.Close()
			return Delivered{}, fmt.Errorf("deliver to %s: fsync: %w", st.d.Path, err)
		}
		if err := st.f.Close(); err != nil {
			return Delivered{}, fmt.Errorf("deliver to %s: %w", st.d.Path, err)
		}
	}
	sub := subNew
	if st.flags.Has(mail.FlagSeen) {
		sub = subCur
	}
	name := st.key + infoSep + InfoFromFlags(st.flags)
	dst := filepath.Join(st.d.Path, sub, name)
	if err := st.fsys.Rename(st.tmp, dst); err != nil {
		return Delivered{}, fmt.Errorf("deliver to %s: %w", st.d.Path, err)
	}
	renamed = true
	if syncDirNow {
		if err := syncDir(st.fsys, filepath.Join(st.d.Path, sub)); err != nil {
			// Not known to be durable: take it back, so the caller's
			// retry cannot leave two copies.
			_ = st.fsys.Remove(dst)
			return Delivered{}, fmt.Errorf("deliver to %s: %w", st.d.Path, err)
		}
	}
	return Delivered{Key: st.key, Name: name, Subdir: sub, Size: st.size, MessageID: st.id}, nil
}

// Abort removes a staged message that is not to be delivered.
func (st *Staged) Abort() {
	if st.ended {
		return
	}
	st.ended = true
	if st.f != nil {
		_ = st.f.Close()
	}
	_ = st.fsys.Remove(st.tmp)
}

// chunks holds copyLF's buffers for reuse: the first sync of a mailbox
// of 100,000 small messages would otherwise allocate a chunk for each
// and keep the garbage collector busy reclaiming them.
var chunks = sync.Pool{New: func() any { return new([deliverChunk]byte) }}

// copyLF copies r to w with CRLF turned into LF, checking ctx before each
// chunk, and returns the number of bytes written to w.
func copyLF(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	cw := &countWriter{w: w}
	lf := NewLFWriter(cw)
	chunk := chunks.Get().(*[deliverChunk]byte)
	defer chunks.Put(chunk)
	buf := chunk[:]
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := lf.Write(buf[:n]); err != nil {
				return 0, fmt.Errorf("write: %w", err)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return 0, fmt.Errorf("read message: %w", rerr)
		}
	}
	if err := lf.Close(); err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	return cw.n, nil
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// maxHeader bounds the header kept for sniffing the Message-ID.
const maxHeader = 256 << 10

// headerSniffer keeps the start of the message, up to the empty line that
// ends the header (RFC 5322 §2.1) or maxHeader bytes. It sees the message
// after CRLF→LF, and never fails a Write.
type headerSniffer struct {
	buf       []byte
	done      bool // no more bytes are wanted
	truncated bool // the header went on past maxHeader
}

func (s *headerSniffer) Write(p []byte) (int, error) {
	n := len(p)
	if s.done {
		return n, nil
	}
	from := max(len(s.buf)-1, 0) // "\n\n" may straddle two Writes
	if room := maxHeader - len(s.buf); len(p) > room {
		p = p[:room]
	}
	s.buf = append(s.buf, p...)
	if len(s.buf) > 0 && s.buf[0] == '\n' {
		s.buf, s.done = s.buf[:0], true // empty header
		return n, nil
	}
	if i := bytes.Index(s.buf[from:], []byte("\n\n")); i >= 0 {
		s.buf, s.done = s.buf[:from+i+1], true
		return n, nil
	}
	if len(s.buf) >= maxHeader {
		s.done, s.truncated = true, true
	}
	return n, nil
}

// messageID returns the unfolded, trimmed value of the first Message-ID
// field (RFC 5322 §3.6.4), or "" if there is none or the header cannot be
// parsed.
func (s *headerSniffer) messageID() string {
	h := s.buf
	if s.truncated {
		// The last field may be cut short, maybe inside a folded value:
		// keep only the fields that are known to be complete, those
		// followed by the start of another field.
		end := -1
		for i := len(h) - 2; i >= 0; i-- {
			if h[i] == '\n' && h[i+1] != ' ' && h[i+1] != '\t' {
				end = i + 1
				break
			}
		}
		if end < 0 {
			return ""
		}
		h = h[:end]
	}
	// A message may end inside its header (no empty line, maybe no final
	// newline); the appended newlines end the last field and the header.
	tr := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(h), bytes.NewReader([]byte("\n\n")))))
	hdr, err := tr.ReadMIMEHeader()
	if err != nil {
		return ""
	}
	return hdr.Get("Message-Id")
}
