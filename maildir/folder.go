package maildir

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Root is an account's Maildir root: every mailbox is a folder below it.
type Root struct{ Dir string }

// Path maps a mailbox's hierarchy levels to its folder, relative to the
// root (see EncodeName).
func (r Root) Path(levels []string) (string, error) { return EncodeName(levels) }

// Folder opens the folder at a path relative to the root.
func (r Root) Folder(rel string) Folder {
	return Folder{Dir{Path: filepath.Join(r.Dir, filepath.FromSlash(rel))}}
}

// MkdirAll creates a plain directory below the root: a hierarchy level
// that holds no messages.
func (r Root) MkdirAll(rel string) error {
	return os.MkdirAll(filepath.Join(r.Dir, filepath.FromSlash(rel)), 0o700)
}

// Folder presents a Dir with the method set of the sync engine's folder:
// only satchel's value types cross it.
type Folder struct{ Dir Dir }

// Init creates the folder if missing.
func (f Folder) Init() error { return f.Dir.Init() }

// Deliver writes a message durably; see Dir.Deliver.
func (f Folder) Deliver(ctx context.Context, body io.Reader, flags mail.Flags, date time.Time) (key, messageID string, err error) {
	d, err := f.Dir.Deliver(ctx, body, flags, date)
	if err != nil {
		return "", "", err
	}
	return d.Key, d.MessageID, nil
}

// Find returns the flags of key's file.
func (f Folder) Find(key string) (mail.Flags, bool, error) {
	e, ok, err := f.Dir.Find(key)
	return e.Flags, ok, err
}

// SetFlags renames key's file to carry flags.
func (f Folder) SetFlags(key string, flags mail.Flags) error {
	_, err := f.Dir.SetFlags(key, flags)
	return err
}

// Remove deletes key's file; a file already gone is not an error, so that
// a step retried after a crash succeeds.
func (f Folder) Remove(key string) error {
	if err := f.Dir.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Count is the number of messages in the folder; a folder not created yet
// has none.
func (f Folder) Count() (int, error) {
	n, err := f.Dir.Count()
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return n, err
}
