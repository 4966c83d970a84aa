package maildir

import (
	"regexp"
	"testing"
)

func TestNewKey(t *testing.T) {
	re := regexp.MustCompile(`^[0-9]+\.M[0-9]+P[0-9]+Q[0-9]+R[0-9a-f]{16}\.[^:/]+$`)
	seen := make(map[string]bool)
	for range 1000 {
		k := NewKey()
		if !re.MatchString(k) {
			t.Fatalf("key %q does not have the form <sec>.M<usec>P<pid>Q<n>R<hex>.<host>", k)
		}
		if !validKey(k) {
			t.Fatalf("key %q is not a valid key", k)
		}
		if seen[k] {
			t.Fatalf("key %q made twice", k)
		}
		seen[k] = true
	}
}

func TestEscapeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"mail.example.org", "mail.example.org"},
		{"a/b", `a\057b`},
		{"a:b", `a\072b`},
		{"x/:/y", `x\057\072\057y`},
	}
	for _, tt := range tests {
		if got := escapeHost(tt.in); got != tt.want {
			t.Errorf("escapeHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
