package imaptest

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// The Gmail emulation's selected-state commands.

func (s *gmSession) selected(command string, p *gmParser) error {
	uid := strings.HasPrefix(command, "UID ")
	switch strings.TrimPrefix(command, "UID ") {
	case "CLOSE", "UNSELECT":
		if uid {
			break
		}
		if command == "CLOSE" && !s.readOnly {
			// RFC 9051 §6.4.1: CLOSE expunges, silently.
			s.expungeDeleted(nil)
		}
		s.sel, s.view = nil, nil
		s.ok("Returned to authenticated state. (Success)")
		return nil
	case "EXPUNGE":
		var set gmSet
		if uid {
			a, err := p.atom()
			if err != nil {
				return err
			}
			if set, err = parseSet(a); err != nil {
				return err
			}
		}
		if s.readOnly {
			s.no("[READ-ONLY] Mailbox is read-only (Failure)")
			return nil
		}
		s.expungeDeleted(set)
		s.poll(true)
		s.ok("Success")
		return nil
	case "FETCH":
		return s.fetch(p, uid)
	case "STORE":
		return s.storeCmd(p, uid)
	case "SEARCH":
		return s.search(p, uid)
	case "COPY", "MOVE":
		return s.copyCmd(p, uid, strings.HasSuffix(command, "MOVE"))
	}
	s.bad("Unknown command")
	return nil
}

// expungeDeleted expunges the selected mailbox's \Deleted messages (those
// in set, by UID, when set is not nil) by Gmail's rules (expungeLocked).
func (s *gmSession) expungeDeleted(set gmSet) {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	b := s.sel
	last := b.uidNext - 1
	for _, e := range slices.Clone(b.entries) {
		if e.deleted && (set == nil || set.contains(e.uid, last)) {
			st.expungeLocked(b, e)
		}
	}
}

// targets resolves a sequence set or UID set against the client's view.
// A UID set's "*" is the largest UID in the mailbox (RFC 9051 §9).
func (s *gmSession) targets(setArg string, uid bool) ([]int, error) {
	set, err := parseSet(setArg)
	if err != nil {
		return nil, err
	}
	var out []int
	if uid {
		var last uint32
		if len(s.view) > 0 {
			last = s.view[len(s.view)-1].uid
		}
		for i, e := range s.view {
			if set.contains(e.uid, last) {
				out = append(out, i)
			}
		}
		return out, nil
	}
	for i := range s.view {
		if set.contains(uint32(i+1), uint32(len(s.view))) {
			out = append(out, i)
		}
	}
	for _, r := range set {
		if r[0] > uint32(len(s.view)) || r[1] > uint32(len(s.view)) {
			return nil, errBadSeq
		}
	}
	return out, nil
}

var errBadSeq = fmt.Errorf("sequence number beyond the mailbox")

// gmFetchItem is one FETCH data item asked for.
type gmFetchItem struct {
	name    string // upper case: "UID", "FLAGS", "BODY[]" ...
	section *imap.FetchItemBodySection
	resp    string // the item's name in the response, for sections
	seen    bool   // reading it sets \Seen (RFC 9051 §6.4.5)
}

func parseFetchItems(p *gmParser) ([]gmFetchItem, error) {
	var items []gmFetchItem
	one := func() error {
		it, err := parseFetchItem(p)
		items = append(items, it...)
		return err
	}
	var err error
	if p.peek() == '(' {
		err = p.list(one)
	} else {
		err = one()
	}
	return items, err
}

func parseFetchItem(p *gmParser) ([]gmFetchItem, error) {
	start := p.i
	for !p.done() && strings.IndexByte(" ()[", p.s[p.i]) < 0 {
		p.i++
	}
	name := strings.ToUpper(p.s[start:p.i])
	switch name {
	case "FAST":
		return []gmFetchItem{{name: "FLAGS"}, {name: "INTERNALDATE"}, {name: "RFC822.SIZE"}}, nil
	case "UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ", "X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS":
		return []gmFetchItem{{name: name}}, nil
	case "RFC822":
		return []gmFetchItem{{name: name, resp: name, section: &imap.FetchItemBodySection{}, seen: true}}, nil
	case "RFC822.HEADER":
		return []gmFetchItem{{name: name, resp: name, section: &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader}}}, nil
	case "RFC822.TEXT":
		return []gmFetchItem{{name: name, resp: name, section: &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}, seen: true}}, nil
	case "BODY", "BODY.PEEK":
		if p.peek() != '[' {
			return nil, errSyntax
		}
	default:
		// ENVELOPE, BODYSTRUCTURE, BINARY and the rest are not
		// emulated.
		return nil, errSyntax
	}
	end := strings.IndexByte(p.s[p.i:], ']')
	if end < 0 {
		return nil, errSyntax
	}
	spec := p.s[p.i+1 : p.i+end]
	p.i += end + 1
	sec, err := parseSection(spec)
	if err != nil {
		return nil, err
	}
	resp := "BODY[" + spec + "]" // echoed as asked (RFC 9051 §7.5.2)
	if p.peek() == '<' {
		end := strings.IndexByte(p.s[p.i:], '>')
		if end < 0 {
			return nil, errSyntax
		}
		off, size, ok := strings.Cut(p.s[p.i+1:p.i+end], ".")
		o, err1 := strconv.ParseInt(off, 10, 64)
		n, err2 := strconv.ParseInt(size, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, errSyntax
		}
		p.i += end + 1
		sec.Partial = &imap.SectionPartial{Offset: o, Size: n}
		resp += "<" + off + ">"
	}
	return []gmFetchItem{{name: "BODY[]", section: sec, resp: resp, seen: name == "BODY"}}, nil
}

// parseSection reads a section-spec (RFC 9051 §9): part numbers, then
// HEADER, HEADER.FIELDS[.NOT] (list), TEXT or MIME.
func parseSection(spec string) (*imap.FetchItemBodySection, error) {
	sec := &imap.FetchItemBodySection{}
	rest := spec
	for rest != "" && rest[0] >= '0' && rest[0] <= '9' {
		num, after, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n == 0 {
			return nil, errSyntax
		}
		sec.Part = append(sec.Part, n)
		rest = after
	}
	word, fields, _ := strings.Cut(rest, " ")
	switch strings.ToUpper(word) {
	case "":
	case "HEADER":
		sec.Specifier = imap.PartSpecifierHeader
	case "TEXT":
		sec.Specifier = imap.PartSpecifierText
	case "MIME":
		sec.Specifier = imap.PartSpecifierMIME
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		sec.Specifier = imap.PartSpecifierHeader
		fp := &gmParser{s: fields}
		var names []string
		err := fp.list(func() error {
			v, err := fp.astring()
			names = append(names, v)
			return err
		})
		if err != nil || len(names) == 0 {
			return nil, errSyntax
		}
		if strings.HasSuffix(strings.ToUpper(word), ".NOT") {
			sec.HeaderFieldsNot = names
		} else {
			sec.HeaderFields = names
		}
	default:
		return nil, errSyntax
	}
	return sec, nil
}

// fetch answers FETCH and UID FETCH (RFC 9051 §6.4.5), with CHANGEDSINCE
// (RFC 7162 §3.1.4) and Gmail's X-GM-MSGID, X-GM-THRID and X-GM-LABELS
// (Google's IMAP extension documentation).
func (s *gmSession) fetch(p *gmParser, uid bool) error {
	setArg, err := p.atom()
	if err != nil || p.sp() != nil {
		return errSyntax
	}
	items, err := parseFetchItems(p)
	if err != nil {
		return err
	}
	var changedSince uint64
	hasChangedSince := false
	if p.more() {
		err := p.list(func() error {
			a, err := p.atom()
			if err != nil {
				return err
			}
			if !strings.EqualFold(a, "CHANGEDSINCE") || p.sp() != nil {
				return errSyntax
			}
			changedSince, err = p.number()
			hasChangedSince = true
			return err
		})
		if err != nil {
			return err
		}
	}
	if !p.done() {
		return errSyntax
	}
	idx, err := s.targets(setArg, uid)
	if err == errBadSeq {
		s.no("Invalid sequence number (Failure)")
		return nil
	} else if err != nil {
		return err
	}
	has := func(name string) bool {
		return slices.ContainsFunc(items, func(it gmFetchItem) bool { return it.name == name })
	}
	if has("MODSEQ") || hasChangedSince {
		s.condstore = true // RFC 7162 §3.1: both enable CONDSTORE
	}
	if uid && !has("UID") {
		items = append([]gmFetchItem{{name: "UID"}}, items...)
	}
	if hasChangedSince && !has("MODSEQ") {
		// RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ.
		items = append(items, gmFetchItem{name: "MODSEQ"})
	}
	st := s.store
	st.mu.Lock()
	var out bytes.Buffer
	for _, i := range idx {
		e := s.view[i]
		m := e.msg
		if hasChangedSince && m.modseq <= changedSince {
			continue
		}
		setSeen := false
		for _, it := range items {
			if it.seen && !s.readOnly && !m.hasFlag(`\Seen`) && !m.gone {
				setSeen = true
			}
		}
		if setSeen {
			m.setFlag(`\Seen`, true)
			st.touchLocked(m, true)
			if s.reported == nil {
				s.reported = map[*gmMsg]uint64{}
			}
			s.reported[m] = m.modseq
		}
		var parts []string
		for _, it := range items {
			switch it.name {
			case "UID":
				parts = append(parts, "UID "+strconv.FormatUint(uint64(e.uid), 10))
			case "FLAGS":
				parts = append(parts, "FLAGS ("+strings.Join(entryFlags(e), " ")+")")
			case "INTERNALDATE":
				parts = append(parts, `INTERNALDATE "`+m.date.Format("02-Jan-2006 15:04:05 -0700")+`"`)
			case "RFC822.SIZE":
				parts = append(parts, "RFC822.SIZE "+strconv.Itoa(len(m.body)))
			case "MODSEQ":
				parts = append(parts, "MODSEQ ("+strconv.FormatUint(m.modseq, 10)+")")
			case "X-GM-MSGID":
				parts = append(parts, "X-GM-MSGID "+strconv.FormatUint(m.id, 10))
			case "X-GM-THRID":
				parts = append(parts, "X-GM-THRID "+strconv.FormatUint(m.thrid, 10))
			case "X-GM-LABELS":
				parts = append(parts, "X-GM-LABELS "+s.labelList(m))
			default:
				data := imapserver.ExtractBodySection(bytes.NewReader(m.body), it.section)
				parts = append(parts, it.resp+" {"+strconv.Itoa(len(data))+"}\r\n"+string(data))
			}
		}
		if setSeen && !has("FLAGS") {
			parts = append(parts, "FLAGS ("+strings.Join(entryFlags(e), " ")+")")
		}
		fmt.Fprintf(&out, "* %d FETCH (%s)\r\n", i+1, strings.Join(parts, " "))
	}
	st.fetched += int64(out.Len())
	st.mu.Unlock()
	s.bw.Write(out.Bytes())
	s.poll(uid)
	s.ok("Success")
	return nil
}

// labelList renders X-GM-LABELS for m as seen from the selected mailbox:
// sorted, as Gmail writes them in the responses users report
// (ruby/net-imap#272), and without the selected mailbox's own label,
// which Gmail leaves out (reported in dlech/gmailbuttons#10: "The
// response from the server for FETCH (X-GM-LABELS) does not include the
// selected folder"). The caller holds the store's mutex.
func (s *gmSession) labelList(m *gmMsg) string {
	var out []string
	for _, l := range m.allLabels() {
		if s.sel != nil && l == s.sel.label {
			continue
		}
		out = append(out, labelArg(l, s.store.opts.QuotedSystemLabels))
	}
	return "(" + strings.Join(out, " ") + ")"
}

// storeCmd answers STORE and UID STORE (RFC 9051 §6.4.6) on FLAGS, with
// UNCHANGEDSINCE (RFC 7162 §3.1.3), and on Gmail's X-GM-LABELS (Google's
// documentation: "+X-GM-LABELS", "-X-GM-LABELS" and "X-GM-LABELS" add,
// remove and replace labels, and the response lists them).
func (s *gmSession) storeCmd(p *gmParser, uid bool) error {
	setArg, err := p.atom()
	if err != nil || p.sp() != nil {
		return errSyntax
	}
	var unchangedSince uint64
	hasUnchanged := false
	if p.peek() == '(' {
		err := p.list(func() error {
			a, err := p.atom()
			if err != nil || !strings.EqualFold(a, "UNCHANGEDSINCE") || p.sp() != nil {
				return errSyntax
			}
			unchangedSince, err = p.number()
			hasUnchanged = true
			return err
		})
		if err != nil || p.sp() != nil {
			return errSyntax
		}
		s.condstore = true
	}
	item, err := p.atom()
	if err != nil || p.sp() != nil {
		return errSyntax
	}
	item = strings.ToUpper(item)
	op := item[0]
	if op == '+' || op == '-' {
		item = item[1:]
	} else {
		op = '='
	}
	silent := strings.HasSuffix(item, ".SILENT")
	item = strings.TrimSuffix(item, ".SILENT")
	if item != "FLAGS" && item != "X-GM-LABELS" {
		return errSyntax
	}
	values, err := p.astrings()
	if err != nil || !p.done() {
		return errSyntax
	}
	if s.readOnly {
		s.no("[READ-ONLY] Mailbox is read-only (Failure)")
		return nil
	}
	idx, err := s.targets(setArg, uid)
	if err == errBadSeq {
		s.no("Invalid sequence number (Failure)")
		return nil
	} else if err != nil {
		return err
	}
	var labels []string
	if item == "X-GM-LABELS" {
		for _, v := range values {
			d, err := decodeMUTF7(v)
			if err != nil {
				return errSyntax
			}
			l, ok := canonLabel(d)
			if !ok {
				s.no("[CANNOT] Invalid label " + v + " (Failure)")
				return nil
			}
			labels = append(labels, l)
		}
	}
	st := s.store
	st.mu.Lock()
	b := s.sel
	var modified []uint32
	var changed []int
	for _, i := range idx {
		e := s.view[i]
		m := e.msg
		if m.gone || b.entryOf(m) != e {
			continue
		}
		if hasUnchanged && m.modseq > unchangedSince {
			// RFC 7162 §3.1.3: not stored, named in MODIFIED.
			if uid {
				modified = append(modified, e.uid)
			} else {
				modified = append(modified, uint32(i+1))
			}
			continue
		}
		if item == "FLAGS" {
			s.storeFlags(e, op, values)
		} else {
			s.storeLabels(m, op, labels)
		}
		changed = append(changed, i)
	}
	// Answer from the entries as the client knows them: a message that
	// left the mailbox through this very STORE is still reported, its
	// EXPUNGE follows when allowed.
	var out bytes.Buffer
	for _, i := range changed {
		e := s.view[i]
		m := e.msg
		if s.reported == nil {
			s.reported = map[*gmMsg]uint64{}
		}
		s.reported[m] = m.modseq
		var parts []string
		if !silent {
			if item == "FLAGS" {
				parts = append(parts, "FLAGS ("+strings.Join(entryFlags(e), " ")+")")
			} else {
				parts = append(parts, "X-GM-LABELS "+s.labelList(m))
			}
		}
		if uid && (!silent || s.condstore) {
			parts = append(parts, "UID "+strconv.FormatUint(uint64(e.uid), 10))
		}
		if s.condstore {
			// RFC 7162 §3.1.3: with CONDSTORE on, the FETCH a STORE
			// causes carries MODSEQ, and is sent even for .SILENT.
			parts = append(parts, "MODSEQ ("+strconv.FormatUint(m.modseq, 10)+")")
		}
		if len(parts) > 0 {
			fmt.Fprintf(&out, "* %d FETCH (%s)\r\n", i+1, strings.Join(parts, " "))
		}
	}
	st.mu.Unlock()
	s.bw.Write(out.Bytes())
	s.poll(uid)
	if len(modified) > 0 {
		s.ok("[MODIFIED " + formatUIDs(modified) + "] Conditional STORE failed (Success)")
		return nil
	}
	s.ok("Success")
	return nil
}

// storeFlags changes entry e's flags. \Deleted is the mailbox's; the
// others are the message's, seen in every mailbox. With Gmail's default
// Auto-Expunge on (ImapSettings.autoExpunge: "Gmail will immediately
// expunge a message when it is marked as deleted in IMAP"), \Deleted
// expunges at once. The caller holds the store's mutex.
func (s *gmSession) storeFlags(e *gmEntry, op byte, values []string) {
	st := s.store
	m := e.msg
	want := map[string]bool{}
	for _, f := range values {
		want[strings.ToLower(f)] = true
	}
	del := e.deleted
	switch op {
	case '+':
		del = del || want[`\deleted`]
	case '-':
		del = del && !want[`\deleted`]
	default:
		del = want[`\deleted`]
	}
	flags := slices.Clone(m.flags)
	if op == '=' {
		m.flags = nil
	}
	for _, f := range values {
		if strings.EqualFold(f, `\Deleted`) || strings.EqualFold(f, `\Recent`) {
			continue
		}
		m.setFlag(canonFlag(f), op != '-')
	}
	if !slices.Equal(flags, m.flags) || del != e.deleted {
		e.deleted = del
		st.touchLocked(m, true)
	}
	if e.deleted && !st.opts.AutoExpungeOff {
		st.expungeLocked(s.sel, e)
	}
}

// storeLabels changes m's labels. The caller holds the store's mutex.
func (s *gmSession) storeLabels(m *gmMsg, op byte, labels []string) {
	st := s.store
	before := m.allLabels()
	if op == '=' {
		for _, l := range before {
			st.removeLabelLocked(m, l)
		}
	}
	for _, l := range labels {
		if op == '-' {
			st.removeLabelLocked(m, l)
		} else {
			st.addLabelLocked(m, l)
		}
	}
	after := m.allLabels()
	if slices.Equal(before, after) {
		return
	}
	starChanged := slices.Contains(before, gmStarred) != slices.Contains(after, gmStarred)
	st.touchLocked(m, st.labelsBump() || starChanged)
}

// copyCmd answers COPY and MOVE (RFC 9051 §6.4.7, RFC 6851) with COPYUID
// (RFC 4315 §3). Into a mailbox a message gets that mailbox's label
// (placeLocked); MOVE then expunges it from the source by Gmail's rules,
// unless the copy took it out already (into Trash or Spam, or out of
// them).
func (s *gmSession) copyCmd(p *gmParser, uid, move bool) error {
	setArg, err := p.atom()
	if err != nil || p.sp() != nil {
		return errSyntax
	}
	name, err := mailboxName(p)
	if err != nil {
		return err
	}
	idx, err := s.targets(setArg, uid)
	if err == errBadSeq {
		s.no("Invalid sequence number (Failure)")
		return nil
	} else if err != nil {
		return err
	}
	if move && s.readOnly {
		s.no("[READ-ONLY] Mailbox is read-only (Failure)")
		return nil
	}
	st := s.store
	st.mu.Lock()
	dest := st.boxLocked(name)
	if dest == nil || dest.noSelect {
		st.mu.Unlock()
		s.no("[TRYCREATE] Folder doesn't exist. (Failure)")
		return nil
	}
	src := s.sel
	var from, to []uint32
	var moved []*gmEntry
	for _, i := range idx {
		e := s.view[i]
		if e.msg.gone || src.entryOf(e.msg) != e {
			continue
		}
		de := st.placeLocked(e.msg, dest)
		if de == nil {
			continue
		}
		from = append(from, e.uid)
		to = append(to, de.uid)
		moved = append(moved, e)
	}
	uidv := dest.uidValidity
	if move && dest != src {
		for _, e := range moved {
			st.expungeLocked(src, e)
		}
	}
	st.mu.Unlock()
	code := ""
	if len(from) > 0 {
		code = fmt.Sprintf("[COPYUID %d %s %s] ", uidv, formatUIDs(from), formatUIDs(to))
	}
	if move {
		// RFC 6851 §4.3: COPYUID in an untagged OK before the expunges.
		if code != "" {
			s.line("* OK %s", strings.TrimSpace(code))
		}
		s.poll(true)
		s.ok("Success")
		return nil
	}
	s.poll(uid)
	s.ok(code + "(Success)")
	return nil
}
