package sync_test

import (
	"strings"
	"testing"
)

// TestApplyWhereLearned: with several connections, each mailbox is
// applied on the connection that learned it, where it is still selected:
// the sync after a change in every mailbox selects each of them once, and
// opens no connection for applying.
func TestApplyWhereLearned(t *testing.T) {
	for _, mode := range serverModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			srv := mode.start(t)
			boxes := []string{"INBOX", "A", "B", "C"}
			for _, b := range boxes[1:] {
				srv.CreateMailbox(srv.Name(b))
			}
			for _, b := range boxes {
				srv.Append(srv.Name(b), msg("old in "+b), nil, day)
			}
			e := newEnv(t, srv)
			e.opts.Connections = len(boxes)
			e.mustSync()
			for _, b := range boxes {
				srv.Append(srv.Name(b), msg("new in "+b), nil, day)
			}
			res := e.mustSync()
			for _, m := range res.Mailboxes {
				if m.Downloaded != 1 {
					t.Fatalf("%s: downloaded %d, want 1", m.Name, m.Downloaded)
				}
			}
			selects := map[string]int{}
			for _, c := range e.clientCommands() {
				if name, ok := strings.CutPrefix(c, "SELECT "); ok {
					selects[strings.Trim(strings.Fields(name)[0], `"`)]++
				}
			}
			for _, b := range boxes {
				if n := selects[strings.ToUpper(srv.Name(b))]; n != 1 {
					t.Errorf("%s selected %d times, want once: %v", b, n, selects)
				}
			}
			if n := strings.Count(e.trace.String(), "* PREAUTH"); n > len(boxes) {
				t.Errorf("%d connections for %d mailboxes", n, len(boxes))
			}
		})
	}
}
