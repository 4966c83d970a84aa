package crashtest

import (
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// settle runs satchel once more after a completed run and checks that it
// changed nothing: not a file below the Maildir root (name, size, mtime,
// mode), not a mailbox's MESSAGES, UIDNEXT or HIGHESTMODSEQ, and that it
// sent no command that changes the server or downloads a body.
func (w *world) settle() run {
	w.t.Helper()
	before, err := w.fingerprint()
	if err != nil {
		w.t.Fatalf("before the settling run: %v", err)
	}
	r := w.mustComplete("the run after a completed run")
	after, err := w.fingerprint()
	if err != nil {
		w.t.Fatalf("after the settling run: %v", err)
	}
	if d := diffLines(before, after); d != "" {
		w.problem("run %d, after a completed run, still changed something (- before, + after):\n%s", r.n, d)
	}
	if cmds := allLines(r.trace, mutating); len(cmds) > 0 {
		w.problem("run %d, after a completed run, sent %d commands that change the server or download:\n%s", r.n, len(cmds), strings.Join(cmds[:min(len(cmds), 10)], "\n"))
	}
	return r
}

// fingerprint lists every file below the Maildir root and the STATUS of
// every mailbox, one per line.
func (w *world) fingerprint() ([]string, error) {
	var lines []string
	err := filepath.WalkDir(w.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(w.root, path)
		lines = append(lines, fmt.Sprintf("file %s %v %s %d", rel, fi.Mode(), fi.ModTime().Format(time.RFC3339Nano), fi.Size()))
		return nil
	})
	if err != nil {
		return nil, err
	}
	sv, err := w.peekServer(false)
	if err != nil {
		return nil, err
	}
	for _, mb := range sv.mailboxes {
		lines = append(lines, fmt.Sprintf("mailbox %q %s", mb, sv.status[mb]))
	}
	slices.Sort(lines)
	return lines, nil
}

func diffLines(a, b []string) string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// allLines returns the lines of a file that match keep, each cut to 300
// bytes.
func allLines(path string, keep interface{ MatchString(string) bool }) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if keep.MatchString(line) {
			if len(line) > 300 {
				line = line[:300] + "..."
			}
			out = append(out, line)
		}
	}
	return out
}

// check compares both sides with the model and with each other once the
// runs are over, and records what differs as problems of the world:
//   - the server has exactly the world's mailboxes, the Maildir exactly
//     their folders, and nothing lies below the root outside cur/, new/
//     and tmp/ of a folder, or beside the Maildir but the index;
//   - in every mailbox the multiset of (body with CRLF read as LF, flags a
//     Maildir name carries) is the same on both sides;
//   - every message of the model is on each side exactly once, in its
//     mailbox, with its body and flags (keywords too on the server), the
//     file's mtime its INTERNALDATE; no other message is on either side;
//   - the index has a row for every mailbox and nothing else, a row for
//     every file and every server message of each mailbox and nothing
//     else, all synced, flags as on the server, and no open intents.
func (w *world) check() {
	w.t.Helper()
	sv, err := w.peekServer(true)
	if err != nil {
		w.t.Fatalf("read the server: %v", err)
	}
	lv, err := w.scanLocal(true)
	if err != nil {
		w.t.Fatalf("read the Maildir: %v", err)
	}
	w.writeListing(sv, lv)
	fail := w.problem

	if !slices.Equal(sv.mailboxes, w.mailboxes) {
		fail("server mailboxes %q, want %q", sv.mailboxes, w.mailboxes)
	}
	folders := slices.Sorted(slices.Values(lv.folders))
	if !slices.Equal(folders, w.mailboxes) {
		fail("Maildir folders %q, want %q", folders, w.mailboxes)
	}
	for _, s := range lv.strays {
		fail("below the Maildir root but in no cur/, new/ or tmp/ of a folder (or not a message name): %s", s)
	}
	if len(lv.tmp) > 0 {
		// A run killed during a delivery leaves its tmp/ file; the
		// Maildir spec has readers ignore tmp/ and cleaners remove it
		// after 36 hours, so it is reported but not a failure.
		w.t.Logf("%d files left in tmp/ folders (from killed deliveries): %s", len(lv.tmp), strings.Join(lv.tmp[:min(len(lv.tmp), 5)], ", "))
	}
	for _, d := range lv.empty {
		// A run killed inside a folder's removal, after cur/ went, leaves
		// a directory that is no folder; the next run removes it.
		fail("a directory left that is no folder and holds none (a folder removal never finished): %s", d)
	}
	w.checkOutside(fail)

	// Both sides alike, mailbox by mailbox, as multisets.
	for _, mb := range w.mailboxes {
		count := map[string]int{}
		label := map[string]string{}
		for _, ms := range sv.byID {
			for _, m := range ms {
				if m.mailbox == mb {
					k := string(lf(m.body)) + "\x00" + m.flags.maildir().String()
					count[k]++
					label[k] = describe(m.body, m.flags.maildir())
				}
			}
		}
		for _, m := range sv.noID {
			if m.mailbox == mb {
				k := string(lf(m.body)) + "\x00" + m.flags.maildir().String()
				count[k]++
				label[k] = describe(m.body, m.flags.maildir())
			}
		}
		for _, ms := range lv.byID {
			for _, m := range ms {
				if m.mailbox == mb {
					k := string(m.body) + "\x00" + m.flags.String()
					count[k]--
					label[k] = describe(m.body, m.flags)
				}
			}
		}
		for _, m := range lv.noID {
			if m.mailbox == mb {
				k := string(m.body) + "\x00" + m.flags.String()
				count[k]--
				label[k] = describe(m.body, m.flags)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(count)) {
			switch n := count[k]; {
			case n > 0:
				fail("%s: the server has %d more of %s than the Maildir", mb, n, label[k])
			case n < 0:
				fail("%s: the Maildir has %d more of %s than the server", mb, -n, label[k])
			}
		}
	}

	// Every message of the model once on each side; nothing else.
	for _, id := range w.sortedIDs() {
		want := w.model[id]
		s, l := sv.byID[id], lv.byID[id]
		note := ""
		if seen := w.firstSeen[id]; seen != "" {
			note = " (" + seen + ")"
		}
		switch {
		case len(s) == 0 && len(l) == 0:
			fail("%s: LOST: on neither side, want it in %s with %s%s", id, want.mailbox, want.flags, note)
			continue
		case len(s) != 1:
			fail("%s: on the server %d times %s, want once in %s%s", id, len(s), whereServer(s), want.mailbox, note)
		case len(l) != 1:
			fail("%s: in the Maildir %d times %s, want once in %s%s", id, len(l), whereLocal(l), want.mailbox, note)
		}
		for _, m := range s {
			if m.mailbox != want.mailbox {
				fail("%s: on the server in %s, want %s", id, m.mailbox, want.mailbox)
			}
			if !m.flags.equal(want.flags) {
				fail("%s: on the server with flags %s, want %s", id, m.flags, want.flags)
			}
			if !bytes.Equal(lf(m.body), want.body) {
				fail("%s: server body differs from the one written (%d bytes, want %d)", id, len(lf(m.body)), len(want.body))
			}
		}
		for _, m := range l {
			if m.mailbox != want.mailbox {
				fail("%s: in the Maildir in %s, want %s", id, m.mailbox, want.mailbox)
			}
			if !m.flags.equal(want.flags.maildir()) {
				fail("%s: in the Maildir with flags %s (%s/%s), want %s", id, m.flags, m.subdir, m.name, want.flags.maildir())
			}
			if !bytes.Equal(m.body, want.body) {
				fail("%s: local body differs from the one written (%d bytes, want %d)", id, len(m.body), len(want.body))
			}
		}
		if len(s) == 1 && !s[0].date.Equal(want.date) {
			fail("%s: INTERNALDATE %v, want %v", id, s[0].date, want.date)
		}
		if len(s) == 1 && len(l) == 1 && !l[0].mtime.Equal(s[0].date) {
			fail("%s: file mtime %v, INTERNALDATE %v", id, l[0].mtime, s[0].date)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(sv.byID)) {
		if w.model[id] == nil {
			fail("%s: on the server %s, but the scenario deleted it or never made it%s", id, whereServer(sv.byID[id]), paren(w.firstSeen[id]))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(lv.byID)) {
		if w.model[id] == nil {
			fail("%s: in the Maildir %s, but the scenario deleted it or never made it%s", id, whereLocal(lv.byID[id]), paren(w.firstSeen[id]))
		}
	}
	for _, m := range sv.noID {
		fail("%s UID %d: a server message without X-Crash-ID (%d bytes)", m.mailbox, m.uid, len(m.body))
	}
	for _, m := range lv.noID {
		fail("%s/%s/%s: a file without X-Crash-ID (%d bytes)", m.mailbox, m.subdir, m.name, len(m.body))
	}

	w.checkIndex(sv, lv, fail)
}

// checkIndex compares the index with both sides: a row for each mailbox
// and none for a mailbox gone, per mailbox one synced row per server UID
// and per file, with the server's flags.
func (w *world) checkIndex(sv serverView, lv localView, fail func(string, ...any)) {
	copy, err := w.copyIndex("index-final")
	if err != nil {
		fail("copy the index: %v", err)
		return
	}
	ix, err := readIndex(copy)
	if err != nil {
		fail("read the index: %v", err)
		return
	}
	os.WriteFile(filepath.Join(w.runDir, "index-final.txt"), []byte(ix.dump()), 0o600)
	for _, i := range ix.intents {
		fail("index: intent left open after a completed run: %s", i)
	}
	serverByBox := map[string]map[uint32]serverMsg{}
	for _, ms := range sv.byID {
		for _, m := range ms {
			if serverByBox[m.mailbox] == nil {
				serverByBox[m.mailbox] = map[uint32]serverMsg{}
			}
			serverByBox[m.mailbox][m.uid] = m
		}
	}
	localByBox := map[string]map[string]localMsg{}
	for _, ms := range lv.byID {
		for _, m := range ms {
			if localByBox[m.mailbox] == nil {
				localByBox[m.mailbox] = map[string]localMsg{}
			}
			localByBox[m.mailbox][m.key] = m
		}
	}
	for _, mb := range ix.mailboxes {
		if !slices.Contains(w.mailboxes, mb.name) {
			fail("index: a row for mailbox %s (folder %q), which neither side should have", mb.name, mb.localPath)
		}
	}
	for _, name := range w.mailboxes {
		mb, ok := ix.mailbox(name)
		if !ok {
			fail("index: no row for mailbox %s", name)
			continue
		}
		if mb.localPath != name {
			fail("index: mailbox %s has local path %q", name, mb.localPath)
		}
		if mb.staleRows > 0 {
			fail("index: mailbox %s has %d rows under another UIDVALIDITY", name, mb.staleRows)
		}
		uids := map[uint32]bool{}
		keys := map[string]bool{}
		for _, r := range mb.rows {
			uids[r.uid], keys[r.key] = true, true
			if r.state != "" {
				fail("index: %s UID %d (key %s) is in state %q after a completed run", name, r.uid, r.key, r.state)
			}
			sm, ok := serverByBox[name][r.uid]
			if !ok {
				fail("index: %s UID %d (key %s): no such message on the server", name, r.uid, r.key)
			} else if !r.flags.equal(sm.flags) {
				fail("index: %s UID %d has flags %s, the server %s", name, r.uid, r.flags, sm.flags)
			}
			lm, ok := localByBox[name][r.key]
			if !ok {
				fail("index: %s UID %d: no file with key %s", name, r.uid, r.key)
			} else if ok && sm.body != nil && crashID(lm.body) != crashID(sm.body) {
				fail("index: %s UID %d is %s on the server but its key %s is the file of %s", name, r.uid, crashID(sm.body), r.key, crashID(lm.body))
			}
		}
		for uid, m := range serverByBox[name] {
			if !uids[uid] {
				fail("index: %s UID %d (%s) on the server has no row", name, uid, crashID(m.body))
			}
		}
		for key, m := range localByBox[name] {
			if !keys[key] {
				fail("index: %s/%s/%s (%s) is a file the index does not know", name, m.subdir, m.name, crashID(m.body))
			}
		}
	}
}

// checkOutside checks that satchel wrote nothing beside the Maildir root
// but its index (with SQLite's files and the lock).
func (w *world) checkOutside(fail func(string, ...any)) {
	allowed := map[string]bool{
		"config.yaml": true, "Mail": true, "runs": true, "state": true,
		"state/crash.db": true, "state/crash.db-wal": true, "state/crash.db-shm": true, "state/crash.db.lock": true,
	}
	err := filepath.WalkDir(w.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(w.dir, path)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if !allowed[rel] {
			fail("written outside the Maildir root: %s", rel)
		}
		if d.IsDir() && (rel == "Mail" || rel == "runs") {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		fail("walk %s: %v", w.dir, err)
	}
}

// writeListing keeps both sides' final listings with the run's files.
func (w *world) writeListing(sv serverView, lv localView) {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(sv.byID)) {
		fmt.Fprintf(&b, "server %s %s\n", id, whereServer(sv.byID[id]))
	}
	for _, id := range slices.Sorted(maps.Keys(lv.byID)) {
		fmt.Fprintf(&b, "local %s %s\n", id, whereLocal(lv.byID[id]))
	}
	for _, id := range w.sortedIDs() {
		m := w.model[id]
		fmt.Fprintf(&b, "model %s %s %s\n", id, m.mailbox, m.flags)
	}
	os.WriteFile(filepath.Join(w.runDir, "final-listing.txt"), []byte(b.String()), 0o600)
}

// describe names a message in a failure message by its X-Crash-ID (or
// size) and flags.
func describe(body []byte, f flags) string {
	id := crashID(body)
	if id == "" {
		id = strconv.Itoa(len(body)) + " bytes without X-Crash-ID"
	}
	return id + " " + f.String()
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
