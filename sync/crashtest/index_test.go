package crashtest

import (
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"strings"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" driver, as the store package uses it
)

// ixRow is one message row of the index.
type ixRow struct {
	uid   uint32
	key   string
	flags flags
	state string
}

// ixMailbox is one mailbox row of the index with its message rows under
// its UIDVALIDITY.
type ixMailbox struct {
	name, localPath      string
	uidvalidity, uidnext uint32
	highestModSeq        uint64
	messages             uint32
	rows                 []ixRow
	staleRows            int // rows under another UIDVALIDITY
}

// indexState is the index as the harness reads it with plain SQL (schema
// of store/migrations), not through the store package, so that it reads
// what is on disk and never migrates it.
type indexState struct {
	mailboxes []ixMailbox
	// intents are the rows of the intents table, if the schema has one:
	// steps begun and not finished.
	intents []string
}

// readIndex reads an index file. It is given a copy, never the live index:
// opening a database can write to it (a WAL recovery).
func readIndex(path string) (indexState, error) {
	var st indexState
	db, err := sql.Open("sqlite3", (&url.URL{Scheme: "file", Path: path}).String())
	if err != nil {
		return st, err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, name, local_path, uidvalidity, uidnext, highestmodseq, messages FROM mailboxes ORDER BY name`)
	if err != nil {
		return st, fmt.Errorf("read mailboxes: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		var mb ixMailbox
		var modseq int64
		if err := rows.Scan(&id, &mb.name, &mb.localPath, &mb.uidvalidity, &mb.uidnext, &modseq, &mb.messages); err != nil {
			rows.Close()
			return st, err
		}
		mb.highestModSeq = uint64(modseq)
		ids = append(ids, id)
		st.mailboxes = append(st.mailboxes, mb)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}
	for i := range st.mailboxes {
		mb := &st.mailboxes[i]
		rs, err := db.Query(`SELECT uid, maildir_key, flags, state, uidvalidity FROM messages WHERE mailbox_id = ? ORDER BY uid`, ids[i])
		if err != nil {
			return st, fmt.Errorf("read messages of %q: %w", mb.name, err)
		}
		for rs.Next() {
			var r ixRow
			var fl string
			var uidv uint32
			if err := rs.Scan(&r.uid, &r.key, &fl, &r.state, &uidv); err != nil {
				rs.Close()
				return st, err
			}
			if uidv != mb.uidvalidity {
				mb.staleRows++
				continue
			}
			r.flags = newFlags(strings.Fields(fl)...)
			mb.rows = append(mb.rows, r)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return st, err
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'intents'`).Scan(&n); err != nil {
		return st, err
	}
	if n == 0 {
		return st, nil
	}
	is, err := db.Query(`SELECT i.kind, coalesce(m.name, '?'), i.uid, i.maildir_key, i.target, i.uidnext, i.size
		FROM intents i LEFT JOIN mailboxes m ON m.id = i.mailbox_id ORDER BY i.id`)
	if err != nil {
		return st, fmt.Errorf("read intents: %w", err)
	}
	defer is.Close()
	for is.Next() {
		var kind, mb, key, target string
		var uid, uidnext, size int64
		if err := is.Scan(&kind, &mb, &uid, &key, &target, &uidnext, &size); err != nil {
			return st, err
		}
		st.intents = append(st.intents, fmt.Sprintf("%s in %q: uid %d key %q target %q uidnext %d size %d", kind, mb, uid, key, target, uidnext, size))
	}
	return st, is.Err()
}

func (st indexState) mailbox(name string) (ixMailbox, bool) {
	i := slices.IndexFunc(st.mailboxes, func(m ixMailbox) bool { return m.name == name })
	if i < 0 {
		return ixMailbox{}, false
	}
	return st.mailboxes[i], true
}

// summary is one line: rows per mailbox, and the open intents.
func (st indexState) summary() string {
	var parts []string
	for _, mb := range st.mailboxes {
		parts = append(parts, fmt.Sprintf("%s=%d", mb.name, len(mb.rows)))
	}
	s := "rows " + strings.Join(parts, " ")
	if len(st.intents) > 0 {
		s += fmt.Sprintf(", %d intents open", len(st.intents))
	}
	return s
}

// dump is every row, for the artifacts of a failed round.
func (st indexState) dump() string {
	var b strings.Builder
	for _, mb := range st.mailboxes {
		fmt.Fprintf(&b, "mailbox %q (%s) uidvalidity %d uidnext %d highestmodseq %d messages %d, %d rows under another uidvalidity\n",
			mb.name, mb.localPath, mb.uidvalidity, mb.uidnext, mb.highestModSeq, mb.messages, mb.staleRows)
		for _, r := range mb.rows {
			fmt.Fprintf(&b, "  uid %d key %s flags %s state %q\n", r.uid, r.key, r.flags, r.state)
		}
	}
	for _, i := range st.intents {
		fmt.Fprintf(&b, "intent %s\n", i)
	}
	return b.String()
}
