package imaptest

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"
)

// gmSession is one connection to the Gmail emulation, served on its own
// goroutine.
type gmSession struct {
	store *gmailStore
	c     net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer

	tag       string
	throttled bool // the command being answered is past ThrottleAfter
	authed    bool
	condstore bool // RFC 7162 §3.1: enabled by ENABLE, SELECT (CONDSTORE), FETCH MODSEQ, ...
	commands  int  // since authentication, for SessionExpiresAfter
	expireGen int
	closed    bool

	sel      *gmBox
	readOnly bool
	// view is the selected mailbox as the client knows it: sequence
	// number i+1 is view[i]. Entries leave it only when an EXPUNGE is
	// sent (RFC 9051 §7.5.1), so sequence numbers stay the client's.
	view []*gmEntry
	// seenMod is the store's MODSEQ when the client last heard of flag
	// changes; reported holds messages whose change this command already
	// answered.
	seenMod  uint64
	reported map[*gmMsg]uint64
}

// Gmail's capabilities as users report them (jstedfast/MailKit#1396,
// 2022): before and after authentication. Of these, the emulation has no
// COMPRESS=DEFLATE and no UTF8=ACCEPT, which it leaves out; XYZZY and the
// AUTH= mechanisms it does not implement are left out too.
const (
	gmailCapsPre  = "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 SASL-IR AUTH=PLAIN"
	gmailCapsPost = "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS ENABLE MOVE CONDSTORE ESEARCH LIST-EXTENDED LIST-STATUS SPECIAL-USE APPENDLIMIT=35651584"
)

func (s *gmSession) caps() string {
	c := gmailCapsPre
	if s.authed {
		c = gmailCapsPost
	} else if s.store.opts.Token != "" {
		c += " AUTH=XOAUTH2 AUTH=OAUTHBEARER"
	}
	if s.store.opts.LiteralPlus {
		return c + " LITERAL+"
	}
	return c + " LITERAL-"
}

// line writes one response line.
func (s *gmSession) line(format string, args ...any) {
	fmt.Fprintf(s.bw, format, args...)
	s.bw.WriteString("\r\n")
}

func (s *gmSession) ok(text string) {
	if s.throttled {
		text += " [THROTTLED]"
	}
	s.line("%s OK %s", s.tag, text)
}

func (s *gmSession) no(text string)  { s.line("%s NO %s", s.tag, text) }
func (s *gmSession) bad(text string) { s.line("%s BAD %s", s.tag, text) }

func (s *gmSession) bye(text string) {
	s.line("* BYE %s", text)
	s.closed = true
}

func (s *gmSession) serve() {
	defer func() {
		if s.authed {
			s.store.mu.Lock()
			s.store.authed--
			s.store.mu.Unlock()
		}
	}()
	// Gmail's greeting (Google's documentation shows it).
	s.line("* OK Gimap ready for requests from %s", s.c.RemoteAddr())
	if s.bw.Flush() != nil {
		return
	}
	for !s.closed {
		tag, command, args, err := readCommand(s.br, &ScriptWriter{c: s.c, bw: s.bw})
		if err != nil {
			return
		}
		s.tag = tag
		s.dispatch(command, args)
		if s.bw.Flush() != nil {
			return
		}
	}
}

// limited answers the command instead of running it when a limit says so.
func (s *gmSession) limited(command string) bool {
	st := s.store
	st.mu.Lock()
	st.commands++
	lim := st.opts.Limits
	expired := s.authed && s.expireGen != st.expireGen
	s.throttled = lim.ThrottleAfter > 0 && st.commands >= lim.ThrottleAfter
	over := (lim.OverQuotaAfterCommands > 0 && st.commands > lim.OverQuotaAfterCommands) ||
		(lim.OverQuotaAfterBytes > 0 && st.fetched >= lim.OverQuotaAfterBytes)
	st.mu.Unlock()
	if s.authed {
		s.commands++
		if lim.SessionExpiresAfter > 0 && s.commands >= lim.SessionExpiresAfter {
			expired = true
		}
	}
	switch {
	case expired:
		s.bye("Session expired, please login again.")
		return true
	case over && s.authed && command != "LOGOUT":
		s.no("[OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)")
		return true
	}
	return false
}

func (s *gmSession) dispatch(command, args string) {
	if s.limited(command) {
		return
	}
	p := &gmParser{s: args}
	var err error
	switch command {
	case "CAPABILITY":
		s.line("* CAPABILITY %s", s.caps())
		s.ok("Thats all she wrote!")
		return
	case "NOOP", "CHECK":
		if command == "CHECK" && s.sel == nil {
			break
		}
		s.poll(true)
		s.ok("Success")
		return
	case "LOGOUT":
		s.bye("LOGOUT Requested")
		s.line("%s OK 73 good day (Success)", s.tag)
		return
	case "ID":
		s.line(`* ID ("name" "GImap" "vendor" "Google, Inc." "support-url" "https://support.google.com/mail")`)
		s.ok("Success")
		return
	case "LOGIN":
		err = s.login(p)
	case "AUTHENTICATE":
		err = s.authenticate(p)
	}
	if command == "LOGIN" || command == "AUTHENTICATE" {
		if err != nil {
			s.bad("Could not parse command")
		}
		return
	}
	if !s.authed {
		s.bad("Unknown command or not allowed before authentication")
		return
	}
	handled := true
	switch command {
	case "SELECT", "EXAMINE":
		err = s.selectCmd(p, command == "EXAMINE")
	case "CREATE":
		err = s.create(p)
	case "DELETE":
		err = s.deleteCmd(p)
	case "RENAME":
		err = s.rename(p)
	case "SUBSCRIBE", "UNSUBSCRIBE":
		// Every Gmail mailbox is subscribed; the command changes nothing.
		_, err = p.astring()
		if err == nil {
			s.ok("Success")
		}
	case "LIST", "LSUB", "XLIST":
		err = s.list(p, command)
	case "STATUS":
		err = s.status(p)
	case "APPEND":
		err = s.appendCmd(p)
	case "NAMESPACE":
		s.line(`* NAMESPACE (("" "/")) NIL NIL`)
		s.ok("Success")
	case "ENABLE":
		err = s.enable(p)
	case "IDLE":
		s.idle()
	case "GETQUOTAROOT", "GETQUOTA":
		err = s.quota(p, command)
	default:
		handled = false
	}
	if !handled {
		if s.sel == nil {
			s.bad("Unknown command or no mailbox selected")
			return
		}
		err = s.selected(command, p)
	}
	if err != nil {
		s.bad("Could not parse command")
	}
}

func (s *gmSession) login(p *gmParser) error {
	user, err := p.astring()
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	pass, err := p.astring()
	if err != nil {
		return err
	}
	if s.authed {
		s.bad("Already authenticated")
		return nil
	}
	if user != gmailUser || pass != gmailPassword {
		s.no("[AUTHENTICATIONFAILED] Invalid credentials (Failure)")
		return nil
	}
	s.authenticated(user)
	return nil
}

// authenticated ends a successful login, or refuses it when the account
// has all the connections it may have.
func (s *gmSession) authenticated(user string) {
	st := s.store
	st.mu.Lock()
	limit := st.opts.Limits.MaxConnections
	if limit == 0 {
		limit = gmailMaxConnections
	}
	full := limit > 0 && st.authed >= limit
	if !full {
		st.authed++
		st.logins++
		st.peak = max(st.peak, st.authed)
		s.expireGen = st.expireGen
	}
	st.mu.Unlock()
	if full {
		s.no("[ALERT] Too many simultaneous connections. (Failure)")
		return
	}
	s.authed = true
	s.line("* CAPABILITY %s", s.caps())
	s.ok(user + " authenticated (Success)")
}

// authenticate runs AUTHENTICATE PLAIN, XOAUTH2 or OAUTHBEARER (RFC 9051
// §6.2.2, with SASL-IR's initial response, RFC 4959). A refused OAuth
// token gets Gmail's error challenge, a base64 JSON object, and then NO
// once the client answers it (Google's XOAUTH2 documentation,
// developers.google.com/gmail/imap/xoauth2-protocol).
func (s *gmSession) authenticate(p *gmParser) error {
	mech, err := p.atom()
	if err != nil {
		return err
	}
	mech = strings.ToUpper(mech)
	oauth := mech == "XOAUTH2" || mech == "OAUTHBEARER"
	if s.authed || !(mech == "PLAIN" || (oauth && s.store.opts.Token != "")) {
		s.no("[CANNOT] Unsupported mechanism or already authenticated (Failure)")
		return nil
	}
	var ir string
	if p.more() {
		if ir, err = p.atom(); err != nil {
			return err
		}
	} else {
		if ir, err = s.continuation(""); err != nil {
			return nil
		}
	}
	if ir == "*" {
		s.bad("Authentication cancelled")
		return nil
	}
	resp, err := base64.StdEncoding.DecodeString(ir)
	if err != nil && ir != "=" {
		s.bad("Invalid base64")
		return nil
	}
	var user, secret string
	var ok bool
	switch mech {
	case "PLAIN":
		parts := strings.Split(string(resp), "\x00")
		if len(parts) == 3 && (parts[0] == "" || parts[0] == parts[1]) {
			user, secret, ok = parts[1], parts[2], parts[2] == gmailPassword
		}
	case "XOAUTH2":
		user, secret, ok = parseXOAuth2(resp)
		ok = ok && secret == s.store.opts.Token
	case "OAUTHBEARER":
		user, secret, ok = parseOAuthBearer(resp)
		ok = ok && secret == s.store.opts.Token
	}
	if ok && user == gmailUser {
		s.authenticated(user)
		return nil
	}
	if oauth {
		if _, err := s.continuation(base64.StdEncoding.EncodeToString(
			[]byte(`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`))); err != nil {
			return nil
		}
	}
	s.no("[AUTHENTICATIONFAILED] Invalid credentials (Failure)")
	return nil
}

// continuation sends "+ text" and reads the client's line.
func (s *gmSession) continuation(text string) (string, error) {
	s.line("+ %s", text)
	if err := s.bw.Flush(); err != nil {
		s.closed = true
		return "", err
	}
	l, err := readLine(s.br)
	if err != nil {
		s.closed = true
	}
	return l, err
}

// mailboxName reads a mailbox argument and decodes it from modified UTF-7.
func mailboxName(p *gmParser) (string, error) {
	raw, err := p.astring()
	if err != nil {
		return "", err
	}
	name, err := decodeMUTF7(raw)
	if err != nil {
		return "", errSyntax
	}
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	return strings.TrimSuffix(name, "/"), nil
}

func (s *gmSession) selectCmd(p *gmParser, readOnly bool) error {
	name, err := mailboxName(p)
	if err != nil {
		return err
	}
	if p.more() {
		// RFC 7162 §3.1.8: SELECT (CONDSTORE) enables CONDSTORE.
		err := p.list(func() error {
			a, err := p.atom()
			if strings.EqualFold(a, "CONDSTORE") {
				s.condstore = true
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	s.sel, s.view = nil, nil
	st := s.store
	st.mu.Lock()
	b := st.boxLocked(name)
	if b == nil || b.noSelect {
		st.mu.Unlock()
		s.no("[NONEXISTENT] Unknown Mailbox: " + name + " (now in authenticated state) (Failure)")
		return nil
	}
	s.sel, s.readOnly = b, readOnly
	s.view = slices.Clone(b.entries)
	s.seenMod = st.modseq
	s.reported = nil
	keywords := map[string]bool{}
	for _, e := range b.entries {
		for _, f := range e.msg.flags {
			if !strings.HasPrefix(f, `\`) {
				keywords[f] = true
			}
		}
	}
	uidv, uidNext, hms, n := b.uidValidity, b.uidNext, b.modseq, len(b.entries)
	st.mu.Unlock()
	flags := []string{`\Answered`, `\Flagged`, `\Draft`, `\Deleted`, `\Seen`}
	for k := range keywords {
		flags = append(flags, k)
	}
	slices.Sort(flags[5:])
	s.line("* FLAGS (%s)", strings.Join(flags, " "))
	s.line("* OK [PERMANENTFLAGS (%s \\*)] Flags permitted.", strings.Join(flags, " "))
	s.line("* OK [UIDVALIDITY %d] UIDs valid.", uidv)
	s.line("* %d EXISTS", n)
	s.line("* 0 RECENT")
	s.line("* OK [UIDNEXT %d] Predicted next UID.", uidNext)
	// RFC 7162 §3.1.2.1: a CONDSTORE server answers SELECT with
	// HIGHESTMODSEQ.
	s.line("* OK [HIGHESTMODSEQ %d]", hms)
	mode := "READ-WRITE"
	if readOnly {
		mode = "READ-ONLY"
	}
	s.ok(fmt.Sprintf("[%s] %s selected. (Success)", mode, encodeMUTF7(name)))
	return nil
}

// userBoxName checks a name a client wants to create or rename to.
// "[Gmail]" and what is below it are Gmail's own.
func userBoxName(name string) bool {
	return name != "" && !strings.EqualFold(name, "INBOX") && name != "[Gmail]" && !strings.HasPrefix(name, "[Gmail]/") && !strings.Contains(name, "//")
}

func (s *gmSession) create(p *gmParser) error {
	name, err := mailboxName(p)
	if err != nil {
		return err
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.boxLocked(name) != nil:
		s.no("[ALREADYEXISTS] Duplicate folder name " + encodeMUTF7(name) + " (Failure)")
	case !userBoxName(name):
		s.no("[CANNOT] Invalid folder name " + encodeMUTF7(name) + " (Failure)")
	default:
		// A folder is a label; "a/b" makes "a" too, as Gmail shows
		// nested labels (Gmail Help answer 77657).
		st.labelBoxLocked(name)
		st.signalLocked()
		s.ok("Success")
	}
	return nil
}

func (s *gmSession) deleteCmd(p *gmParser) error {
	name, err := mailboxName(p)
	if err != nil {
		return err
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	b := st.boxLocked(name)
	switch {
	case b == nil:
		s.no("[NONEXISTENT] No folder " + encodeMUTF7(name) + " (Failure)")
	case b.system:
		s.no("[CANNOT] Cannot delete system folder (Failure)")
	default:
		st.deleteBoxLocked(b)
		s.ok("Success")
	}
	return nil
}

func (s *gmSession) rename(p *gmParser) error {
	from, err := mailboxName(p)
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	to, err := mailboxName(p)
	if err != nil {
		return err
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	b := st.boxLocked(from)
	switch {
	case b == nil:
		s.no("[NONEXISTENT] No folder " + encodeMUTF7(from) + " (Failure)")
	case b.system || !userBoxName(to):
		s.no("[CANNOT] Cannot rename to or from a system folder (Failure)")
	case st.boxLocked(to) != nil:
		s.no("[ALREADYEXISTS] Duplicate folder name " + encodeMUTF7(to) + " (Failure)")
	default:
		st.renameBoxLocked(from, to)
		if i := strings.LastIndexByte(to, '/'); i > 0 {
			st.labelBoxLocked(to[:i])
		}
		s.ok("Success")
	}
	return nil
}

// list answers LIST (with RFC 5258 LIST-EXTENDED's selection and return
// options, RFC 5819 LIST-STATUS and RFC 6154 SPECIAL-USE), LSUB and XLIST
// (Gmail's older form, where INBOX carries \Inbox). Special-use
// attributes are in every LIST response, asked for or not (Google's
// documentation: "This is not a new capability, and it does not need to
// be ENABLEd").
func (s *gmSession) list(p *gmParser, command string) error {
	var specialOnly bool
	if command == "LIST" && p.peek() == '(' {
		err := p.list(func() error {
			a, err := p.atom()
			if strings.EqualFold(a, "SPECIAL-USE") {
				specialOnly = true
			}
			return err
		})
		if err != nil || p.sp() != nil {
			return errSyntax
		}
	}
	ref, err := mailboxName(p)
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	var patterns []string
	if p.peek() == '(' {
		err = p.list(func() error {
			v, err := p.astring()
			patterns = append(patterns, v)
			return err
		})
	} else {
		var v string
		v, err = p.astring()
		patterns = append(patterns, v)
	}
	if err != nil {
		return err
	}
	var subscribed bool
	var status []string
	if command == "LIST" && p.more() {
		a, err := p.atom()
		if err != nil || !strings.EqualFold(a, "RETURN") || p.sp() != nil {
			return errSyntax
		}
		err = p.list(func() error {
			a, err := p.atom()
			switch strings.ToUpper(a) {
			case "SUBSCRIBED":
				subscribed = true
			case "STATUS":
				if p.sp() != nil {
					return errSyntax
				}
				return p.list(func() error {
					a, err := p.atom()
					status = append(status, strings.ToUpper(a))
					return err
				})
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if len(patterns) == 1 && patterns[0] == "" {
		// RFC 9051 §6.3.9: the delimiter and the root of ref.
		s.line(`* %s (\Noselect) "/" ""`, command)
		s.ok("Success")
		return nil
	}
	for i, pat := range patterns {
		if d, err := decodeMUTF7(pat); err == nil {
			patterns[i] = d
		}
	}
	st := s.store
	st.mu.Lock()
	boxes := st.sortedBoxesLocked()
	type row struct {
		b     *gmBox
		attrs []string
	}
	var rows []row
	for _, b := range boxes {
		match := false
		for _, pat := range patterns {
			name := b.name
			if name == "INBOX" && strings.EqualFold(pat, "INBOX") {
				pat = "INBOX"
			}
			if imapserver.MatchList(name, '/', ref, pat) {
				match = true
			}
		}
		if !match || (specialOnly && b.special == "") {
			continue
		}
		children := false
		for _, o := range boxes {
			if strings.HasPrefix(o.name, b.name+"/") {
				children = true
			}
		}
		var attrs []string
		if b.noSelect {
			attrs = append(attrs, `\Noselect`)
		}
		if children {
			attrs = append(attrs, `\HasChildren`)
		} else {
			attrs = append(attrs, `\HasNoChildren`)
		}
		if b.special != "" {
			attrs = append(attrs, b.special)
		}
		if command == "XLIST" && b.name == "INBOX" {
			attrs = append(attrs, `\Inbox`)
		}
		if subscribed && !b.noSelect {
			attrs = append(attrs, `\Subscribed`)
		}
		rows = append(rows, row{b, attrs})
	}
	var statusLines []string
	for _, r := range rows {
		if len(status) > 0 && !r.b.noSelect {
			items, err := statusItems(r.b, status)
			if err != nil {
				st.mu.Unlock()
				return err
			}
			statusLines = append(statusLines, fmt.Sprintf("* STATUS %s (%s)", mailboxArg(r.b.name), items))
		} else {
			statusLines = append(statusLines, "")
		}
	}
	st.mu.Unlock()
	for i, r := range rows {
		s.line(`* %s (%s) "/" %s`, command, strings.Join(r.attrs, " "), mailboxArg(r.b.name))
		if statusLines[i] != "" {
			s.line("%s", statusLines[i])
		}
	}
	s.ok("Success")
	return nil
}

// statusItems renders STATUS data items for b. The caller holds the
// store's mutex.
func statusItems(b *gmBox, items []string) (string, error) {
	var out []string
	for _, it := range items {
		var v uint64
		switch it {
		case "MESSAGES":
			v = uint64(len(b.entries))
		case "RECENT":
			v = 0
		case "UIDNEXT":
			v = uint64(b.uidNext)
		case "UIDVALIDITY":
			v = uint64(b.uidValidity)
		case "UNSEEN":
			for _, e := range b.entries {
				if !e.msg.hasFlag(`\Seen`) {
					v++
				}
			}
		case "HIGHESTMODSEQ":
			v = b.modseq
		default:
			return "", errSyntax
		}
		out = append(out, it+" "+strconv.FormatUint(v, 10))
	}
	return strings.Join(out, " "), nil
}

func (s *gmSession) status(p *gmParser) error {
	name, err := mailboxName(p)
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	var items []string
	err = p.list(func() error {
		a, err := p.atom()
		items = append(items, strings.ToUpper(a))
		return err
	})
	if err != nil {
		return err
	}
	st := s.store
	st.mu.Lock()
	b := st.boxLocked(name)
	if b == nil || b.noSelect {
		st.mu.Unlock()
		s.no("[NONEXISTENT] Unknown Mailbox: " + encodeMUTF7(name) + " (Failure)")
		return nil
	}
	out, err := statusItems(b, items)
	st.mu.Unlock()
	if err != nil {
		return err
	}
	s.line("* STATUS %s (%s)", mailboxArg(name), out)
	s.ok("Success")
	return nil
}

func (s *gmSession) enable(p *gmParser) error {
	var enabled []string
	for {
		a, err := p.atom()
		if err != nil {
			return err
		}
		// QRESYNC is not Gmail's (it does not advertise it).
		if strings.EqualFold(a, "CONDSTORE") {
			s.condstore = true
			enabled = append(enabled, "CONDSTORE")
		}
		if !p.more() {
			break
		}
	}
	s.line("* ENABLED %s", strings.Join(enabled, " "))
	s.ok("Success")
	return nil
}

// quota answers GETQUOTAROOT and GETQUOTA (RFC 9208) with one root, "",
// as Gmail's whole account is one quota.
func (s *gmSession) quota(p *gmParser, command string) error {
	if _, err := p.astring(); err != nil {
		return err
	}
	st := s.store
	st.mu.Lock()
	var used int
	for _, m := range st.msgs {
		if !m.gone {
			used += len(m.body)
		}
	}
	st.mu.Unlock()
	if command == "GETQUOTAROOT" {
		s.line(`* QUOTAROOT "INBOX" ""`)
	}
	s.line(`* QUOTA "" (STORAGE %d 15728640)`, (used+1023)/1024)
	s.ok("Success")
	return nil
}

// appendCmd stores a message (RFC 9051 §6.3.12; APPENDUID, RFC 4315 §3).
func (s *gmSession) appendCmd(p *gmParser) error {
	name, err := mailboxName(p)
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	var flags []string
	if p.peek() == '(' {
		err := p.list(func() error {
			f, err := p.atom()
			flags = append(flags, f)
			return err
		})
		if err != nil || p.sp() != nil {
			return errSyntax
		}
	}
	var date time.Time
	if p.peek() == '"' {
		d, err := p.astring()
		if err != nil || p.sp() != nil {
			return errSyntax
		}
		if date, err = time.Parse("_2-Jan-2006 15:04:05 -0700", d); err != nil {
			return errSyntax
		}
	}
	if p.peek() != '{' {
		return errSyntax
	}
	body, err := p.astring()
	if err != nil {
		return err
	}
	st := s.store
	st.mu.Lock()
	b := st.boxLocked(name)
	if b == nil || b.noSelect {
		st.mu.Unlock()
		s.no("[TRYCREATE] Folder doesn't exist. (Failure)")
		return nil
	}
	e := st.appendLocked(b, []byte(body), flags, date)
	uidv := b.uidValidity
	st.mu.Unlock()
	s.poll(true)
	if e == nil {
		s.ok("Success")
		return nil
	}
	s.ok(fmt.Sprintf("[APPENDUID %d %d] (Success)", uidv, e.uid))
	return nil
}

// idle waits for changes (RFC 2177) until DONE, reporting them as they
// come; a GmailExpireSessions ends it with BYE.
func (s *gmSession) idle() {
	s.line("+ idling")
	done := make(chan error, 1)
	go func() {
		l, err := readLine(s.br)
		if err == nil && !strings.EqualFold(l, "DONE") {
			err = errSyntax
		}
		done <- err
	}()
	for {
		// The signal is taken before the poll: a change made after the
		// poll closes this channel, however soon it comes.
		s.store.mu.Lock()
		changed := s.store.changed
		expired := s.expireGen != s.store.expireGen
		s.store.mu.Unlock()
		if expired {
			s.bye("Session expired, please login again.")
			s.bw.Flush()
			s.c.Close()
			<-done
			return
		}
		s.poll(true)
		if s.bw.Flush() != nil {
			s.closed = true
			s.c.Close()
			<-done
			return
		}
		select {
		case err := <-done:
			if err != nil {
				if err == errSyntax {
					s.bad("Expected DONE")
				} else {
					s.closed = true
				}
				return
			}
			s.ok("IDLE terminated (Success)")
			return
		case <-changed:
		}
	}
}

// poll tells the client what changed in the selected mailbox since it
// last heard: EXPUNGE for messages gone (only when allowed: RFC 9051
// §7.5.1 forbids them during FETCH, STORE and SEARCH), EXISTS for new
// ones, and FETCH FLAGS for changed ones (RFC 9051 §7.5.2; with MODSEQ
// once CONDSTORE is on, RFC 7162 §3.1.4).
func (s *gmSession) poll(allowExpunge bool) {
	if s.sel == nil {
		return
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	b := s.sel
	if allowExpunge {
		for i := len(s.view) - 1; i >= 0; i-- {
			if b.entryOf(s.view[i].msg) != s.view[i] {
				s.line("* %d EXPUNGE", i+1)
				s.view = slices.Delete(s.view, i, i+1)
			}
		}
	}
	var last uint32
	if len(s.view) > 0 {
		last = s.view[len(s.view)-1].uid
	}
	added := false
	for _, e := range b.entries {
		if e.uid > last {
			s.view = append(s.view, e)
			added = true
		}
	}
	if added {
		s.line("* %d EXISTS", len(s.view))
	}
	for i, e := range s.view {
		m := e.msg
		if m.modseq <= s.seenMod || s.reported[m] >= m.modseq || b.entryOf(m) != e {
			continue
		}
		if s.condstore {
			s.line("* %d FETCH (UID %d FLAGS (%s) MODSEQ (%d))", i+1, e.uid, strings.Join(entryFlags(e), " "), m.modseq)
		} else {
			s.line("* %d FETCH (UID %d FLAGS (%s))", i+1, e.uid, strings.Join(entryFlags(e), " "))
		}
	}
	s.seenMod = st.modseq
	s.reported = nil
}

// entryFlags are a message's flags as mailbox entry e shows them.
func entryFlags(e *gmEntry) []string {
	f := slices.Clone(e.msg.flags)
	if e.deleted {
		f = append(f, `\Deleted`)
		slices.Sort(f)
	}
	return f
}
