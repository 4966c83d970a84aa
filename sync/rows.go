package sync

import (
	"cmp"
	"context"
	"iter"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// rows holds the index rows of one mailbox under one UIDVALIDITY, as a
// sync reads them once and then only looks them up: by ascending UID, in
// a compact form. A mailbox of 100,000 messages is held whole while it is
// learned and planned; a map of mail.Message would cost it about twice
// the memory. A nil *rows has no rows.
type rows struct {
	uidv mail.UIDValidity
	// chunks hold the rows, up to chunkRows each: the rows grow without
	// ever being copied whole.
	chunks []rowChunk
	n      int
	// text collects the keys and Message-IDs of the chunk being added.
	text []byte
	// sorted: every row was added above the one before.
	sorted bool
	// states holds the states the rows use, indexed by rowRec.state.
	states  []mail.State
	stateOf map[mail.State]uint32
	// long holds, by row index, the key and Message-ID of rows whose
	// text is longer than longText, which their chunk does not hold: a
	// chunk's text then fits the uint32 offsets.
	long map[int][2]string
	// byKey indexes the rows by ascending key, built on first use.
	byKey []int32
}

const (
	chunkRows = 4096
	longText  = 1 << 16
	// isLong marks, in rowRec.state, a row whose text is in rows.long.
	isLong = 1 << 31
)

// rowChunk is a run of rows and their keys and Message-IDs, back to back
// in one string: the strings a row yields are parts of it, not copies.
type rowChunk struct {
	recs []rowRec
	text string
}

// rowRec is one row. Its key is text[key:id] of its chunk, its
// Message-ID text[id:] up to the next row's key. InternalDate is kept in
// Unix seconds, as the index keeps it.
type rowRec struct {
	flags, localOnly mail.Flags
	modSeq           mail.ModSeq
	size             int64
	date             int64 // 0: the zero time
	uid              mail.UID
	key, id          uint32
	state            uint32
}

// loadRows reads the index's rows of a mailbox under uidv.
func loadRows(ctx context.Context, ix Index, mailboxID int64, uidv mail.UIDValidity) (*rows, error) {
	rs := newRows(uidv)
	err := ix.EachMessage(ctx, mailboxID, uidv, func(m mail.Message) error {
		rs.add(m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	rs.done()
	return rs, nil
}

// rowsOf holds the given rows, all under one UIDVALIDITY.
func rowsOf(uidv mail.UIDValidity, msgs ...mail.Message) *rows {
	rs := newRows(uidv)
	for _, m := range msgs {
		rs.add(m)
	}
	rs.done()
	return rs
}

func newRows(uidv mail.UIDValidity) *rows {
	return &rows{uidv: uidv, sorted: true, stateOf: map[mail.State]uint32{}}
}

// add appends a row; done completes the rows once all are added.
func (rs *rows) add(m mail.Message) {
	if rs.n > 0 && m.UID <= rs.at(rs.n-1).uid {
		rs.sorted = false
	}
	last := len(rs.chunks) - 1
	if last < 0 || len(rs.chunks[last].recs) == chunkRows {
		rs.seal()
		rs.chunks = append(rs.chunks, rowChunk{})
		last++
	}
	r := rowRec{flags: m.Flags, localOnly: m.LocalOnlyFlags, modSeq: m.ModSeq, size: m.Size, uid: m.UID, state: rs.stateIndex(m.State)}
	if !m.InternalDate.IsZero() {
		r.date = m.InternalDate.Unix()
	}
	r.key = uint32(len(rs.text))
	if len(m.Key)+len(m.MessageID) > longText {
		if rs.long == nil {
			rs.long = map[int][2]string{}
		}
		rs.long[rs.n] = [2]string{m.Key, m.MessageID}
		r.id, r.state = r.key, r.state|isLong
	} else {
		rs.text = append(rs.text, m.Key...)
		r.id = uint32(len(rs.text))
		rs.text = append(rs.text, m.MessageID...)
	}
	rs.chunks[last].recs = append(rs.chunks[last].recs, r)
	rs.n++
}

// seal gives the last chunk the text collected for it.
func (rs *rows) seal() {
	if len(rs.chunks) > 0 {
		rs.chunks[len(rs.chunks)-1].text = string(rs.text)
	}
	rs.text = rs.text[:0]
}

// done completes the rows: it seals the last chunk and sorts rows added
// out of order by UID, keeping the last row of a UID added twice. The
// index returns them in order: there is nothing to sort then.
func (rs *rows) done() {
	rs.seal()
	rs.text = nil
	if rs.sorted {
		return
	}
	all := slices.Collect(rs.all())
	slices.SortStableFunc(all, func(a, b mail.Message) int { return cmp.Compare(a.UID, b.UID) })
	*rs = *newRows(rs.uidv)
	for i, m := range all {
		if i+1 < len(all) && all[i+1].UID == m.UID {
			continue
		}
		rs.add(m)
	}
	rs.seal()
	rs.text = nil
}

func (rs *rows) at(i int) *rowRec { return &rs.chunks[i/chunkRows].recs[i%chunkRows] }

func (rs *rows) stateIndex(s mail.State) uint32 {
	if i, ok := rs.stateOf[s]; ok {
		return i
	}
	// Fewer than isLong states: there are no more rows than that.
	rs.states = append(rs.states, s)
	rs.stateOf[s] = uint32(len(rs.states) - 1)
	return uint32(len(rs.states) - 1)
}

// keyAt and idAt return row i's key and Message-ID.
func (rs *rows) keyAt(i int) string {
	c := &rs.chunks[i/chunkRows]
	r := &c.recs[i%chunkRows]
	if r.state&isLong != 0 {
		return rs.long[i][0]
	}
	return c.text[r.key:r.id]
}

func (rs *rows) idAt(i int) string {
	c := &rs.chunks[i/chunkRows]
	j := i % chunkRows
	if c.recs[j].state&isLong != 0 {
		return rs.long[i][1]
	}
	end := uint32(len(c.text))
	if j+1 < len(c.recs) {
		end = c.recs[j+1].key
	}
	return c.text[c.recs[j].id:end]
}

// message is row i as the index returned it.
func (rs *rows) message(i int) mail.Message {
	r := rs.at(i)
	m := mail.Message{UIDValidity: rs.uidv, UID: r.uid, Key: rs.keyAt(i), Flags: r.flags, ModSeq: r.modSeq, Size: r.size,
		MessageID: rs.idAt(i), State: rs.states[r.state&^isLong], LocalOnlyFlags: r.localOnly}
	if r.date != 0 {
		m.InternalDate = time.Unix(r.date, 0).UTC()
	}
	return m
}

// len is the number of rows.
func (rs *rows) len() int {
	if rs == nil {
		return 0
	}
	return rs.n
}

// find returns the index of uid's row, or where it would be.
func (rs *rows) find(uid mail.UID) (int, bool) {
	n := rs.len()
	i := sort.Search(n, func(i int) bool { return rs.at(i).uid >= uid })
	return i, i < n && rs.at(i).uid == uid
}

// get returns the row of uid.
func (rs *rows) get(uid mail.UID) (mail.Message, bool) {
	i, ok := rs.find(uid)
	if !ok {
		return mail.Message{}, false
	}
	return rs.message(i), true
}

// has reports whether there is a row of uid.
func (rs *rows) has(uid mail.UID) bool {
	_, ok := rs.find(uid)
	return ok
}

// all yields the rows by ascending UID.
func (rs *rows) all() iter.Seq[mail.Message] {
	return func(yield func(mail.Message) bool) {
		for i := range rs.len() {
			if !yield(rs.message(i)) {
				return
			}
		}
	}
}

// uidsFrom returns, as a set, the rows' UIDs at or above from: what a
// search for a message appended or copied at or above from must not take
// for it.
func (rs *rows) uidsFrom(from mail.UID) map[mail.UID]bool {
	out := map[mail.UID]bool{}
	i, _ := rs.find(from)
	for ; i < rs.len(); i++ {
		out[rs.at(i).uid] = true
	}
	return out
}

// keyIndex returns the index of the row with key.
func (rs *rows) keyIndex(key string) (int, bool) {
	if rs.len() == 0 {
		return 0, false
	}
	if rs.byKey == nil {
		rs.byKey = make([]int32, rs.n)
		for i := range rs.byKey {
			rs.byKey[i] = int32(i)
		}
		slices.SortFunc(rs.byKey, func(a, b int32) int { return strings.Compare(rs.keyAt(int(a)), rs.keyAt(int(b))) })
	}
	j, ok := slices.BinarySearchFunc(rs.byKey, key, func(i int32, k string) int { return strings.Compare(rs.keyAt(int(i)), k) })
	if !ok {
		return 0, false
	}
	return int(rs.byKey[j]), true
}

// hasKey reports whether a row has key.
func (rs *rows) hasKey(key string) bool {
	_, ok := rs.keyIndex(key)
	return ok
}

// sameKey returns the rows' own copy of key, or key if no row has it: a
// folder listing made with it shares its keys with the rows instead of
// holding each a second time.
func (rs *rows) sameKey(key string) string {
	if i, ok := rs.keyIndex(key); ok {
		return rs.keyAt(i)
	}
	return key
}

// dropKeyIndex frees the index by key once no more lookups by key come.
func (rs *rows) dropKeyIndex() {
	if rs != nil {
		rs.byKey = nil
	}
}
