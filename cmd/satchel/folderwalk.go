package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/maildir"
)

// walkFolders lists the Maildir folders below root: the directories that
// hold cur/ and new/, relative to root and "/"-separated, sorted. Hidden
// directories (a leading ".", which no mailbox's folder has) and the
// insides of cur/, new/ and tmp/ are skipped. A missing root has none.
func walkFolders(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if !d.IsDir() || p == root {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") {
			return fs.SkipDir
		}
		if (name == "cur" || name == "new" || name == "tmp") && isFolder(filepath.Dir(p)) {
			return fs.SkipDir
		}
		if isFolder(p) {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the folders of %s: %w", root, err)
	}
	slices.Sort(out)
	return out, nil
}

// layoutFolders lists the Maildir folders of root where its layout puts
// them, relative to root and "/"-separated, sorted: every folder below it
// in a nested layout (see walkFolders); in Maildir++ the root itself ("",
// INBOX) when it is a folder and the folders directly below it whose
// names start with ".". Unlike Root.Folders, it keeps the folders whose
// names the layout cannot decode, for the caller to report. A missing
// root has none.
func layoutFolders(root maildir.Root) ([]string, error) {
	if root.Layout == nil || root.Layout.Nested() {
		return walkFolders(root.Dir)
	}
	ents, err := os.ReadDir(root.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the folders of %s: %w", root.Dir, err)
	}
	var out []string
	if isFolder(root.Dir) {
		out = append(out, "")
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") && isFolder(filepath.Join(root.Dir, e.Name())) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// folderLabel names a folder, relative to its Maildir root, in a message:
// the root itself (Maildir++'s INBOX) is ".".
func folderLabel(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

// isFolder reports whether the directory p is a Maildir folder.
func isFolder(p string) bool {
	for _, sub := range []string{"cur", "new"} {
		if fi, err := os.Stat(filepath.Join(p, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// readFolder is a Maildir folder that can also be read as stored, for
// satchel verify.
type readFolder struct{ maildir.Folder }

// Open opens key's file as stored (LF line endings).
func (f readFolder) Open(key string) (io.ReadCloser, error) {
	e, ok, err := f.Dir.Find(key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("open %q in %s: %w", key, f.Dir.Path, fs.ErrNotExist)
	}
	return os.Open(e.Path(f.Dir))
}
