package crashtest

import (
	"os"
	"path/filepath"
	"slices"
)

// flagChoices are the flags the scenarios toggle: those a Maildir name
// carries, less \Deleted (a message flagged \Deleted may be expunged by
// any client, which the model would have to guess).
var flagChoices = []string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`, `$Forwarded`}

// toggle flips one or two flags of f.
func (w *world) toggle(f flags) flags {
	for range 1 + w.rng.IntN(2) {
		x := flagChoices[w.rng.IntN(len(flagChoices))]
		f = f.with(x, !f.has(x))
	}
	return f
}

// mixedChanges changes both sides of a synced world, as a day of mutt and
// a phone would, and updates the model. Each message takes part in at
// most one change of its existence (deletion, move, expunge), and those
// are disjoint from flag changes, so no case is left to the conflict
// rules; flags may change on both sides of one message, which the
// three-way merge settles per flag.
func (w *world) mixedChanges() {
	w.t.Helper()
	lv, err := w.scanLocal(false)
	if err != nil {
		w.t.Fatal(err)
	}
	sv, err := w.peekServer(false)
	if err != nil {
		w.t.Fatal(err)
	}
	// Only messages that are once on each side take part: a message a
	// crash duplicated or lost is left for the final check to report.
	var ids []string
	for _, id := range w.sortedIDs() {
		if len(lv.byID[id]) == 1 && len(sv.byID[id]) == 1 {
			ids = append(ids, id)
		}
	}
	w.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	take := func(n int) []string {
		n = min(n, len(ids))
		out := ids[:n]
		ids = ids[n:]
		return out
	}
	deleteLocal, moveLocal, expunge := take(8), take(8), take(8)
	flagBoth, flagLocal, flagServer := take(8), take(12), take(12)

	local := func(id string) localMsg { return lv.byID[id][0] }
	remote := func(id string) serverMsg { return sv.byID[id][0] }
	rename := func(from, to string) {
		if err := os.Rename(from, to); err != nil {
			w.t.Fatal(err)
		}
	}

	// In the Maildir: read, flag, reply (a rename into cur/ with the new
	// info), delete, and file into another folder (the same name in the
	// other folder's cur/).
	localFlags := map[string]flags{}
	for _, id := range append(slices.Clone(flagBoth), flagLocal...) {
		m := local(id)
		f := w.toggle(m.flags)
		rename(m.path, filepath.Join(w.folder(m.mailbox), "cur", m.key+":2,"+f.letters()))
		localFlags[id] = f
	}
	for _, id := range deleteLocal {
		if err := os.Remove(local(id).path); err != nil {
			w.t.Fatal(err)
		}
		delete(w.model, id)
	}
	for _, id := range moveLocal {
		m := local(id)
		var to string
		for to = m.mailbox; to == m.mailbox; {
			to = w.mailboxes[w.rng.IntN(len(w.mailboxes))]
		}
		rename(m.path, filepath.Join(w.folder(to), "cur", m.name))
		w.model[id].mailbox = to
	}

	// On the server: flags (keywords kept, now and then one toggled),
	// and expunges.
	serverFlags := map[string]flags{}
	for _, id := range append(slices.Clone(flagBoth), flagServer...) {
		m := remote(id)
		f := w.toggle(m.flags)
		if w.rng.IntN(4) == 0 {
			f = f.with("$label2", !f.has("$label2"))
		}
		w.srv.SetFlags(m.mailbox, m.uid, f...)
		serverFlags[id] = f
	}
	byBox := map[string][]uint32{}
	for _, id := range expunge {
		m := remote(id)
		byBox[m.mailbox] = append(byBox[m.mailbox], m.uid)
		delete(w.model, id)
	}
	for _, mb := range w.mailboxes {
		w.srv.Expunge(mb, byBox[mb]...)
	}

	for _, id := range append(append(slices.Clone(flagBoth), flagLocal...), flagServer...) {
		base := w.model[id].flags
		l, ok := localFlags[id]
		if !ok {
			l = base.maildir()
		}
		r, ok := serverFlags[id]
		if !ok {
			r = base
		}
		w.model[id].flags = merged(base, l, r)
	}

	// New mail on both sides.
	w.appendServer(12)
	w.writeLocal(12)
}
