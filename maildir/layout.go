package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
)

// Layout maps mailbox names to folders below an account's root, and back.
// Encode receives the hierarchy levels of a name (INBOX alone is the
// single level "INBOX"); Decode is its inverse and rejects every path
// Encode cannot produce. Nested reports whether a hierarchy level is a
// directory holding its children, so that a \Noselect level is a plain
// directory.
type Layout interface {
	Name() string
	Encode(levels []string) (string, error)
	Decode(rel string) ([]string, error)
	Nested() bool
}

// Verbatim is the default layout: mailbox A/B is the folder A/B, INBOX is
// INBOX (see EncodeName).
var Verbatim Layout = verbatim{}

// MaildirPlusPlus is the Maildir++ layout of Courier and Dovecot: INBOX is
// the root itself, and mailbox A/B is the folder ".A.B" directly below it.
// Each level is escaped as EncodeComponent escapes it (without cutting a
// long level), and "." is escaped too, as "%2E", so that the levels can be
// told apart. A folder name longer than 255 bytes fails with
// ErrNameTooLong.
var MaildirPlusPlus Layout = maildirPP{}

// LayoutByName returns the layout called name ("verbatim" or "maildir++");
// "" is Verbatim.
func LayoutByName(name string) (Layout, error) {
	switch name {
	case "", "verbatim":
		return Verbatim, nil
	case "maildir++":
		return MaildirPlusPlus, nil
	}
	return nil, fmt.Errorf("unknown Maildir layout %q", name)
}

type verbatim struct{}

func (verbatim) Name() string                           { return "verbatim" }
func (verbatim) Encode(levels []string) (string, error) { return EncodeName(levels) }
func (verbatim) Decode(rel string) ([]string, error)    { return DecodeName(rel) }
func (verbatim) Nested() bool                           { return true }

type maildirPP struct{}

func (maildirPP) Name() string { return "maildir++" }
func (maildirPP) Nested() bool { return false }

func (maildirPP) Encode(levels []string) (string, error) {
	if len(levels) == 0 {
		return "", errors.New("encode mailbox name: no levels")
	}
	if len(levels) == 1 && levels[0] == "INBOX" {
		return "", nil
	}
	var b strings.Builder
	for _, l := range levels {
		b.WriteByte('.')
		b.WriteString(escapeFlat(l))
		if b.Len() > maxElem {
			return "", fmt.Errorf("encode mailbox name (over %d bytes): %w", maxElem, ErrNameTooLong)
		}
	}
	return b.String(), nil
}

func (l maildirPP) Decode(rel string) ([]string, error) {
	if rel == "" {
		return []string{"INBOX"}, nil
	}
	if len(rel) > maxElem {
		return nil, fmt.Errorf("decode mailbox path (%d bytes): %w", len(rel), ErrNameTooLong)
	}
	if !strings.HasPrefix(rel, ".") {
		return nil, fmt.Errorf("decode mailbox path %q: a Maildir++ folder starts with \".\"", rel)
	}
	var levels []string
	for _, part := range strings.Split(rel[1:], ".") {
		lv, err := unescape([]string{part})
		if err != nil {
			return nil, fmt.Errorf("decode mailbox path %q: %w", rel, err)
		}
		levels = append(levels, lv)
	}
	if enc, err := l.Encode(levels); err != nil || enc != rel {
		return nil, fmt.Errorf("decode mailbox path %q: not in canonical form", rel)
	}
	return levels, nil
}

// escapeFlat escapes one level as EncodeComponent does, never cut into
// chunks, with "." escaped as well (appendUnit never writes a "." of its
// own: an escape is "%" and two hex digits).
func escapeFlat(level string) string {
	if level == "" {
		return "%"
	}
	return strings.ReplaceAll(string(escapeLevel(level)), ".", "%2E")
}

// layout returns r's layout, Verbatim when unset.
func (r Root) layout() Layout {
	if r.Layout == nil {
		return Verbatim
	}
	return r.Layout
}

// LocalFolder is a folder found below the root: its path relative to the
// root and the mailbox levels it decodes to.
type LocalFolder struct {
	Rel    string
	Levels []string
}

// Folders lists the folders below the root (see AllFolders) whose names
// the root's layout can decode, sorted by path.
func (r Root) Folders() ([]LocalFolder, error) {
	rels, err := r.AllFolders()
	if err != nil {
		return nil, err
	}
	var out []LocalFolder
	for _, rel := range rels {
		if levels, err := r.layout().Decode(rel); err == nil {
			out = append(out, LocalFolder{Rel: rel, Levels: levels})
		}
	}
	return out, nil
}

// AllFolders lists the folders below the root (directories holding cur/
// and new/) where its layout puts them, relative to the root and
// "/"-separated, sorted, whether the layout can decode their names or not
// (a restore reports those it cannot). Hidden directories are skipped in
// the verbatim layout (no folder of it starts with "."); in Maildir++ the
// root itself is INBOX and every folder is a "." directory directly below
// it. A missing root has no folders.
func (r Root) AllFolders() ([]string, error) {
	fsys := r.disk()
	var out []string
	var walk func(dir, rel string) error
	walk = func(dir, rel string) error {
		ents, err := readDir(fsys, dir)
		if err != nil {
			if rel == "" && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if isFolderDir(fsys, dir) {
			if rel != "" || !r.layout().Nested() {
				out = append(out, rel)
			}
		}
		for _, e := range ents {
			name := e.Name()
			if !e.IsDir() || name == subCur || name == subNew || name == subTmp {
				continue
			}
			child := filepath.Join(dir, name)
			childRel := name
			if rel != "" {
				childRel = rel + "/" + name
			}
			if !r.layout().Nested() {
				if rel == "" && strings.HasPrefix(name, ".") && isFolderDir(fsys, child) {
					out = append(out, name)
				}
				continue
			}
			if strings.HasPrefix(name, ".") {
				continue
			}
			if err := walk(child, childRel); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(r.Dir, ""); err != nil {
		return nil, fmt.Errorf("list the folders of %s: %w", r.Dir, err)
	}
	slices.Sort(out)
	return out, nil
}

func readDir(fsys FS, dir string) ([]fs.DirEntry, error) {
	f, err := open(fsys, dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// isFolderDir reports whether dir holds cur/ and new/.
func isFolderDir(fsys FS, dir string) bool {
	for _, sub := range []string{subCur, subNew} {
		if fi, err := fsys.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}
