package config

import (
	"strings"
	"testing"
)

// withKey returns base with key (a path inside the account, such as
// sync.max_size) set to value, then the extra keys of the same section,
// and the line that key is on.
func withKey(key, value string, extra ...string) (doc string, line int) {
	section, name, nested := strings.Cut(key, ".")
	if !nested {
		return base + "    " + key + ": " + value + "\n", 8
	}
	var b strings.Builder
	b.WriteString(base)
	line = 8
	if section != "imap" { // imap is the last section of base: append to it
		b.WriteString("    " + section + ":\n")
		line = 9
	}
	b.WriteString("      " + name + ": " + value + "\n")
	for _, e := range extra {
		b.WriteString("      " + e + "\n")
	}
	return b.String(), line
}

// notImplemented holds, for every row of the unimplemented table, values
// that must be refused and values that must load.
var notImplemented = map[string]struct {
	refused, accepted []string
	extra             []string // keys the refused values need to pass validation
}{}

func TestNotImplemented(t *testing.T) {
	isolateEnv(t)
	for _, u := range unimplemented {
		c, ok := notImplemented[u.key]
		if !ok {
			t.Errorf("no test values for %s", u.key)
			continue
		}
		for _, v := range c.refused {
			doc, line := withKey(u.key, v, c.extra...)
			e := parseError(t, doc)
			want := "not implemented yet in this version of satchel; remove it or set it to " + u.def
			if e.Key != "accounts[0]."+u.key || e.Line != line || e.Msg != want {
				t.Errorf("%s: %s: got %v\nwant config.yaml:%d: accounts[0].%s: %s", u.key, v, e, line, u.key, want)
			}
		}
		for _, v := range c.accepted {
			doc, _ := withKey(u.key, v)
			if _, err := Parse("config.yaml", []byte(doc)); err != nil {
				t.Errorf("%s: %s: %v", u.key, v, err)
			}
		}
		// The suggested value must itself be accepted.
		doc, _ := withKey(u.key, u.def)
		if _, err := Parse("config.yaml", []byte(doc)); err != nil {
			t.Errorf("%s: the suggested %s is refused: %v", u.key, u.def, err)
		}
	}
	for key := range notImplemented {
		if !containsKey(key) {
			t.Errorf("test values for %s, which is not in the table (implemented? delete them)", key)
		}
	}
}

func containsKey(key string) bool {
	for _, u := range unimplemented {
		if u.key == key {
			return true
		}
	}
	return false
}

// TestNotImplementedAfterValidation checks that the table only speaks once
// the file is otherwise valid: the later account's problem comes first.
func TestNotImplementedAfterValidation(t *testing.T) {
	isolateEnv(t)
	doc := base + "    layout: maildir++\n" +
		"  - name: work\n    maildir: /srv/mail/work\n    imap: {host: h, user: u, password_command: p, port: 0}\n"
	e := parseError(t, doc)
	if e.Key != "accounts[1].imap.port" {
		t.Errorf("got %v, want the port error of accounts[1]", e)
	}
}
