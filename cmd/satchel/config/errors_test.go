package config

import (
	"strings"
	"testing"
)

// TestParseErrors feeds one broken file per case and checks that the error
// points at the right line and key and says what to fix.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		line int
		key  string
		msg  string // a part of Error.Msg
	}{
		// The file as a whole.
		{"empty file", "", 0, "", "no accounts configured"},
		{"comments only", "# nothing yet\n", 0, "", "no accounts configured"},
		{"empty accounts", "accounts: []\n", 1, "accounts", "no accounts configured"},
		{"null accounts", "# x\naccounts:\n", 2, "accounts", "no accounts configured"},
		{"accounts not a list", "accounts:\n  name: personal\n", 1, "accounts", "must be a list of accounts"},
		{"not a mapping", "- personal\n", 1, "", "the file must be a mapping with the keys accounts, parallel_accounts, not a list"},
		{"yaml syntax", "accounts:\n  - name: a\n    imap: {host: x\n", 2, "", "invalid YAML: did not find expected ',' or '}'"},
		{"yaml tab", "accounts:\n  - name: a\n\timap: x\n", 2, "", "invalid YAML: found a tab character"},
		{"yaml tab indent", "accounts:\n\t- name: a\n", 2, "", "found character that cannot start any token (YAML does not allow tabs for indentation; use spaces)"},
		{"yaml error in second document", base + "---\n[\n", 9, "", "invalid YAML: did not find expected node content"},
		{"unknown anchor", "accounts: [*x]\n", 0, "", "invalid YAML: unknown anchor 'x' referenced"},
		{"second document", base + "---\naccounts: []\n", 8, "", "a second YAML document"},
		{"unknown top key", "account:\n  - name: a\n", 1, "account",
			`unknown key "account" at the top level (known keys: accounts, parallel_accounts); did you mean "accounts"?`},

		// Unknown and duplicate keys.
		{"unknown imap key", base + "      prot: 993\n", 8, "accounts[0].imap.prot",
			`unknown key "prot" in accounts[0].imap (known keys: host, port, tls, tls_fingerprint, user, auth, password_command, password, oauth2_token_command, connections, prefix, compress); did you mean "port"?`},
		{"unknown account key", base + "    maildirs: x\n", 8, "accounts[0].maildirs", `unknown key "maildirs" in accounts[0] (known keys: name, imap,`},
		{"unknown sync key", base + "    sync:\n      dry_run: true\n", 9, "accounts[0].sync.dry_run", `unknown key "dry_run" in accounts[0].sync`},
		{"duplicate account key", base + "    maildir: /srv/other\n", 8, "accounts[0].maildir", `duplicate key "maildir" (first set on line 3)`},
		{"duplicate imap key", base + "      user: other\n", 8, "accounts[0].imap.user", `duplicate key "user" (first set on line 6)`},
		{"duplicate map key", base + "    mailboxes:\n      map:\n        Sent: a\n        Sent: b\n", 11, "accounts[0].mailboxes.map.Sent", `duplicate key "Sent" (first set on line 10)`},
		{"non-scalar key", base + "      [a]: b\n", 8, "accounts[0].imap", "keys must be plain names, not a list"},

		// Wrong types.
		{"port not a number", base + "      port: imaps\n", 8, "accounts[0].imap.port", "must be a whole number from 1 to 65535"},
		{"port quoted", base + "      port: \"993\"\n", 8, "accounts[0].imap.port", "must be a whole number from 1 to 65535"},
		{"port zero", base + "      port: 0\n", 8, "accounts[0].imap.port", "must be a whole number from 1 to 65535"},
		{"port too large", base + "      port: 65536\n", 8, "accounts[0].imap.port", "must be a whole number from 1 to 65535"},
		{"port float", base + "      port: 993.5\n", 8, "accounts[0].imap.port", "must be a whole number from 1 to 65535"},
		{"connections zero", base + "      connections: 0\n", 8, "accounts[0].imap.connections", "must be a whole number from 1 to 32"},
		{"connections too many", base + "      connections: 33\n", 8, "accounts[0].imap.connections", "must be a whole number from 1 to 32"},
		{"max_messages negative", base + "    sync:\n      max_messages: -1\n", 9, "accounts[0].sync.max_messages", "must be a whole number, 0 or more"},
		{"bool as yes", base + "    sync:\n      remove_folders: yes\n", 9, "accounts[0].sync.remove_folders", "must be true or false"},
		{"bool as 1", base + "    sync:\n      remove_folders: 1\n", 9, "accounts[0].sync.remove_folders", "must be true or false"},
		{"string as list", strings.Replace(base, "user: me@example.org", "user: [me]", 1), 6, "accounts[0].imap.user", "must be a string, not a list"},
		{"string as mapping", base + "    hooks:\n      pre: {run: x}\n", 9, "accounts[0].hooks.pre", "must be a string, not a mapping"},
		{"list as string", base + "    mailboxes:\n      include: \"*\"\n", 9, "accounts[0].mailboxes.include", `must be a list of strings, such as ["*"]`},
		{"list item mapping", base + "    watch:\n      - INBOX\n      - {name: Sent}\n", 10, "accounts[0].watch[1]", "must be a string, not a mapping"},
		{"list item empty", base + "    watch: [INBOX, \"\"]\n", 8, "accounts[0].watch[1]", "must not be empty"},
		{"list item null", base + "    watch: [INBOX, ~]\n", 8, "accounts[0].watch[1]", "must be a string, not empty"},
		{"include empty", base + "    mailboxes:\n      include: []\n", 9, "accounts[0].mailboxes.include", "must list at least one pattern"},
		{"section not a mapping", base + "    sync: pull\n", 8, "accounts[0].sync", `must be a mapping with the keys direction, expunge,`},
		{"account not a mapping", "accounts:\n  - personal\n", 2, "accounts[0]", "must be a mapping with the keys name, imap,"},
		{"map not a mapping", base + "    mailboxes:\n      map: [Sent]\n", 9, "accounts[0].mailboxes.map", "must be a mapping from remote names to local names"},
		{"map value not a string", base + "    mailboxes:\n      map:\n        Sent: [a]\n", 10, `accounts[0].mailboxes.map["Sent"]`, "must be a local mailbox name, not a list"},

		// Missing keys.
		{"missing name", "accounts:\n  - maildir: /m\n    imap: {host: h, user: u, password: p}\n", 2, "accounts[0].name", "missing; give the account a short name"},
		{"missing imap", "accounts:\n  - name: a\n    maildir: /m\n", 2, "accounts[0].imap.host", "missing; set it to the IMAP server's host name"},
		{"missing host", "accounts:\n  - name: a\n    maildir: /m\n    imap:\n      user: u\n", 4, "accounts[0].imap.host", "missing"},
		{"empty host", "accounts:\n  - name: a\n    maildir: /m\n    imap:\n      host: \"\"\n      user: u\n", 4, "accounts[0].imap.host", "missing"},
		{"missing user", "accounts:\n  - name: a\n    maildir: /m\n    imap:\n      host: h\n", 4, "accounts[0].imap.user", "missing; set it to the IMAP login name"},
		{"missing maildir", "accounts:\n  - name: a\n    imap: {host: h, user: u, password_command: p}\n", 2, "accounts[0].maildir", "missing; set it to the directory of this account's Maildir, such as ~/Mail/a"},
		{"missing password", "accounts:\n  - name: a\n    maildir: /m\n    imap:\n      host: h\n      user: u\n      auth: login\n", 4, "accounts[0].imap.password_command",
			"missing; auth: login needs password_command (a command that prints the password) or password"},
		{"missing token command", "accounts:\n  - name: a\n    maildir: /m\n    imap:\n      host: h\n      user: u\n      auth: xoauth2\n", 4, "accounts[0].imap.oauth2_token_command",
			"missing; auth: xoauth2 needs oauth2_token_command"},
		{"password and command", base + "      password: hunter2\n", 8, "accounts[0].imap.password", "set either password or password_command, not both"},

		// Enumerations.
		{"bad tls", base + "      tls: ssl\n", 8, "accounts[0].imap.tls", `must be one of implicit, starttls, none (not "ssl")`},
		{"bad auth", base + "      auth: cram-md5\n", 8, "accounts[0].imap.auth", `must be one of plain, login, xoauth2, oauthbearer (not "cram-md5")`},
		{"bad layout", base + "    layout: flat\n", 8, "accounts[0].layout", `must be one of verbatim, maildir++ (not "flat")`},
		{"bad direction", base + "    sync:\n      direction: up\n", 9, "accounts[0].sync.direction", `must be one of both, pull, push (not "up")`},
		{"bad expunge", base + "    sync:\n      expunge: all\n", 9, "accounts[0].sync.expunge", `must be one of both, local, remote, none (not "all")`},
		{"bad conflict", base + "    sync:\n      conflict: newest\n", 9, "accounts[0].sync.conflict", `must be one of merge, remote, local (not "newest")`},
		{"enum as list", base + "      tls: [implicit]\n", 8, "accounts[0].imap.tls", "must be one of implicit, starttls, none, not a list"},

		// Account names.
		{"name with slash", strings.Replace(base, "name: personal", "name: a/b", 1), 2, "accounts[0].name", `"a/b" is not a safe file name`},
		{"name with space", strings.Replace(base, "name: personal", "name: my mail", 1), 2, "accounts[0].name", `"my mail" is not a safe file name`},
		{"name hidden", strings.Replace(base, "name: personal", "name: .mail", 1), 2, "accounts[0].name", `".mail" is not a safe file name`},
		{"duplicate name", base + strings.Replace(strings.TrimPrefix(base, "accounts:\n"), "/srv/mail/personal", "/srv/mail/2", 1), 8, "accounts[1].name",
			`duplicate account name "personal"; accounts[0] on line 2 is already called "personal"`},
		{"duplicate name ignoring case", base + strings.Replace(strings.Replace(strings.TrimPrefix(base, "accounts:\n"), "/srv/mail/personal", "/srv/mail/2", 1), "name: personal", "name: Personal", 1), 8, "accounts[1].name",
			`duplicate account name "Personal"`},
		{"shared maildir", base + strings.Replace(strings.TrimPrefix(base, "accounts:\n"), "name: personal", "name: work", 1), 9, "accounts[1].maildir",
			"/srv/mail/personal is already the Maildir of accounts[0] (personal); each account needs its own"},
		{"shared index", "accounts:\n  - name: a\n    maildir: /m/a\n    index: /i.db\n    imap: {host: h, user: u, password_command: p}\n" +
			"  - name: b\n    maildir: /m/b\n    index: /i.db\n    imap: {host: h, user: u, password_command: p}\n", 8, "accounts[1].index",
			"/i.db is already the index of accounts[0] (a); each account needs its own"},

		// Hosts and TLS.
		{"compress unknown", base + "      compress: yes\n", 8, "accounts[0].imap.compress", "auto, off"},
		{"tls none remote", base + "      tls: none\n", 8, "accounts[0].imap.tls",
			"tls: none would send the password in clear text to imap.example.org; use tls: implicit or starttls (none is allowed only for loopback addresses)"},
		{"tls none with pin", strings.Replace(base, "imap.example.org", "localhost", 1) + "      tls: none\n      tls_fingerprint: " + strings.Repeat("ab", 32) + "\n", 9,
			"accounts[0].imap.tls_fingerprint", "a fingerprint needs TLS"},
		{"host with port", strings.Replace(base, "imap.example.org", "imap.example.org:993", 1), 5, "accounts[0].imap.host", "must be a host name without a port; put the port in imap.port"},
		{"host as URL", strings.Replace(base, "imap.example.org", "imaps://imap.example.org", 1), 5, "accounts[0].imap.host", "not a URL"},
		{"host with space", strings.Replace(base, "imap.example.org", "imap example.org", 1), 5, "accounts[0].imap.host", "without spaces or slashes"},
		{"host in brackets", strings.Replace(base, "imap.example.org", "\"[::1]\"", 1), 5, "accounts[0].imap.host", "without brackets"},
		{"fingerprint short", base + "      tls_fingerprint: abcdef\n", 8, "accounts[0].imap.tls_fingerprint", "64 hex digits"},
		{"fingerprint not hex", base + "      tls_fingerprint: " + strings.Repeat("zz", 32) + "\n", 8, "accounts[0].imap.tls_fingerprint", "64 hex digits"},
		{"fingerprint too long", base + "      tls_fingerprint: " + strings.Repeat("ab:", 33) + "ab\n", 8, "accounts[0].imap.tls_fingerprint", "64 hex digits"},

		// Patterns and mailbox names.
		{"bad include glob", base + "    mailboxes:\n      include: [INBOX, \"Lists/[abc\"]\n", 9, "accounts[0].mailboxes.include[1]", `"Lists/[abc" is not a valid pattern`},
		{"bad exclude glob", base + "    mailboxes:\n      exclude:\n        - 'Junk\\'\n", 10, "accounts[0].mailboxes.exclude[0]", `"Junk\\" is not a valid pattern`},
		{"map empty remote", base + "    mailboxes:\n      map: {\"\": x}\n", 9, `accounts[0].mailboxes.map[""]`, "remote name must not be empty"},
		{"map empty local", base + "    mailboxes:\n      map: {Sent: \"\"}\n", 9, `accounts[0].mailboxes.map["Sent"]`, `must be a local mailbox name, not ""`},
		{"unknown special use", base + "    mailboxes:\n      map:\n        '\\Spam': Junk\n", 10, `accounts[0].mailboxes.map["\Spam"]`, `unknown special-use attribute; RFC 6154 defines \All, \Archive`},
		{"two sources one target", base + "    mailboxes:\n      map:\n        '\\Sent': Sent\n        Sent Items: Sent\n", 11, `accounts[0].mailboxes.map["Sent Items"]`,
			`local name "Sent" is already the target of "\\Sent"`},
		{"special use twice", base + "    mailboxes:\n      map:\n        '\\Sent': Sent\n        '\\sent': Sent2\n", 11, `accounts[0].mailboxes.map["\sent"]`, `\Sent is mapped twice`},

		// Sizes, dates, durations, shares.
		{"size unit", base + "    sync:\n      max_size: 20XB\n", 9, "accounts[0].sync.max_size", `unknown unit "XB"; use B, KB, MB or GB`},
		{"size words", base + "    sync:\n      max_size: big\n", 9, "accounts[0].sync.max_size", "must be a size such as 20MB, 512KB or 1GB"},
		{"size negative", base + "    sync:\n      max_size: -1\n", 9, "accounts[0].sync.max_size", "must be a size such as 20MB"},
		{"size overflow", base + "    sync:\n      max_size: 99999999999GB\n", 9, "accounts[0].sync.max_size", "is too large"},
		{"size as list", base + "    sync:\n      max_size: [1]\n", 9, "accounts[0].sync.max_size", "must be a size, not a list"},
		{"since impossible date", base + "    sync:\n      since: 2024-02-30\n", 9, "accounts[0].sync.since", "must be a date (YYYY-MM-DD) or a number of days such as 90d"},
		{"since timestamp", base + "    sync:\n      since: 2024-01-01T10:00:00Z\n", 9, "accounts[0].sync.since", "must be a date (YYYY-MM-DD)"},
		{"since zero days", base + "    sync:\n      since: 0d\n", 9, "accounts[0].sync.since", "must be from 1d to 36500d"},
		{"since words", base + "    sync:\n      since: last year\n", 9, "accounts[0].sync.since", "must be a date"},
		{"interval without unit", base + "    watch_interval: 15\n", 8, "accounts[0].watch_interval", "must be a positive duration such as 15m, 1h or 90s"},
		{"interval negative", base + "    watch_interval: -5m\n", 8, "accounts[0].watch_interval", "must be a positive duration"},
		{"interval zero", base + "    watch_interval: 0s\n", 8, "accounts[0].watch_interval", "must be a positive duration"},
		{"share over 100", base + "    sync:\n      max_delete: 150%\n", 9, "accounts[0].sync.max_delete", "share must be from 0% to 100%"},
		{"share bad count", base + "    sync:\n      max_delete: 25%,x\n", 9, "accounts[0].sync.max_delete", "must be a share such as 25%, a share and a minimum count such as 25%,10, or a count such as 50"},
		{"share negative", base + "    sync:\n      max_delete: -5%\n", 9, "accounts[0].sync.max_delete", "must be a share such as 25%"},
		{"share fraction", base + "    sync:\n      max_delete: 0.25\n", 9, "accounts[0].sync.max_delete", "must be a share such as 25%"},

		// Paths.
		{"unset variable", strings.Replace(base, "/srv/mail/personal", "$SATCHEL_TEST_UNSET/mail", 1), 3, "accounts[0].maildir",
			"$SATCHEL_TEST_UNSET is not set (or empty); set it or write the path out"},
		{"empty maildir", strings.Replace(base, "/srv/mail/personal", `""`, 1), 3, "accounts[0].maildir", "must not be empty"},
		{"tilde user", strings.Replace(base, "/srv/mail/personal", "~bob/mail", 1), 3, "accounts[0].maildir", "~user is not supported"},
		{"index unset variable", base + "    index: ${SATCHEL_TEST_UNSET}/x.db\n", 8, "accounts[0].index", "$SATCHEL_TEST_UNSET is not set"},

		// notmuch and the top level.
		{"gmail labels tags without notmuch", base + "    gmail:\n      labels: tags\n", 9, "accounts[0].gmail.labels", "set notmuch.enabled: true, or labels: folders"},
		{"gmail labels unknown", base + "    gmail:\n      labels: both\n", 9, "accounts[0].gmail.labels", "folders"},
		{"gmail scan every zero", base + "    gmail:\n      label_scan_every: 0\n", 9, "accounts[0].gmail.label_scan_every", "1"},
		{"notmuch enabled yes", base + "    notmuch:\n      enabled: yes\n", 9, "accounts[0].notmuch.enabled", "must be true or false"},
		{"notmuch unknown key", base + "    notmuch:\n      tags: {}\n", 9, "accounts[0].notmuch.tags", `unknown key "tags" in accounts[0].notmuch (known keys: enabled, config, keywords, local_tags)`},
		{"notmuch keywords a list", base + "    notmuch:\n      keywords: [$Junk]\n", 9, "accounts[0].notmuch.keywords", `must be a mapping, such as {"$Junk": spam}`},
		{"notmuch keyword without tag", base + "    notmuch:\n      keywords:\n        $label1:\n", 10, `accounts[0].notmuch.keywords["$label1"]`, "must be a string, not empty"},
		{"notmuch local_tags a string", base + "    notmuch:\n      local_tags: inbox\n", 9, "accounts[0].notmuch.local_tags", "must be a list of strings"},
		{"notmuch config unset variable", base + "    notmuch:\n      config: $SATCHEL_TEST_UNSET/nm\n", 9, "accounts[0].notmuch.config", "$SATCHEL_TEST_UNSET is not set"},
		{"parallel_accounts zero", "parallel_accounts: 0\n" + base, 1, "parallel_accounts", "must be a whole number from 1 to 32"},
		{"parallel_accounts word", base + "parallel_accounts: all\n", 8, "parallel_accounts", "must be a whole number from 1 to 32"},

		// Merge keys.
		{"merge a scalar", base + "      <<: 5\n", 8, "accounts[0].imap", "merge key (<<) must name a mapping"},
		{"merge a list of scalars", base + "      <<: [5]\n", 8, "accounts[0].imap", "merge key (<<) must list mappings"},
		{"merge brings unknown key", "accounts:\n  - name: a\n    maildir: /m\n    imap: &i {host: h, user: u, password: p}\n" +
			"  - name: b\n    maildir: /n\n    imap:\n      <<: *i\n      hots: x\n", 9, "accounts[1].imap.hots", `did you mean "host"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			e := parseError(t, tt.doc)
			if e.Line != tt.line || e.Key != tt.key || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got  line %d key %q msg %q\nwant line %d key %q msg containing %q",
					e.Line, e.Key, e.Msg, tt.line, tt.key, tt.msg)
			}
		})
	}
}

// TestErrorString checks the format cmd/satchel prints.
func TestErrorString(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "config.yaml", Line: 12, Key: "accounts[0].imap.port", Msg: "must be a whole number from 1 to 65535"},
			"config.yaml:12: accounts[0].imap.port: must be a whole number from 1 to 65535"},
		{Error{File: "config.yaml", Msg: "no accounts configured"}, "config.yaml: no accounts configured"},
		{Error{File: "c.yaml", Line: 3, Msg: "invalid YAML: x"}, "c.yaml:3: invalid YAML: x"},
		{Error{File: "c.yaml", Key: "accounts[1].name", Msg: "m"}, "c.yaml: accounts[1].name: m"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}

	isolateEnv(t)
	e := parseError(t, base+"      port: 0\n")
	if got, want := e.Error(), "config.yaml:8: accounts[0].imap.port: must be a whole number from 1 to 65535"; got != want {
		t.Errorf("Parse error = %q, want %q", got, want)
	}
}

// TestFirstErrorWins checks that with several problems the walk stops at
// the first and does not fall over the later ones.
func TestFirstErrorWins(t *testing.T) {
	isolateEnv(t)
	e := parseError(t, base+"      port: x\n      connections: 99\n    sync:\n      max_size: x\n")
	if e.Line != 8 || e.Key != "accounts[0].imap.port" {
		t.Errorf("got %v, want the port error on line 8", e)
	}
	// A malformed value is reported as such, not as "not implemented".
	e = parseError(t, base+"    layout: maildir++\n    sync:\n      max_size: 20XB\n")
	if e.Key != "accounts[0].sync.max_size" {
		t.Errorf("got %v, want the max_size format error", e)
	}
}
