package main

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// localChange is what the "local changes" scenario does to a Maildir, as a
// mail reader would: rename flagShare of the files in cur/ to toggle the F
// (flagged) flag, remove some files and drop new ones into cur/ of the
// folders (drafts, sent copies, mail filed by hand).
type localChange struct {
	flagShare float64
	remove    int
	add       int
}

// mailFiles lists the message files under root: the entries of every
// cur/ and new/, sorted, skipping dot files (sync state, identity files).
func mailFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		if dir := filepath.Base(filepath.Dir(path)); dir == "cur" || dir == "new" {
			files = append(files, path)
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

// changeLocal applies ch to the Maildir at root and returns what it did
// and by how many messages the Maildir grew. folders names the
// folders new files (of sizes sz) may go to, by share. The same seed draws the same
// positions in the sorted file list, so both tools' Maildirs, which hold
// the same mail under different file names, get changes of the same kind
// and size.
func changeLocal(root string, folders []folder, ch localChange, sz sizes, seed uint64) (desc string, delta int, err error) {
	files, err := mailFiles(root)
	if err != nil {
		return "", 0, err
	}
	r := rand.New(rand.NewPCG(seed, 0x10ca1))
	perm := r.Perm(len(files))
	nFlags := int(float64(len(files))*ch.flagShare + 0.5)
	nRemove := min(ch.remove, len(files)-nFlags)
	for _, k := range perm[:nFlags] {
		if err := toggleFlagged(files[k]); err != nil {
			return "", 0, err
		}
	}
	for _, k := range perm[nFlags : nFlags+nRemove] {
		if err := os.Remove(files[k]); err != nil {
			return "", 0, err
		}
	}
	g := newGen(seed, 0x1e7)
	host, _ := os.Hostname()
	for i := 0; i < ch.add; i++ {
		f := pickFolder(r, folders)
		m := g.next(sz)
		dir := filepath.Join(root, f)
		if strings.EqualFold(f, "INBOX") {
			dir = filepath.Join(root, "INBOX")
		}
		name := fmt.Sprintf("%d.M%dP%dQ%d.%s:2,S", time.Now().Unix(), i, os.Getpid(), i, host)
		tmp := filepath.Join(dir, "tmp", name)
		// A Maildir holds mail with LF line ends.
		body := []byte(strings.ReplaceAll(string(m.body), "\r\n", "\n"))
		if err := os.WriteFile(tmp, body, 0o600); err != nil {
			return "", 0, err
		}
		os.Chtimes(tmp, m.date, m.date)
		if err := os.Rename(tmp, filepath.Join(dir, "cur", name)); err != nil {
			return "", 0, err
		}
	}
	return fmt.Sprintf("%d flag renames, %d removed, %d new files", nFlags, nRemove, ch.add), ch.add - nRemove, nil
}

// toggleFlagged renames a message file with F added to or removed from
// the flags after ":2," (kept in ASCII order, as the Maildir convention
// asks). A file in new/ moves to cur/, as a mail reader does.
func toggleFlagged(path string) error {
	dir, name := filepath.Split(path)
	base, info, ok := strings.Cut(name, ":2,")
	var flags []byte
	if ok {
		flags = []byte(info)
	}
	if i := slices.Index(flags, 'F'); i >= 0 {
		flags = slices.Delete(flags, i, i+1)
	} else {
		flags = append(flags, 'F')
		slices.Sort(flags)
	}
	newDir := filepath.Join(filepath.Dir(filepath.Clean(dir)), "cur")
	return os.Rename(path, filepath.Join(newDir, base+":2,"+string(flags)))
}
