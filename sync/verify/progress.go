package verify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Progress remembers the messages whose content a deep run found the same
// on both sides, until a deep run completes. It is called from the
// goroutine running Account.
type Progress interface {
	// Verified reports whether an earlier deep run matched e: the same
	// message (mailbox, UIDVALIDITY, UID) with the same local file (key,
	// size, mtime).
	Verified(e Entry) bool
	// Record notes that e's content matched. A record lost in a crash
	// costs one fetch on the next run, nothing else.
	Record(e Entry) error
	// Done forgets every record: a deep run covered everything, and the
	// next one starts afresh.
	Done() error
}

// Entry identifies one message whose content was verified, and the state
// of its local file then, so that a file changed since is verified again.
type Entry struct {
	Mailbox     string           `json:"mailbox"`
	UIDValidity mail.UIDValidity `json:"uidvalidity"`
	UID         mail.UID         `json:"uid"`
	Key         string           `json:"key"`
	Size        int64            `json:"size"`     // CRLF size of the local file
	ModTime     int64            `json:"mtime_ns"` // the local file's mtime
}

// ProgressFile is a Progress kept in a file of its own, one JSON object
// per line, appended as messages are verified. It is the only thing
// verify writes. A line cut short by a crash is ignored.
type ProgressFile struct {
	path string
	done map[Entry]bool
	f    *os.File // opened on the first Record
}

// OpenProgress reads the progress file at path; a missing file is an
// empty record. The file is created, 0600, on the first Record.
func OpenProgress(path string) (*ProgressFile, error) {
	p := &ProgressFile{path: path, done: map[Entry]bool{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read verify progress: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var e Entry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			p.done[e] = true
		}
	}
	return p, nil
}

// Len is the number of messages recorded.
func (p *ProgressFile) Len() int { return len(p.done) }

// Verified implements Progress.
func (p *ProgressFile) Verified(e Entry) bool { return p.done[e] }

// Record implements Progress. Each record is one write of a whole line;
// it is not fsynced.
func (p *ProgressFile) Record(e Entry) error {
	if p.f == nil {
		f, err := os.OpenFile(p.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("record verify progress: %w", err)
		}
		// A line a crash cut short must not swallow the next one.
		if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
			last := make([]byte, 1)
			if r, err := os.Open(p.path); err == nil {
				r.ReadAt(last, fi.Size()-1)
				r.Close()
			}
			if last[0] != '\n' {
				f.Write([]byte{'\n'})
			}
		}
		p.f = f
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := p.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("record verify progress: %w", err)
	}
	p.done[e] = true
	return nil
}

// Done implements Progress: it removes the file.
func (p *ProgressFile) Done() error {
	p.Close()
	p.done = map[Entry]bool{}
	if err := os.Remove(p.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("forget verify progress: %w", err)
	}
	return nil
}

// Close closes the file; the records stay.
func (p *ProgressFile) Close() error {
	if p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	return err
}
