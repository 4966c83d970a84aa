package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/satchel-mail/satchel/store"
)

// The identity file ties a Maildir root to its index: the root holds a
// random id in identityFile, the index the same id under metaMaildirID.
// Without it an empty directory where the Maildir should be (a disk that
// is not mounted, a mistyped path) would read as every message deleted,
// and a sync would delete them all on the server.
const (
	identityFile  = ".satchel-id"
	metaMaildirID = "maildir_id"
)

// Errors of the identity check; both refuse the account (exit 4).
var (
	errMaildirMissing  = errors.New("the Maildir is not there")
	errMaildirMismatch = errors.New("the Maildir belongs to another index")
)

// identity is the content of the identity file.
type identity struct {
	ID      string
	Account string // for people reading the file; not compared
}

// checkIdentity makes sure the Maildir root at root is the one the index
// was synced with, before the engine reads it:
//
//   - a root whose identity file names another id is refused;
//   - a root without one, while the index holds mailboxes, is refused —
//     unless the index was written before identity files existed (no id
//     recorded) and the root holds at least one of its folders: then, as
//     on a first sync, both are given a new id;
//   - otherwise a missing file or id is written (the root is created if
//     needed), unless write is false (a dry run), which only checks.
//
// A refusal changes nothing: no directory, no file, no index row.
func checkIdentity(ctx context.Context, ix *store.Index, root, account string, write bool) error {
	if write {
		// A run killed while writing the identity file leaves its
		// temporary file behind; nothing else uses the name.
		if stale, _ := filepath.Glob(filepath.Join(root, identityFile+".tmp*")); len(stale) > 0 {
			for _, p := range stale {
				os.Remove(p)
			}
		}
	}
	indexID, indexHas, err := ix.Meta(ctx, metaMaildirID)
	if err != nil {
		return err
	}
	file, fileHas, err := readIdentity(root)
	if err != nil {
		return err
	}
	switch {
	case fileHas && indexHas && file.ID != indexID:
		return fmt.Errorf("%w: %s in %s says %s (account %q), the index %s expects %s; nothing was changed. Check accounts.maildir and accounts.index in the configuration",
			errMaildirMismatch, identityFile, root, file.ID, file.Account, ix.Path(), indexID)
	case fileHas && indexHas:
		return nil
	case fileHas:
		// A new index (deleted to start afresh) or one written before
		// identity files: the root's id is taken.
		if !write {
			return nil
		}
		return ix.SetMeta(ctx, metaMaildirID, file.ID)
	}
	mbs, err := ix.Mailboxes(ctx)
	if err != nil {
		return err
	}
	if len(mbs) > 0 && (indexHas || !holdsAnyFolder(root, mbs)) {
		return fmt.Errorf("%w: %s has no %s, yet the index %s has %d mailboxes synced with it. An unmounted disk or a mistyped path would look like every message deleted; nothing was changed. Check accounts.maildir and that its disk is mounted; if the mail there is really gone and should be downloaded again, move the index away",
			errMaildirMissing, root, identityFile, ix.Path(), len(mbs))
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
	if err := writeIdentity(root, identity{ID: id, Account: account}); err != nil {
		return err
	}
	if indexHas {
		return nil
	}
	return ix.SetMeta(ctx, metaMaildirID, id)
}

// holdsAnyFolder reports whether root holds the Maildir folder of at least
// one of the index's mailboxes.
func holdsAnyFolder(root string, mbs []store.Mailbox) bool {
	for _, mb := range mbs {
		fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(mb.LocalPath), "cur"))
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

// readIdentity reads root's identity file; false if there is none (or no
// root).
func readIdentity(root string) (identity, bool, error) {
	path := filepath.Join(root, identityFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return identity{}, false, nil
	}
	if err != nil {
		return identity{}, false, fmt.Errorf("read the Maildir's identity: %w", err)
	}
	var id identity
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
		return identity{}, false, fmt.Errorf("%w: %s holds no id; nothing was changed. Check accounts.maildir, or remove the file if it is not satchel's", errMaildirMismatch, path)
	}
	return id, true, nil
}

// writeIdentity writes root's identity file durably: a temporary file,
// fsynced, renamed into place, and the directory fsynced.
func writeIdentity(root string, id identity) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("create the Maildir root: %w", err)
	}
	content := fmt.Sprintf("# satchel: this Maildir is synced with the index that holds this id. Keep this file.\nid: %s\naccount: %s\n", id.ID, id.Account)
	f, err := os.CreateTemp(root, identityFile+".tmp*") // mode 0600
	if err != nil {
		return fmt.Errorf("write the Maildir's identity: %w", err)
	}
	tmp := f.Name()
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(root, identityFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the Maildir's identity: %w", err)
	}
	d, err := os.Open(root)
	if err != nil {
		return fmt.Errorf("write the Maildir's identity: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write the Maildir's identity: sync %s: %w", root, err)
	}
	return nil
}
