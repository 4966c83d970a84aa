package imaptest

import (
	"fmt"
	"slices"
	"strings"
)

// specialUseConfig renders the Dovecot 2.3 settings that give mailboxes
// special-use attributes (RFC 6154): a second "namespace inbox" section,
// which Dovecot merges into the first, with one mailbox section each.
func specialUseConfig(uses map[string]string) string {
	if len(uses) == 0 {
		return ""
	}
	names := make([]string, 0, len(uses))
	for n := range uses {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("namespace inbox {\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  mailbox %q {\n    special_use = %s\n  }\n", n, uses[n])
	}
	b.WriteString("}\n")
	return b.String()
}
