package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	home := isolateEnv(t)
	cfg := mustParse(t, base)
	want := Account{
		Name: "personal",
		IMAP: IMAP{
			Host: "imap.example.org", Port: 993, TLS: "implicit", User: "me@example.org",
			Auth: "plain", PasswordCommand: "pass show mail", Connections: 4, Compress: "auto",
		},
		Maildir:       "/srv/mail/personal",
		Layout:        "verbatim",
		Index:         defaultIndexFor(home, "personal"),
		Mailboxes:     Mailboxes{Include: []string{"*"}},
		Sync:          Sync{Direction: "both", Expunge: "both", Conflict: "merge", MaxDelete: MaxDelete{Percent: 25, Count: 10}},
		Watch:         []string{"INBOX"},
		WatchInterval: 15 * time.Minute,
		Notmuch:       Notmuch{LocalTags: DefaultLocalTags},
		Gmail:         Gmail{Labels: "folders", LabelScanEvery: 24, ReadOnly: []string{`\Important`}},
	}
	if len(cfg.Accounts) != 1 || !reflect.DeepEqual(cfg.Accounts[0], want) {
		t.Errorf("got  %+v\nwant %+v", cfg.Accounts, want)
	}
	if cfg.ParallelAccounts != 4 {
		t.Errorf("ParallelAccounts %d, want the default 4", cfg.ParallelAccounts)
	}
	if cfg.Path != "config.yaml" || len(cfg.Warnings) != 0 {
		t.Errorf("Path %q, Warnings %q", cfg.Path, cfg.Warnings)
	}
}

// TestNullTakesDefault checks that a key left empty reads as left out.
func TestNullTakesDefault(t *testing.T) {
	isolateEnv(t)
	cfg := mustParse(t, base+"      port:\n      tls: ~\n      password:\n    mailboxes:\n    sync:\n      max_delete:\n    watch: null\n")
	a := cfg.Accounts[0]
	if a.IMAP.Port != 993 || a.IMAP.TLS != "implicit" || a.Mailboxes.Include[0] != "*" ||
		a.Sync.MaxDelete != defaultMaxDelete || a.Watch[0] != "INBOX" || len(cfg.Warnings) != 0 {
		t.Errorf("empty keys did not take defaults: %+v, warnings %q", a, cfg.Warnings)
	}
}

func TestAcceptedValues(t *testing.T) {
	isolateEnv(t)
	tests := []struct {
		name  string
		doc   string
		check func(a Account) bool
	}{
		{"starttls default port", base + "      tls: starttls\n", func(a Account) bool { return a.IMAP.Port == 143 && a.IMAP.TLS == "starttls" }},
		{"explicit port", base + "      port: 1993\n", func(a Account) bool { return a.IMAP.Port == 1993 }},
		{"tls none on localhost", strings.Replace(base, "imap.example.org", "localhost", 1) + "      tls: none\n",
			func(a Account) bool { return a.IMAP.TLS == "none" && a.IMAP.Port == 143 }},
		{"tls none on 127.0.0.2", strings.Replace(base, "imap.example.org", "127.0.0.2", 1) + "      tls: none\n",
			func(a Account) bool { return a.IMAP.TLS == "none" }},
		{"tls none on ::1", strings.Replace(base, "imap.example.org", `"::1"`, 1) + "      tls: none\n",
			func(a Account) bool { return a.IMAP.Host == "::1" }},
		{"IPv6 host", strings.Replace(base, "imap.example.org", `"2001:db8::1"`, 1), func(a Account) bool { return a.IMAP.Host == "2001:db8::1" }},
		{"auth login", base + "      auth: login\n", func(a Account) bool { return a.IMAP.Auth == "login" }},
		{"compress off", base + "      compress: off\n", func(a Account) bool { return a.IMAP.Compress == "off" }},
		{"auth xoauth2", strings.Replace(base, "password_command: pass show mail", "auth: xoauth2\n      oauth2_token_command: oama access me@example.org", 1),
			func(a Account) bool {
				return a.IMAP.Auth == "xoauth2" && a.IMAP.OAuth2TokenCommand == "oama access me@example.org" && a.IMAP.PasswordCommand == ""
			}},
		{"auth oauthbearer", strings.Replace(base, "password_command: pass show mail", "auth: oauthbearer\n      oauth2_token_command: pizauth show personal", 1),
			func(a Account) bool {
				return a.IMAP.Auth == "oauthbearer" && a.IMAP.OAuth2TokenCommand == "pizauth show personal"
			}},
		{"hooks", base + "    hooks:\n      pre: \"true\"\n      post: notmuch new\n",
			func(a Account) bool { return a.Hooks == Hooks{Pre: "true", Post: "notmuch new"} }},
		{"connections 32", base + "      connections: 32\n", func(a Account) bool { return a.IMAP.Connections == 32 }},
		{"prefix unset", base, func(a Account) bool { return a.IMAP.Prefix == nil }},
		{"prefix auto", base + "      prefix: auto\n", func(a Account) bool { return a.IMAP.Prefix == nil }},
		{"prefix", base + "      prefix: \"INBOX.\"\n", func(a Account) bool { return a.IMAP.Prefix != nil && *a.IMAP.Prefix == "INBOX." }},
		{"prefix empty", base + "      prefix: \"\"\n", func(a Account) bool { return a.IMAP.Prefix != nil && *a.IMAP.Prefix == "" }},
		{"fingerprint with colons and capitals", base + "      tls_fingerprint: " + strings.Repeat("AB:", 31) + "0f\n",
			func(a Account) bool {
				return bytes.Equal(a.IMAP.TLSFingerprint, append(bytes.Repeat([]byte{0xab}, 31), 0x0f))
			}},
		{"number as string", strings.Replace(base, "user: me@example.org", "user: 12345", 1), func(a Account) bool { return a.IMAP.User == "12345" }},
		{"direction pull", base + "    sync:\n      direction: pull\n", func(a Account) bool { return a.Sync.Direction == "pull" }},
		{"watch inbox any case", base + "    watch: [inbox]\n", func(a Account) bool { return a.Watch[0] == "inbox" }},
		{"default values written out", base + "    layout: verbatim\n    sync:\n      max_delete: 25%,10\n      max_size: 0\n      since: \"\"\n    watch_interval: 900s\n",
			func(a Account) bool { return a.WatchInterval == 15*time.Minute }},
		{"include and exclude", base + "    mailboxes:\n      include: [INBOX, \"Lists/*\"]\n      exclude: []\n",
			func(a Account) bool { return len(a.Mailboxes.Include) == 2 && a.Mailboxes.Exclude == nil }},
		{"exclude set", base + "    mailboxes:\n      exclude: [Junk, 'Archive/\\*']\n",
			func(a Account) bool { return reflect.DeepEqual(a.Mailboxes.Exclude, []string{"Junk", `Archive/\*`}) }},
		{"explicit index", base + "    index: /var/lib/satchel/p.db\n", func(a Account) bool { return a.Index == "/var/lib/satchel/p.db" }},
		{"notmuch", base + "    notmuch:\n      enabled: true\n      config: ~/nm/config\n      keywords: {$label1: important, \"$Junk\": junk}\n      local_tags: [new, inbox]\n",
			func(a Account) bool {
				return a.Notmuch.Enabled && a.Notmuch.Config == filepath.Join(os.Getenv("HOME"), "nm", "config") &&
					reflect.DeepEqual(a.Notmuch.Keywords, map[string]string{"$label1": "important", "$Junk": "junk"}) &&
					reflect.DeepEqual(a.Notmuch.LocalTags, []string{"new", "inbox"})
			}},
		{"notmuch local_tags empty keeps nothing local", base + "    notmuch:\n      local_tags: []\n      keywords: {}\n",
			func(a Account) bool {
				return a.Notmuch.LocalTags != nil && len(a.Notmuch.LocalTags) == 0 && a.Notmuch.Keywords == nil
			}},
		{"notmuch left empty", base + "    notmuch:\n      local_tags:\n",
			func(a Account) bool {
				return !a.Notmuch.Enabled && reflect.DeepEqual(a.Notmuch.LocalTags, DefaultLocalTags)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, tt.doc)
			if !tt.check(cfg.Accounts[0]) {
				t.Errorf("unexpected account %+v", cfg.Accounts[0])
			}
		})
	}
}

func TestPathExpansion(t *testing.T) {
	home := isolateEnv(t)
	t.Setenv("SATCHEL_TEST_MAIL", "/data/mail")
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"~/Mail/personal", filepath.Join(home, "Mail", "personal")},
		{`"~"`, home}, // a bare ~ is YAML's null
		{"$SATCHEL_TEST_MAIL/personal", "/data/mail/personal"},
		{"${SATCHEL_TEST_MAIL}/p", "/data/mail/p"},
		{"Mail/../Mail/personal", filepath.Join(cwd, "Mail", "personal")},
		{"/srv//mail/", "/srv/mail"},
	}
	for _, tt := range tests {
		doc := strings.Replace(base, "/srv/mail/personal", tt.in, 1) + "    index: " + strings.Trim(tt.in, `"`) + "/i.db\n"
		cfg := mustParse(t, doc)
		a := cfg.Accounts[0]
		if a.Maildir != tt.want || a.Index != filepath.Join(tt.want, "i.db") {
			t.Errorf("%q: maildir %q index %q, want %q", tt.in, a.Maildir, a.Index, tt.want)
		}
	}
}

func TestDefaultIndex(t *testing.T) {
	home := isolateEnv(t)
	if got := mustParse(t, base).Accounts[0].Index; got != defaultIndexFor(home, "personal") {
		t.Errorf("without XDG_DATA_HOME: %q", got)
	}
	t.Setenv("XDG_DATA_HOME", "/xdg/data")
	if got := mustParse(t, base).Accounts[0].Index; got != "/xdg/data/satchel/personal.db" {
		t.Errorf("with XDG_DATA_HOME: %q", got)
	}
	// The XDG specification says to ignore relative paths.
	t.Setenv("XDG_DATA_HOME", "relative/data")
	if got := mustParse(t, base).Accounts[0].Index; got != defaultIndexFor(home, "personal") {
		t.Errorf("with relative XDG_DATA_HOME: %q", got)
	}
}

// TestNoHome checks the paths that need $HOME when it is not set.
func TestNoHome(t *testing.T) {
	isolateEnv(t)
	t.Setenv("HOME", "")
	e := parseError(t, base)
	if e.Line != 2 || e.Key != "accounts[0].index" || !strings.Contains(e.Msg, "cannot find the default location") {
		t.Errorf("default index without HOME: %v", e)
	}
	e = parseError(t, strings.Replace(base, "/srv/mail/personal", "~/Mail", 1))
	if e.Line != 3 || e.Key != "accounts[0].maildir" || !strings.Contains(e.Msg, "cannot expand ~") {
		t.Errorf("~ without HOME: %v", e)
	}
	t.Setenv("XDG_DATA_HOME", "/xdg")
	mustParse(t, base)
}

func TestMergeKeys(t *testing.T) {
	isolateEnv(t)
	doc := `accounts:
  - name: work
    maildir: ~/Mail/work
    imap: &work
      host: imap.example.com
      user: me
      password_command: pass work
      connections: 2
    mailboxes:
      exclude: &skip [Junk, Spam]
  - name: shared
    maildir: ~/Mail/shared
    imap:
      <<: *work
      user: team
    mailboxes:
      exclude: *skip
`
	// The same mapping merged twice, directly and through another, is no
	// duplicate; keys written out still win.
	doc += `  - name: third
    maildir: ~/Mail/third
    imap:
      <<: [*work, *work, {<<: *work, host: other.example.com}]
      password_command: pass third
`
	cfg := mustParse(t, doc)
	a, b, c := cfg.Accounts[0], cfg.Accounts[1], cfg.Accounts[2]
	if c.IMAP.Host != "imap.example.com" || c.IMAP.PasswordCommand != "pass third" || c.IMAP.User != "me" {
		t.Errorf("third imap = %+v", c.IMAP)
	}
	if b.IMAP.Host != "imap.example.com" || b.IMAP.User != "team" || b.IMAP.Connections != 2 || b.IMAP.PasswordCommand != "pass work" {
		t.Errorf("merged imap = %+v", b.IMAP)
	}
	if a.IMAP.User != "me" || !reflect.DeepEqual(b.Mailboxes.Exclude, []string{"Junk", "Spam"}) {
		t.Errorf("anchor changed or alias lost: %+v / %+v", a.IMAP, b.Mailboxes)
	}
}

func TestPasswordWarning(t *testing.T) {
	isolateEnv(t)
	doc := strings.Replace(base, "password_command: pass show mail", "password: hunter2", 1)
	cfg := mustParse(t, doc)
	want := []string{"config.yaml:7: accounts[0].imap.password: a password in the config file; prefer password_command"}
	if !reflect.DeepEqual(cfg.Warnings, want) || cfg.Accounts[0].IMAP.Password != "hunter2" {
		t.Errorf("warnings %q, want %q", cfg.Warnings, want)
	}
}

func TestLoad(t *testing.T) {
	isolateEnv(t)
	dir := t.TempDir()
	withPassword := strings.Replace(base, "password_command: pass show mail", "password: hunter2", 1)
	tests := []struct {
		name     string
		doc      string
		mode     os.FileMode
		warnings []string
	}{
		{"command, readable", base, 0o644, nil},
		{"password, private", withPassword, 0o600, []string{"a password in the config file"}},
		{"password, group readable", withPassword, 0o640, []string{"a password in the config file", "readable by group or others (mode 0640); run chmod 600"}},
		{"password, world readable", withPassword, 0o604, []string{"a password in the config file", "(mode 0604)"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.Repeat("c", i+1)+".yaml")
			if err := os.WriteFile(path, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Path != path || len(cfg.Warnings) != len(tt.warnings) {
				t.Fatalf("Path %q, warnings %q, want %d", cfg.Path, cfg.Warnings, len(tt.warnings))
			}
			for j, w := range tt.warnings {
				if !strings.HasPrefix(cfg.Warnings[j], path+":") || !strings.Contains(cfg.Warnings[j], w) {
					t.Errorf("warning %q, want it to start with the path and contain %q", cfg.Warnings[j], w)
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	isolateEnv(t)
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(missing)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want an *Error wrapping fs.ErrNotExist", err)
	}
	if want := missing + ": cannot read the configuration file: no such file or directory"; e.Error() != want {
		t.Errorf("got %q, want %q", e.Error(), want)
	}

	dir := t.TempDir()
	if _, err = Load(dir); !errors.As(err, &e) || e.File != dir || !strings.Contains(e.Msg, "cannot read the configuration file") {
		t.Errorf("Load(directory) = %v, want an *Error saying it cannot be read", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(base+"      port: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if !errors.As(err, &e) || e.File != bad || e.Line != 8 {
		t.Errorf("Load(bad) = %v, want an *Error on %s:8", err, bad)
	}
}

func TestSelect(t *testing.T) {
	isolateEnv(t)
	doc := "accounts:\n" +
		"  - {name: a, maildir: /m/a, imap: {host: h, user: u, password_command: p}}\n" +
		"  - {name: b, maildir: /m/b, imap: {host: h, user: u, password_command: p}}\n" +
		"  - {name: c, maildir: /m/c, imap: {host: h, user: u, password_command: p}}\n"
	cfg := mustParse(t, doc)
	names := func(as []Account) string {
		var s []string
		for _, a := range as {
			s = append(s, a.Name)
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		in   []string
		want string
	}{
		{nil, "a,b,c"},
		{[]string{}, "a,b,c"},
		{[]string{"b"}, "b"},
		{[]string{"c", "a"}, "c,a"},
		{[]string{"a", "a", "b"}, "a,b"},
	}
	for _, tt := range tests {
		got, err := cfg.Select(tt.in)
		if err != nil || names(got) != tt.want {
			t.Errorf("Select(%q) = %q, %v; want %q", tt.in, names(got), err, tt.want)
		}
	}

	_, err := cfg.Select([]string{"a", "A"})
	var e *Error
	if !errors.As(err, &e) || e.Line != 0 {
		t.Fatalf("Select(unknown) = %v, want an *Error without a line", err)
	}
	if want := `config.yaml: no account named "A"; the accounts are a, b, c`; e.Error() != want {
		t.Errorf("got %q, want %q", e.Error(), want)
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LocalHost", true},
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"128.0.0.1", false},
		{"10.0.0.1", false},
		{"::2", false},
		{"[::1]", false},
		{"localhost.example.org", false},
		{"mylocalhost", false},
		{"imap.example.org", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsLoopback(tt.host); got != tt.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestDefaultPath(t *testing.T) {
	home := isolateEnv(t)
	check := func(want string) {
		t.Helper()
		got, err := DefaultPath()
		if err != nil || got != want {
			t.Errorf("DefaultPath() = %q, %v; want %q", got, err, want)
		}
	}
	check(filepath.Join(home, ".config", "satchel", "config.yaml"))
	t.Setenv("XDG_CONFIG_HOME", "relative") // ignored, as XDG says
	check(filepath.Join(home, ".config", "satchel", "config.yaml"))
	t.Setenv("XDG_CONFIG_HOME", "/xdg/config")
	check("/xdg/config/satchel/config.yaml")
	t.Setenv("SATCHEL_CONFIG", "/etc/satchel.yaml")
	check("/etc/satchel.yaml")

	t.Setenv("SATCHEL_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "")
	if got, err := DefaultPath(); err == nil {
		t.Errorf("DefaultPath() without HOME = %q, want an error", got)
	}
}

// TestExampleFile keeps config.example.yaml loadable and in step with the
// defaults it documents.
func TestExampleFile(t *testing.T) {
	home := isolateEnv(t)
	cfg, err := Load(filepath.Join("..", "..", "..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != 1 || len(cfg.Warnings) != 0 {
		t.Fatalf("accounts %d, warnings %q", len(cfg.Accounts), cfg.Warnings)
	}
	got := cfg.Accounts[0]
	want := mustParse(t, `accounts:
  - name: personal
    maildir: ~/Mail/personal
    imap:
      host: imap.example.org
      user: me@example.org
      password_command: pass show mail/personal
`).Accounts[0]
	if got.Index != defaultIndexFor(home, "personal") {
		t.Errorf("example index %q is not the default", got.Index)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the example does not hold the defaults:\ngot  %+v\nwant %+v", got, want)
	}
}

// TestExampleDocumentsEveryKey keeps the example complete: every key of
// the schema appears with a comment, and the comment of each key in the
// not-implemented table says so.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// docs maps each key to the comments on its line and on the comment-only
	// lines below it.
	docs := map[string]string{}
	key := ""
	for _, line := range strings.Split(string(data), "\n") {
		code, comment, _ := strings.Cut(line, "#")
		code = strings.TrimPrefix(strings.TrimSpace(code), "- ")
		if k, _, ok := strings.Cut(code, ":"); ok && k != "" {
			key = k
		}
		if key != "" {
			docs[key] += comment + " "
		}
	}
	for _, keys := range [][]string{topKeys, accountKeys, imapKeys, mailboxKeys, syncKeys, hookKeys, notmuchKeys, gmailKeys} {
		for _, k := range keys {
			if strings.TrimSpace(docs[k]) == "" && !slices.Contains([]string{"accounts", "imap", "mailboxes", "sync", "hooks"}, k) {
				t.Errorf("config.example.yaml does not document %s", k)
			}
		}
	}
	for _, u := range unimplemented {
		k := u.key[strings.LastIndex(u.key, ".")+1:]
		if !strings.Contains(docs[k], "not implemented yet") {
			t.Errorf("config.example.yaml does not mark %s as not implemented yet: %q", u.key, docs[k])
		}
	}
}
