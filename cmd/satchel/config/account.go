package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The schema: the keys each mapping may hold, in the order the example
// file documents them.
var (
	topKeys     = []string{"accounts", "parallel_accounts"}
	accountKeys = []string{"name", "imap", "maildir", "layout", "index", "mailboxes", "sync", "watch", "watch_interval", "hooks", "notmuch", "gmail"}
	imapKeys    = []string{"host", "port", "tls", "tls_fingerprint", "user", "auth", "password_command", "password", "oauth2_token_command", "connections", "prefix", "compress"}
	mailboxKeys = []string{"include", "exclude", "map"}
	syncKeys    = []string{"direction", "expunge", "trash", "conflict", "max_delete", "remove_folders", "since", "max_size", "max_messages"}
	hookKeys    = []string{"pre", "post"}
	notmuchKeys = []string{"enabled", "config", "keywords", "local_tags"}
	gmailKeys   = []string{"labels", "label_scan_every", "read_only"}
)

const (
	defaultWatchInterval = 15 * time.Minute
	defaultConnections   = 4
	defaultWatch         = "INBOX"
	// defaultParallelAccounts: a few accounts at once overlap their
	// servers' round trips without opening more connections than a
	// laptop on a slow link carries well (each account has up to
	// imap.connections of its own).
	defaultParallelAccounts = 4
)

// newAccount returns an account holding every default that does not depend
// on other keys.
func newAccount() Account {
	return Account{
		IMAP:          IMAP{TLS: "implicit", Auth: "plain", Connections: defaultConnections, Compress: "auto"},
		Layout:        "verbatim",
		Mailboxes:     Mailboxes{Include: []string{"*"}},
		Sync:          Sync{Direction: "both", Expunge: "both", Conflict: "merge", MaxDelete: defaultMaxDelete},
		Watch:         []string{defaultWatch},
		WatchInterval: defaultWatchInterval,
		Notmuch:       Notmuch{LocalTags: slices.Clone(DefaultLocalTags)},
		Gmail:         Gmail{Labels: "folders", LabelScanEvery: 24, ReadOnly: []string{`\Important`}},
	}
}

// DefaultLocalTags are notmuch.local_tags' default: notmuch's own tags and
// those maildir.synchronize_flags keeps in the file name. They are the
// tag mapping's (sync/tagmap.DefaultLocal), which this package must not
// import; a test in cmd/satchel keeps the two lists equal.
var DefaultLocalTags = []string{"new", "inbox", "unread", "replied", "passed", "flagged", "draft", "attachment", "signed", "encrypted"}

// accounts decodes the whole file. Every value is parsed and validated
// before any key is refused as not implemented, so that a malformed value
// is reported as such.
func (d *decoder) accounts(root *yaml.Node, parallel *int) []Account {
	top := d.mapping(root, "", 1, topKeys)
	top.integer("parallel_accounts", parallel, 1, 32)
	list := top.get("accounts")
	if d.err != nil {
		return nil
	}
	if list == nil || list.Kind == yaml.SequenceNode && len(list.Content) == 0 {
		line, key := d.line("accounts", 0), "accounts"
		if line == 0 {
			key = ""
		}
		d.fail(line, key, "no accounts configured; add an accounts: list (see config.example.yaml)")
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		top.fail("accounts", "must be a list of accounts, each starting with \"- name: ...\"")
		return nil
	}
	accounts := make([]Account, 0, len(list.Content))
	itemLines := make([]int, 0, len(list.Content))
	for i, item := range list.Content {
		a := d.account(item, i)
		if d.err != nil {
			return nil
		}
		accounts = append(accounts, a)
		itemLines = append(itemLines, item.Line)
	}
	d.checkUnique(accounts, itemLines)
	for i := range accounts {
		d.checkImplemented(&accounts[i], i)
	}
	return accounts
}

// account decodes and validates accounts[i].
func (d *decoder) account(item *yaml.Node, i int) Account {
	path := fmt.Sprintf("accounts[%d]", i)
	m := d.mapping(item, path, item.Line, accountKeys)
	a := newAccount()

	m.str("name", &a.Name)

	im := m.sub("imap", imapKeys)
	im.str("host", &a.IMAP.Host)
	portSet := im.integer("port", &a.IMAP.Port, 1, 65535)
	im.enum("tls", &a.IMAP.TLS, "implicit", "starttls", "none")
	parsed(im, "tls_fingerprint", &a.IMAP.TLSFingerprint, "a string of hex digits", parseFingerprint)
	im.str("user", &a.IMAP.User)
	im.enum("auth", &a.IMAP.Auth, "plain", "login", "xoauth2", "oauthbearer")
	im.str("password_command", &a.IMAP.PasswordCommand)
	im.str("password", &a.IMAP.Password)
	im.str("oauth2_token_command", &a.IMAP.OAuth2TokenCommand)
	im.integer("connections", &a.IMAP.Connections, 1, 32)
	if p, ok := im.scalar("prefix", "a string"); ok && p != "auto" {
		a.IMAP.Prefix = &p
	}
	im.enum("compress", &a.IMAP.Compress, "auto", "off")
	if !portSet {
		a.IMAP.Port = 143
		if a.IMAP.TLS == "implicit" {
			a.IMAP.Port = 993
		}
	}

	parsed(m, "maildir", &a.Maildir, "a path", expandPath)
	m.enum("layout", &a.Layout, "verbatim", "maildir++")
	parsed(m, "index", &a.Index, "a path", expandPath)

	mb := m.sub("mailboxes", mailboxKeys)
	mb.list("include", &a.Mailboxes.Include, `["*"]`, checkPattern)
	if a.Mailboxes.Include == nil {
		mb.fail("include", `must list at least one pattern; use ["*"] for every mailbox`)
	}
	mb.list("exclude", &a.Mailboxes.Exclude, `["Junk", "Archive/*"]`, checkPattern)
	a.Mailboxes.Map = mb.mailboxMap("map")

	s := m.sub("sync", syncKeys)
	s.enum("direction", &a.Sync.Direction, "both", "pull", "push")
	s.enum("expunge", &a.Sync.Expunge, "both", "local", "remote", "none")
	s.str("trash", &a.Sync.Trash)
	s.enum("conflict", &a.Sync.Conflict, "merge", "remote", "local")
	parsed(s, "max_delete", &a.Sync.MaxDelete, "a share or a count", parseMaxDelete)
	s.boolean("remove_folders", &a.Sync.RemoveFolders)
	parsed(s, "since", &a.Sync.Since, "a date or a number of days", parseSince)
	parsed(s, "max_size", &a.Sync.MaxSize, "a size", parseSize)
	s.integer("max_messages", &a.Sync.MaxMessages, 0, maxCount)

	m.list("watch", &a.Watch, "[INBOX]", nil)
	parsed(m, "watch_interval", &a.WatchInterval, "a duration", parseDuration)

	h := m.sub("hooks", hookKeys)
	h.str("pre", &a.Hooks.Pre)
	h.str("post", &a.Hooks.Post)

	n := m.sub("notmuch", notmuchKeys)
	n.boolean("enabled", &a.Notmuch.Enabled)
	parsed(n, "config", &a.Notmuch.Config, "a path", optionalPath)
	a.Notmuch.Keywords = n.stringMap("keywords", `{"$Junk": spam}`)
	n.list("local_tags", &a.Notmuch.LocalTags, "[new, inbox, unread]", nil)
	if a.Notmuch.LocalTags == nil {
		// [] keeps nothing local: the list replaces the default.
		a.Notmuch.LocalTags = []string{}
	}

	g := m.sub("gmail", gmailKeys)
	g.enum("labels", &a.Gmail.Labels, "folders", "tags")
	g.integer("label_scan_every", &a.Gmail.LabelScanEvery, 1, 100000)
	g.list("read_only", &a.Gmail.ReadOnly, `["\\Important"]`, nil)
	if a.Gmail.Labels == "tags" && !a.Notmuch.Enabled && d.err == nil {
		g.fail("labels", "gmail.labels: tags syncs labels with notmuch tags; set notmuch.enabled: true, or labels: folders")
	}

	if d.err == nil {
		d.validate(&a, m, im)
	}
	return a
}

// optionalPath is expandPath, with "" for the default.
func optionalPath(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	return expandPath(s)
}

// stringMap decodes key as a mapping of names to non-empty strings,
// recording each entry's line under key["name"]; nil when the file sets
// none. What the names must be is checked by the caller.
func (m *mapping) stringMap(key, example string) map[string]string {
	v := m.get(key)
	if v == nil {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		m.fail(key, "must be a mapping, such as %s", example)
		return nil
	}
	mm := m.d.mapping(v, m.child(key), m.vals[key].key.Line, nil)
	out := make(map[string]string, len(mm.order))
	for _, name := range mm.order {
		e := mm.vals[name]
		path := fmt.Sprintf(`%s["%s"]`, mm.path, name)
		m.d.lines[path] = e.key.Line
		val := resolve(e.val)
		switch {
		case name == "":
			m.d.fail(e.key.Line, path, "the name must not be empty")
		case val == nil || val.Kind != yaml.ScalarNode || isNull(val) || val.Value == "":
			m.d.fail(e.key.Line, path, "must be a string, not %s", describe(val))
		}
		if m.d.err != nil {
			return nil
		}
		out[name] = val.Value
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// mailboxMap decodes mailboxes.map: remote names or special-use attributes
// to local names, no two remote mailboxes sharing a local one.
func (m *mapping) mailboxMap(key string) map[string]string {
	v := m.get(key)
	if v == nil {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		m.fail(key, `must be a mapping from remote names to local names, such as {"\Sent": Sent}`)
		return nil
	}
	mm := m.d.mapping(v, m.child(key), m.vals[key].key.Line, nil)
	out := make(map[string]string, len(mm.order))
	from := map[string]string{} // local name -> remote name that claimed it
	for _, remote := range mm.order {
		e := mm.vals[remote]
		path := fmt.Sprintf(`%s["%s"]`, mm.path, remote)
		val := resolve(e.val)
		switch {
		case remote == "":
			m.d.fail(e.key.Line, path, "remote name must not be empty")
		case val == nil || val.Kind != yaml.ScalarNode || isNull(val) || val.Value == "":
			m.d.fail(e.key.Line, path, "must be a local mailbox name, not %s", describe(val))
		}
		if m.d.err != nil {
			return nil
		}
		if strings.HasPrefix(remote, `\`) {
			canon, ok := canonicalSpecialUse(remote)
			if !ok {
				m.d.fail(e.key.Line, path, "unknown special-use attribute; RFC 6154 defines %s", strings.Join(specialUse, ", "))
				return nil
			}
			remote = canon
		}
		if other, dup := from[val.Value]; dup {
			m.d.fail(e.key.Line, path, "local name %q is already the target of %q; each local mailbox needs one source", val.Value, other)
			return nil
		}
		if _, dup := out[remote]; dup {
			m.d.fail(e.key.Line, path, "%s is mapped twice", remote)
			return nil
		}
		from[val.Value] = remote
		out[remote] = val.Value
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// validate checks what one value cannot show alone: required keys, and
// keys that depend on each other. It fills in the index default, which
// needs a valid name.
func (d *decoder) validate(a *Account, m, im *mapping) {
	key := func(k string) string { return m.path + "." + k }
	switch {
	case a.Name == "":
		d.fail(m.line, key("name"), "missing; give the account a short name such as personal (it names the index file and is used on the command line)")
	case checkName(a.Name) != "":
		m.fail("name", "%s", checkName(a.Name))
	case a.IMAP.Host == "":
		d.fail(im.line, key("imap.host"), "missing; set it to the IMAP server's host name, such as imap.example.org")
	case checkHost(a.IMAP.Host) != "":
		im.fail("host", "%s", checkHost(a.IMAP.Host))
	case a.IMAP.User == "":
		d.fail(im.line, key("imap.user"), "missing; set it to the IMAP login name, often the email address")
	}
	if d.err != nil {
		return
	}

	switch a.IMAP.Auth {
	case "plain", "login":
		switch {
		case a.IMAP.Password == "" && a.IMAP.PasswordCommand == "":
			d.fail(im.line, key("imap.password_command"),
				"missing; auth: %s needs password_command (a command that prints the password) or password", a.IMAP.Auth)
		case a.IMAP.Password != "" && a.IMAP.PasswordCommand != "":
			im.fail("password", "set either password or password_command, not both")
		}
	case "xoauth2", "oauthbearer":
		if a.IMAP.OAuth2TokenCommand == "" {
			d.fail(im.line, key("imap.oauth2_token_command"),
				"missing; auth: %s needs oauth2_token_command, a command that prints an access token", a.IMAP.Auth)
		}
	}
	switch {
	case a.IMAP.TLS == "none" && !IsLoopback(a.IMAP.Host):
		im.fail("tls", "tls: none would send the password in clear text to %s; use tls: implicit or starttls (none is allowed only for loopback addresses)", a.IMAP.Host)
	case a.IMAP.TLS == "none" && a.IMAP.TLSFingerprint != nil:
		im.fail("tls_fingerprint", "a fingerprint needs TLS; remove it or set tls: implicit or starttls")
	case a.Maildir == "":
		d.fail(m.line, key("maildir"), "missing; set it to the directory of this account's Maildir, such as ~/Mail/%s", a.Name)
	}
	if d.err != nil || a.Index != "" {
		return
	}
	idx, err := defaultIndex(a.Name)
	if err != nil {
		d.fail(m.line, key("index"), "%v", err)
		return
	}
	a.Index = idx
}

// checkUnique refuses accounts that would share a name, a Maildir or an
// index. Names are compared ignoring case because they name files, and
// some file systems ignore case.
func (d *decoder) checkUnique(accounts []Account, itemLines []int) {
	for i := range accounts {
		for j := range i {
			a, b := &accounts[i], &accounts[j]
			at := func(k string) (int, string) {
				key := fmt.Sprintf("accounts[%d].%s", i, k)
				return d.line(key, itemLines[i]), key
			}
			switch {
			case strings.EqualFold(a.Name, b.Name):
				line, key := at("name")
				d.fail(line, key, "duplicate account name %q; accounts[%d] on line %d is already called %q", a.Name, j, itemLines[j], b.Name)
			case a.Maildir == b.Maildir:
				line, key := at("maildir")
				d.fail(line, key, "%s is already the Maildir of accounts[%d] (%s); each account needs its own", a.Maildir, j, b.Name)
			case a.Index == b.Index:
				line, key := at("index")
				d.fail(line, key, "%s is already the index of accounts[%d] (%s); each account needs its own", a.Index, j, b.Name)
			}
			if d.err != nil {
				return
			}
		}
	}
}
