package maildir

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
)

// The identity file ties a Maildir root to its index: the root holds a
// random id in IdentityFile, the index the same id under MetaIdentity.
// Without it an empty directory where the Maildir should be (a disk that
// is not mounted, a mistyped path) would read as every message deleted,
// and a sync would delete them all on the server.
const (
	IdentityFile = ".satchel-id"
	MetaIdentity = "maildir_id"
)

// Errors of the identity check: the root is not the index's Maildir.
// Both refuse the account; nothing was changed.
var (
	ErrMissing  = errors.New("the Maildir is not there")
	ErrMismatch = errors.New("the Maildir belongs to another index")
)

// IdentityIndex is what the identity check reads and records in the
// account's index: its key-value meta and its mailboxes. Path names the
// index in an error message.
type IdentityIndex interface {
	Meta(ctx context.Context, key string) (string, bool, error)
	SetMeta(ctx context.Context, key, value string) error
	Mailboxes(ctx context.Context) ([]mail.Mailbox, error)
	Path() string
}

// Identity is the content of the identity file.
type Identity struct {
	ID      string
	Account string // for people reading the file; not compared
}

// CheckIdentity makes sure the root is the Maildir the index was synced
// with, before anything reads it:
//
//   - a root whose identity file names another id is refused;
//   - a root without one, while the index holds mailboxes, is refused —
//     unless the index was written before identity files existed (no id
//     recorded) and the root holds at least one of its folders: then, as
//     on a first sync, both are given a new id;
//   - otherwise a missing file or id is written (the root is created if
//     needed), unless write is false (a dry run, a read-only command),
//     which only checks.
//
// A refusal (ErrMissing, ErrMismatch) changes nothing: no directory, no
// file, no index row.
func (r Root) CheckIdentity(ctx context.Context, ix IdentityIndex, account string, write bool) error {
	if write {
		// A run killed while writing the identity file leaves its
		// temporary file behind; nothing else uses the name.
		r.removeStaleIdentity()
	}
	indexID, indexHas, err := ix.Meta(ctx, MetaIdentity)
	if err != nil {
		return err
	}
	file, fileHas, err := r.ReadIdentity()
	if err != nil {
		return err
	}
	switch {
	case fileHas && indexHas && file.ID != indexID:
		return fmt.Errorf("%w: %s in %s says %s (account %q), the index %s expects %s; nothing was changed. Check accounts.maildir and accounts.index in the configuration",
			ErrMismatch, IdentityFile, r.Dir, file.ID, file.Account, ix.Path(), indexID)
	case fileHas && indexHas:
		return nil
	case fileHas:
		// A new index (deleted to start afresh) or one written before
		// identity files: the root's id is taken.
		if !write {
			return nil
		}
		return ix.SetMeta(ctx, MetaIdentity, file.ID)
	}
	mbs, err := ix.Mailboxes(ctx)
	if err != nil {
		return err
	}
	if len(mbs) > 0 && (indexHas || !r.holdsAnyFolder(mbs)) {
		return fmt.Errorf("%w: %s has no %s, yet the index %s has %d mailboxes synced with it. An unmounted disk or a mistyped path would look like every message deleted; nothing was changed. Check accounts.maildir and that its disk is mounted; if the mail there is really gone and should be downloaded again, move the index away",
			ErrMissing, r.Dir, IdentityFile, ix.Path(), len(mbs))
	}
	if !write {
		return nil
	}
	id := indexID
	if !indexHas {
		if id, err = newIdentityID(); err != nil {
			return err
		}
	}
	if err := r.WriteIdentity(Identity{ID: id, Account: account}); err != nil {
		return err
	}
	if indexHas {
		return nil
	}
	return ix.SetMeta(ctx, MetaIdentity, id)
}

// removeStaleIdentity removes the temporary files of identity files that
// were never renamed into place.
func (r Root) removeStaleIdentity() {
	fsys := r.disk()
	ents, err := readDir(fsys, r.Dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), IdentityFile+".tmp") {
			_ = fsys.Remove(filepath.Join(r.Dir, e.Name()))
		}
	}
}

// holdsAnyFolder reports whether the root holds the folder of at least one
// of the index's mailboxes.
func (r Root) holdsAnyFolder(mbs []mail.Mailbox) bool {
	for _, mb := range mbs {
		fi, err := r.disk().Stat(filepath.Join(r.Dir, filepath.FromSlash(mb.LocalPath), subCur))
		if err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

func newIdentityID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make a Maildir id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ReadIdentity reads the root's identity file; false if there is none (or
// no root). A file without an id is not satchel's: ErrMismatch.
func (r Root) ReadIdentity() (Identity, bool, error) {
	path := filepath.Join(r.Dir, IdentityFile)
	f, err := open(r.disk(), path)
	if errors.Is(err, fs.ErrNotExist) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, fmt.Errorf("read the Maildir's identity: %w", err)
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return Identity{}, false, fmt.Errorf("read the Maildir's identity: %w", err)
	}
	var id Identity
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "id":
			id.ID = strings.TrimSpace(v)
		case "account":
			id.Account = strings.TrimSpace(v)
		}
	}
	if id.ID == "" {
		return Identity{}, false, fmt.Errorf("%w: %s holds no id; nothing was changed. Check accounts.maildir, or remove the file if it is not satchel's", ErrMismatch, path)
	}
	return id, true, nil
}

// WriteIdentity writes the root's identity file durably, creating the
// root if needed: a temporary file (mode 0600), fsynced, renamed into
// place, and the root fsynced.
func (r Root) WriteIdentity(id Identity) error {
	fsys := r.disk()
	if err := makeDirs(fsys, filepath.Clean(r.Dir)); err != nil {
		return fmt.Errorf("create the Maildir root: %w", err)
	}
	content := fmt.Sprintf("# satchel: this Maildir is synced with the index that holds this id. Keep this file.\nid: %s\naccount: %s\n", id.ID, id.Account)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(r.Dir, IdentityFile+".tmp"+hex.EncodeToString(rnd[:]))
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write the Maildir's identity: %w", err)
	}
	// The umask may have removed bits from the mode given to OpenFile.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = io.WriteString(f, content)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, filepath.Join(r.Dir, IdentityFile))
	}
	if err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("write the Maildir's identity: %w", err)
	}
	if err := syncDir(fsys, r.Dir); err != nil {
		return fmt.Errorf("write the Maildir's identity: %w", err)
	}
	return nil
}
