package imaptest

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// SEARCH in the Gmail emulation: RFC 9051 §6.4.4's keys that a sync
// uses, MODSEQ (RFC 7162 §3.1.5), ESEARCH's RETURN (RFC 4731), and
// Gmail's X-GM-MSGID, X-GM-THRID, X-GM-LABELS and a subset of X-GM-RAW
// (Google's IMAP extension documentation).

// gmMatch tests one message: its entry and sequence number in the view.
type gmMatch func(e *gmEntry, seq uint32) bool

type gmSearch struct {
	s      *gmSession
	p      *gmParser
	modseq bool // a MODSEQ key was used: the answer carries the highest
}

func (s *gmSession) search(p *gmParser, uid bool) error {
	var ret []string
	esearch := false
	if a, ok := peekAtom(p, "RETURN"); ok {
		_ = a
		esearch = true
		if p.sp() != nil {
			return errSyntax
		}
		err := p.list(func() error {
			a, err := p.atom()
			ret = append(ret, strings.ToUpper(a))
			return err
		})
		if err != nil || p.sp() != nil {
			return errSyntax
		}
		if len(ret) == 0 {
			ret = []string{"ALL"}
		}
	}
	if _, ok := peekAtom(p, "CHARSET"); ok {
		if p.sp() != nil {
			return errSyntax
		}
		cs, err := p.astring()
		if err != nil || p.sp() != nil {
			return errSyntax
		}
		if !strings.EqualFold(cs, "UTF-8") && !strings.EqualFold(cs, "US-ASCII") {
			s.no("[BADCHARSET (UTF-8 US-ASCII)] (Failure)")
			return nil
		}
	}
	q := &gmSearch{s: s, p: p}
	var keys []gmMatch
	for {
		k, err := q.key()
		if err != nil {
			return err
		}
		keys = append(keys, k)
		if !p.more() {
			break
		}
	}
	if !p.done() {
		return errSyntax
	}
	st := s.store
	st.mu.Lock()
	var nums []uint32
	var highest uint64
	for i, e := range s.view {
		ok := true
		for _, k := range keys {
			if !k(e, uint32(i+1)) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		highest = max(highest, e.msg.modseq)
		if uid {
			nums = append(nums, e.uid)
		} else {
			nums = append(nums, uint32(i+1))
		}
	}
	st.mu.Unlock()
	if !esearch {
		var b strings.Builder
		b.WriteString("* SEARCH")
		for _, n := range nums {
			b.WriteString(" " + strconv.FormatUint(uint64(n), 10))
		}
		if q.modseq && len(nums) > 0 {
			// RFC 7162 §3.1.5: the highest MODSEQ of the messages found.
			b.WriteString(" (MODSEQ " + strconv.FormatUint(highest, 10) + ")")
		}
		s.line("%s", b.String())
		s.poll(uid)
		s.ok("SEARCH completed (Success)")
		return nil
	}
	// RFC 4731 §3.1: ESEARCH, with the items asked for.
	var b strings.Builder
	b.WriteString(`* ESEARCH (TAG "` + s.tag + `")`)
	if uid {
		b.WriteString(" UID")
	}
	for _, r := range ret {
		switch {
		case r == "MIN" && len(nums) > 0:
			b.WriteString(" MIN " + strconv.FormatUint(uint64(nums[0]), 10))
		case r == "MAX" && len(nums) > 0:
			b.WriteString(" MAX " + strconv.FormatUint(uint64(nums[len(nums)-1]), 10))
		case r == "ALL" && len(nums) > 0:
			b.WriteString(" ALL " + formatUIDs(nums))
		case r == "COUNT":
			b.WriteString(" COUNT " + strconv.Itoa(len(nums)))
		}
	}
	if q.modseq && len(nums) > 0 {
		b.WriteString(" MODSEQ " + strconv.FormatUint(highest, 10))
	}
	s.line("%s", b.String())
	s.poll(uid)
	s.ok("SEARCH completed (Success)")
	return nil
}

// peekAtom consumes word (any case) when it comes next.
func peekAtom(p *gmParser, word string) (string, bool) {
	rest := p.s[p.i:]
	if len(rest) >= len(word) && strings.EqualFold(rest[:len(word)], word) &&
		(len(rest) == len(word) || rest[len(word)] == ' ') {
		p.i += len(word)
		return word, true
	}
	return "", false
}

func flagKey(flag string, want bool) gmMatch {
	return func(e *gmEntry, _ uint32) bool {
		has := e.msg.hasFlag(flag)
		if strings.EqualFold(flag, `\Deleted`) {
			has = e.deleted
		}
		return has == want
	}
}

// key reads one search key. The store's mutex is not held while parsing;
// the returned functions run under it.
func (q *gmSearch) key() (gmMatch, error) {
	p := q.p
	if p.peek() == '(' {
		var keys []gmMatch
		err := p.list(func() error {
			k, err := q.key()
			keys = append(keys, k)
			return err
		})
		return func(e *gmEntry, n uint32) bool {
			for _, k := range keys {
				if !k(e, n) {
					return false
				}
			}
			return true
		}, err
	}
	a, err := p.atom()
	if err != nil {
		return nil, err
	}
	arg := func() (string, error) {
		if p.sp() != nil {
			return "", errSyntax
		}
		return p.astring()
	}
	num := func() (uint64, error) {
		v, err := arg()
		if err != nil {
			return 0, err
		}
		return strconv.ParseUint(v, 10, 64)
	}
	switch up := strings.ToUpper(a); up {
	case "ALL":
		return func(*gmEntry, uint32) bool { return true }, nil
	case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN":
		return flagKey(`\`+up[:1]+strings.ToLower(up[1:]), true), nil
	case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
		return flagKey(`\`+up[2:3]+strings.ToLower(up[3:]), false), nil
	case "RECENT", "NEW":
		return func(*gmEntry, uint32) bool { return false }, nil
	case "OLD":
		return func(*gmEntry, uint32) bool { return true }, nil
	case "KEYWORD", "UNKEYWORD":
		k, err := arg()
		return flagKey(k, up == "KEYWORD"), err
	case "NOT":
		if p.sp() != nil {
			return nil, errSyntax
		}
		k, err := q.key()
		return func(e *gmEntry, n uint32) bool { return !k(e, n) }, err
	case "OR":
		if p.sp() != nil {
			return nil, errSyntax
		}
		k1, err := q.key()
		if err != nil || p.sp() != nil {
			return nil, errSyntax
		}
		k2, err := q.key()
		return func(e *gmEntry, n uint32) bool { return k1(e, n) || k2(e, n) }, err
	case "UID":
		v, err := arg()
		if err != nil {
			return nil, err
		}
		set, err := parseSet(v)
		view := q.s.view
		return func(e *gmEntry, _ uint32) bool {
			var last uint32
			if len(view) > 0 {
				last = view[len(view)-1].uid
			}
			return set.contains(e.uid, last)
		}, err
	case "LARGER", "SMALLER":
		n, err := num()
		return func(e *gmEntry, _ uint32) bool {
			if up == "LARGER" {
				return uint64(len(e.msg.body)) > n
			}
			return uint64(len(e.msg.body)) < n
		}, err
	case "SINCE", "BEFORE", "ON":
		v, err := arg()
		if err != nil {
			return nil, err
		}
		d, err := time.Parse("_2-Jan-2006", v)
		return func(e *gmEntry, _ uint32) bool {
			y, m, dd := e.msg.date.Date()
			day := time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)
			switch up {
			case "SINCE":
				return !day.Before(d)
			case "BEFORE":
				return day.Before(d)
			}
			return day.Equal(d)
		}, err
	case "HEADER":
		field, err := arg()
		if err != nil {
			return nil, err
		}
		v, err := arg()
		return func(e *gmEntry, _ uint32) bool {
			for _, hv := range readHeader(e.msg.body).Values(field) {
				if strings.Contains(strings.ToLower(hv), strings.ToLower(v)) {
					return true
				}
			}
			return false
		}, err
	case "SUBJECT", "FROM", "TO", "CC", "BCC":
		v, err := arg()
		field := up
		return func(e *gmEntry, _ uint32) bool {
			return strings.Contains(strings.ToLower(readHeader(e.msg.body).Get(field)), strings.ToLower(v))
		}, err
	case "BODY", "TEXT":
		v, err := arg()
		return func(e *gmEntry, _ uint32) bool {
			return bytes.Contains(bytes.ToLower(e.msg.body), bytes.ToLower([]byte(v)))
		}, err
	case "MODSEQ":
		// RFC 7162 §3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence.
		if p.sp() != nil {
			return nil, errSyntax
		}
		if p.peek() == '"' {
			if _, err := p.astring(); err != nil || p.sp() != nil {
				return nil, errSyntax
			}
			if _, err := p.atom(); err != nil || p.sp() != nil {
				return nil, errSyntax
			}
		}
		n, err := p.number()
		q.modseq = true
		q.s.condstore = true
		return func(e *gmEntry, _ uint32) bool { return e.msg.modseq >= n }, err
	case "X-GM-MSGID", "X-GM-THRID":
		n, err := num()
		return func(e *gmEntry, _ uint32) bool {
			if up == "X-GM-MSGID" {
				return e.msg.id == n
			}
			return e.msg.thrid == n
		}, err
	case "X-GM-LABELS":
		v, err := arg()
		if err != nil {
			return nil, err
		}
		d, err := decodeMUTF7(v)
		if err != nil {
			return nil, errSyntax
		}
		l, ok := canonLabel(d)
		if !ok {
			return nil, errSyntax
		}
		return func(e *gmEntry, _ uint32) bool { return hasLabel(e.msg, l) }, nil
	case "X-GM-RAW":
		v, err := arg()
		if err != nil {
			return nil, err
		}
		return gmRawQuery(v)
	}
	if a[0] == '*' || (a[0] >= '0' && a[0] <= '9') {
		set, err := parseSet(a)
		n := uint32(len(q.s.view))
		return func(_ *gmEntry, seq uint32) bool { return set.contains(seq, n) }, err
	}
	return nil, errSyntax
}

// hasLabel says whether m carries label l (canonical; \Starred is
// \Flagged).
func hasLabel(m *gmMsg, l string) bool {
	if l == gmStarred {
		return m.hasFlag(`\Flagged`)
	}
	if strings.HasPrefix(l, `\`) {
		return m.labels[l]
	}
	for ml := range m.labels {
		if strings.EqualFold(ml, l) {
			return true
		}
	}
	return false
}

// gmRawQuery compiles the part of Gmail's search syntax (X-GM-RAW, Google's
// documentation: "the same syntax as the Gmail web interface") that tests
// use: "label:x", "in:inbox" (and the other system mailboxes),
// "is:starred", "is:important", "is:unread", "is:read",
// "rfc822msgid:<id>", each negated by a leading "-", all of them ANDed.
// Gmail writes a label's spaces and slashes as "-" in its searches; both
// spellings match.
func gmRawQuery(query string) (gmMatch, error) {
	var keys []gmMatch
	for _, term := range strings.Fields(query) {
		neg := strings.HasPrefix(term, "-")
		term = strings.TrimPrefix(term, "-")
		op, v, ok := strings.Cut(term, ":")
		if !ok {
			return nil, errSyntax
		}
		var k gmMatch
		switch strings.ToLower(op) {
		case "label":
			want := rawLabel(v)
			k = func(e *gmEntry, _ uint32) bool {
				for _, l := range e.msg.allLabels() {
					if rawLabel(l) == want || rawLabel(strings.TrimPrefix(l, `\`)) == want {
						return true
					}
				}
				return false
			}
		case "in":
			var l string
			switch strings.ToLower(v) {
			case "inbox":
				l = gmInbox
			case "sent":
				l = gmSent
			case "drafts", "draft":
				l = gmDraft
			case "trash":
				l = gmTrash
			case "spam":
				l = gmSpam
			case "anywhere":
				k = func(*gmEntry, uint32) bool { return true }
			default:
				l = v
			}
			if k == nil {
				k = func(e *gmEntry, _ uint32) bool { return hasLabel(e.msg, l) }
			}
		case "is":
			switch strings.ToLower(v) {
			case "starred":
				k = func(e *gmEntry, _ uint32) bool { return e.msg.hasFlag(`\Flagged`) }
			case "important":
				k = func(e *gmEntry, _ uint32) bool { return e.msg.labels[gmImportant] }
			case "unread":
				k = func(e *gmEntry, _ uint32) bool { return !e.msg.hasFlag(`\Seen`) }
			case "read":
				k = func(e *gmEntry, _ uint32) bool { return e.msg.hasFlag(`\Seen`) }
			default:
				return nil, errSyntax
			}
		case "rfc822msgid":
			k = func(e *gmEntry, _ uint32) bool {
				return strings.Trim(e.msg.msgID, "<>") == strings.Trim(v, "<>")
			}
		default:
			return nil, errSyntax
		}
		if neg {
			inner := k
			k = func(e *gmEntry, n uint32) bool { return !inner(e, n) }
		}
		keys = append(keys, k)
	}
	return func(e *gmEntry, n uint32) bool {
		for _, k := range keys {
			if !k(e, n) {
				return false
			}
		}
		return true
	}, nil
}

func rawLabel(l string) string {
	return strings.ToLower(strings.NewReplacer(" ", "-", "/", "-").Replace(l))
}
