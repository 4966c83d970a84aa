package crashtest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The folder lifecycle under kills: mailboxes renamed and deleted as a
// whole on either side (README, "Folders renamed or deleted"), with
// sync.remove_folders false and true. The model says what a run that is
// never killed leaves; a killed run must come to the same end.

// renameScenario: after a first sync the server renames Archive, and
// Archive/2024 with it, while the user renames the folder Друзья; each
// side files new mail under the old name meanwhile, unaware of the other
// side's rename. Again: both renamed back.
func renameScenario(name, tag string, remove bool) scenario {
	return scenario{name, tag, func(w *world) {
		w.lifecycleWorld(remove)
		w.renames()
	}, func(w *world) {
		w.renames()
	}}
}

// deleteScenario: after a first sync the server deletes Sent and Друзья,
// while the user deletes the folders Drafts and Archive/2024; in conflict
// with two of the deletions, new mail is filed into the folder Друзья and
// arrives on the server in Archive/2024. Again: the same deletions of the
// mailboxes that are left, and those gone are made anew, Sent on the
// server and Drafts in the Maildir.
func deleteScenario(name, tag string, remove bool) scenario {
	return scenario{name, tag, func(w *world) {
		w.lifecycleWorld(remove)
		w.deletions(remove)
	}, func(w *world) {
		w.deletions(remove)
	}}
}

// lifecycleWorld configures sync.remove_folders, puts a few messages in
// every mailbox and syncs them. With remove, sync.max_delete lets a whole
// mailbox go whatever its size (the default, 25% or at least 10
// messages, would hold back a bigger one).
func (w *world) lifecycleWorld(remove bool) {
	w.t.Helper()
	if remove {
		w.setSync("remove_folders: true", `max_delete: "100%"`)
	}
	for _, mb := range w.mailboxes {
		w.appendServerIn(mb, 5)
	}
	w.firstSync()
}

// setSync adds settings to the account's sync section.
func (w *world) setSync(settings ...string) {
	w.t.Helper()
	f, err := os.OpenFile(w.config, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	text := "    sync:\n      " + strings.Join(settings, "\n      ") + "\n"
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		w.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		w.t.Fatal(err)
	}
}

// renames renames a mailbox with a child on the server and another
// folder locally, each to its other name, after new mail went into both
// under their old names.
func (w *world) renames() {
	w.t.Helper()
	from, to := "Archive", "Ältere"
	if !w.hasMailbox(from) {
		from, to = to, from
	}
	lfrom, lto := "Друзья", "Friends"
	if !w.hasMailbox(lfrom) {
		lfrom, lto = lto, lfrom
	}
	// The user files mail into the folder whose mailbox the server is
	// renaming, and the server gets mail in the mailbox whose folder the
	// user is renaming: each follows its folder.
	w.writeLocalIn(from, 2)
	w.writeLocalIn(from+"/2024", 1)
	w.appendServerIn(lfrom, 2)
	w.writeLocalIn("INBOX", 2)
	w.appendServerIn("INBOX", 2)
	w.srv.RenameMailbox(from, to)
	w.renameModel(from, to)
	if err := os.Rename(w.folder(lfrom), w.folder(lto)); err != nil {
		w.t.Fatal(err)
	}
	w.renameModel(lfrom, lto)
}

// deletions deletes two mailboxes on the server and two folders locally,
// one of each in conflict with new mail on the other side; a mailbox a
// former deletion removed is made anew instead.
func (w *world) deletions(remove bool) {
	w.t.Helper()
	if w.hasMailbox("Sent") {
		w.deleteOnServer("Sent", remove)
	} else {
		w.srv.CreateMailbox("Sent")
		w.addMailbox("Sent")
		w.appendServerIn("Sent", 3)
	}
	if w.hasMailbox("Drafts") {
		w.deleteLocally("Drafts", remove)
	} else {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(w.folder("Drafts"), sub), 0o700); err != nil {
				w.t.Fatal(err)
			}
		}
		w.addMailbox("Drafts")
		w.writeLocalIn("Drafts", 3)
	}
	// New mail in the folder of a mailbox deleted on the server, and on
	// the server in a mailbox whose folder was deleted: with remove, what
	// the deleting side had goes and the new mail stays, in the mailbox
	// re-created on the deleting side.
	w.deleteOnServer("Друзья", remove)
	w.writeLocalIn("Друзья", 2)
	w.addMailbox("Друзья")
	w.deleteLocally("Archive/2024", remove)
	w.appendServerIn("Archive/2024", 2)
	w.addMailbox("Archive/2024")
}

// deleteOnServer deletes a mailbox on the server as another client would.
// Without remove, its folder's mail is uploaded to it again, so keywords
// (which a Maildir name cannot carry) are lost; with remove, the mail is
// gone, and so is the mailbox unless new mail is filed into its folder.
func (w *world) deleteOnServer(mb string, remove bool) {
	w.t.Helper()
	w.srv.DeleteMailbox(mb)
	for _, id := range w.idsIn(mb) {
		if remove {
			delete(w.model, id)
		} else {
			w.model[id].flags = w.model[id].flags.maildir()
		}
	}
	if remove {
		w.dropMailbox(mb)
	}
}

// deleteLocally deletes a folder as a user would (rm -r). Without remove,
// it is downloaded again; with remove, its mail is deleted on the server,
// and so is the mailbox unless new mail arrives there.
func (w *world) deleteLocally(mb string, remove bool) {
	w.t.Helper()
	if err := os.RemoveAll(w.folder(mb)); err != nil {
		w.t.Fatal(err)
	}
	if !remove {
		return
	}
	for _, id := range w.idsIn(mb) {
		delete(w.model, id)
	}
	w.dropMailbox(mb)
}

// idsIn returns the X-Crash-IDs the model has in a mailbox, in a fixed
// order.
func (w *world) idsIn(mb string) []string {
	var ids []string
	for _, id := range w.sortedIDs() {
		if w.model[id].mailbox == mb {
			ids = append(ids, id)
		}
	}
	return ids
}

func (w *world) hasMailbox(mb string) bool { return slices.Contains(w.mailboxes, mb) }

func (w *world) addMailbox(mb string) {
	if !w.hasMailbox(mb) {
		w.mailboxes = append(w.mailboxes, mb)
		slices.Sort(w.mailboxes)
	}
}

func (w *world) dropMailbox(mb string) {
	w.mailboxes = slices.DeleteFunc(w.mailboxes, func(m string) bool { return m == mb })
}

// renameModel moves a mailbox, and those below it, to a new name in the
// model: RENAME takes the mailboxes below along (RFC 9051 §6.3.6), as
// moving a directory does the folders below it in the verbatim layout.
func (w *world) renameModel(from, to string) {
	rename := func(mb string) string {
		if mb == from {
			return to
		}
		if rest, ok := strings.CutPrefix(mb, from+"/"); ok {
			return to + "/" + rest
		}
		return mb
	}
	for _, m := range w.model {
		m.mailbox = rename(m.mailbox)
	}
	for i, mb := range w.mailboxes {
		w.mailboxes[i] = rename(mb)
	}
	slices.Sort(w.mailboxes)
}
