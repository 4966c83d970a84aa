package crashtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// localMsg is one message file of the Maildir.
type localMsg struct {
	mailbox string
	subdir  string // "new" or "cur"
	name    string
	key     string
	flags   flags
	path    string
	body    []byte // only when the view was taken with bodies
	mtime   time.Time
}

// localView is the Maildir as the harness reads it: every message file by
// its X-Crash-ID, and what else lies below the root.
type localView struct {
	byID    map[string][]localMsg
	noID    []localMsg
	folders []string // mailbox names of the folders (directories with cur/, new/, tmp/)
	tmp     []string // files in some tmp/
	strays  []string // files that are in no cur/, new/ or tmp/, and odd names in cur/ or new/
	// empty are directories that neither are nor hold a folder (files in
	// them are strays): what a folder removal cut short leaves.
	empty []string
}

// scanLocal reads the Maildir below the root.
func (w *world) scanLocal(withBodies bool) (localView, error) {
	v := localView{byID: map[string][]localMsg{}}
	if _, err := os.Stat(w.root); os.IsNotExist(err) {
		return v, nil
	}
	var plain []string // directories that are no folder, nor part of one
	err := filepath.WalkDir(w.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(w.root, path)
		parent := filepath.Base(filepath.Dir(path))
		inFolderPart := path != w.root && (parent == "cur" || parent == "new" || parent == "tmp") && isFolder(filepath.Dir(filepath.Dir(path)))
		if d.IsDir() {
			if isFolder(path) && path != w.root {
				v.folders = append(v.folders, filepath.ToSlash(rel))
				return nil
			}
			if inFolderPart {
				v.strays = append(v.strays, rel+"/ (a directory)")
				return fs.SkipDir
			}
			sub := d.Name() == "cur" || d.Name() == "new" || d.Name() == "tmp"
			if path != w.root && !(sub && isFolder(filepath.Dir(path))) {
				plain = append(plain, filepath.ToSlash(rel))
			}
			return nil
		}
		switch {
		case rel == identityFile:
			return nil
		case !inFolderPart:
			v.strays = append(v.strays, rel)
			return nil
		case parent == "tmp":
			v.tmp = append(v.tmp, rel)
			return nil
		}
		key, f, ok := splitName(d.Name())
		if !ok || !d.Type().IsRegular() {
			v.strays = append(v.strays, rel)
			return nil
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m := localMsg{
			mailbox: filepath.ToSlash(filepath.Dir(filepath.Dir(rel))), subdir: parent, name: d.Name(),
			key: key, flags: f, path: path, mtime: fi.ModTime(),
		}
		if withBodies {
			m.body = body
		}
		if id := crashID(body); id != "" {
			v.byID[id] = append(v.byID[id], m)
		} else {
			v.noID = append(v.noID, m)
		}
		return nil
	})
	// A directory that is no folder is a level above folders; one that
	// holds none is what is left of a folder half removed.
	for _, p := range plain {
		if !slices.ContainsFunc(v.folders, func(f string) bool { return strings.HasPrefix(f, p+"/") }) &&
			!slices.ContainsFunc(v.empty, func(e string) bool { return strings.HasPrefix(p, e+"/") }) {
			v.empty = append(v.empty, p)
		}
	}
	return v, err
}

// identityFile is the file at the Maildir root that ties it to its index
// (cmd/satchel/identity.go); it is satchel's, and the only file it keeps
// at the root.
const identityFile = ".satchel-id"

// isFolder reports whether dir is a Maildir folder.
func isFolder(dir string) bool {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// serverMsg is one message on the server.
type serverMsg struct {
	mailbox string
	uid     uint32
	flags   flags
	date    time.Time
	body    []byte // BODY[] when the view was taken with bodies
}

// serverView is the server as the harness reads it over a connection of
// its own: every message by its X-Crash-ID, and each mailbox's STATUS.
type serverView struct {
	byID      map[string][]serverMsg
	noID      []serverMsg
	mailboxes []string
	// status is each mailbox's MESSAGES, UIDNEXT, UIDVALIDITY and
	// HIGHESTMODSEQ: equal values mean nothing was added, removed or
	// flagged. Dovecot answers HIGHESTMODSEQ even where it hides
	// CONDSTORE.
	status map[string]string
}

// peekServer reads every mailbox with EXAMINE, so reading changes
// nothing: with bodies it fetches BODY.PEEK[], without only the
// X-Crash-ID header field.
//
// Dovecot carries out a command it has read even when the client that
// sent it is killed: right after a kill, a mailbox listed may be gone
// (a DELETE or RENAME still under way) by the time it is read, which
// Dovecot 2.3 refuses with a plain NO. The server is then read again, a
// little later.
func (w *world) peekServer(withBodies bool) (serverView, error) {
	for attempt := 1; ; attempt++ {
		v, err := w.readServer(withBodies)
		var imapErr *imap.Error
		if attempt < 20 && errors.As(err, &imapErr) && imapErr.Type == imap.StatusResponseTypeNo {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		return v, err
	}
}

// readServer is peekServer's one reading of the server.
func (w *world) readServer(withBodies bool) (serverView, error) {
	v := serverView{byID: map[string][]serverMsg{}, status: map[string]string{}}
	conn, err := w.srv.Dial()
	if err != nil {
		return v, err
	}
	c := imapclient.New(conn, nil)
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		return v, fmt.Errorf("greeting: %w", err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return v, fmt.Errorf("list: %w", err)
	}
	for _, l := range list {
		if !slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) && !slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			v.mailboxes = append(v.mailboxes, l.Mailbox)
		}
	}
	slices.Sort(v.mailboxes)
	section := &imap.FetchItemBodySection{Peek: true}
	if !withBodies {
		section = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"X-Crash-ID"}, Peek: true}
	}
	for _, mb := range v.mailboxes {
		st, err := c.Status(mb, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: true}).Wait()
		if err != nil {
			return v, fmt.Errorf("status %q: %w", mb, err)
		}
		v.status[mb] = fmt.Sprintf("MESSAGES %d UIDNEXT %d UIDVALIDITY %d HIGHESTMODSEQ %d", *st.NumMessages, st.UIDNext, st.UIDValidity, st.HighestModSeq)
		sel, err := c.Select(mb, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return v, fmt.Errorf("examine %q: %w", mb, err)
		}
		if sel.NumMessages == 0 {
			continue
		}
		msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{section},
		}).Collect()
		if err != nil {
			return v, fmt.Errorf("fetch %q: %w", mb, err)
		}
		for _, m := range msgs {
			raw := m.FindBodySection(section)
			var fl []string
			for _, f := range m.Flags {
				fl = append(fl, string(f))
			}
			sm := serverMsg{mailbox: mb, uid: uint32(m.UID), flags: newFlags(fl...), date: m.InternalDate}
			if withBodies {
				sm.body = raw
			}
			if id := crashID(raw); id != "" {
				v.byID[id] = append(v.byID[id], sm)
			} else {
				v.noID = append(v.noID, sm)
			}
		}
	}
	c.Logout().Wait()
	return v, nil
}

// where describes the places of a message, for failure messages.
func whereServer(ms []serverMsg) string {
	var s []string
	for _, m := range ms {
		s = append(s, fmt.Sprintf("%s UID %d %s", m.mailbox, m.uid, m.flags))
	}
	return "[" + strings.Join(s, "; ") + "]"
}

func whereLocal(ms []localMsg) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.mailbox+"/"+m.subdir+"/"+m.name)
	}
	return "[" + strings.Join(s, "; ") + "]"
}
