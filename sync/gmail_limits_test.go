package sync_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// Stories of Gmail's limits on the emulation (imaptest.GmailLimits): the
// account over its daily allowance, throttled, out of connections, its
// sessions expiring. None of them may cost a message on either side.

// gmailSeed stores n messages of about size bytes each on srv, each with
// two or three labels, and returns how many IMAP copies the mailboxes
// show.
func gmailSeed(srv *imaptest.Server, n, size int, labels ...[]string) int {
	copies := 0
	for i := range n {
		body := gmailBody(fmt.Sprintf("m%d", i))
		body = append(body, strings.Repeat("padding line\r\n", size/14)...)
		id := srv.GmailAdd(imaptest.GmailMessage{Body: body, Labels: labels[i%len(labels)]})
		copies += srv.GmailCopies(id)
	}
	return copies
}

// deletions finds what would delete mail on the server in a run's trace:
// a \Deleted flag stored, an EXPUNGE, a MOVE.
var deletions = regexp.MustCompile(`(?mi)^C: \S+ (UID )?(STORE .*\\Deleted|EXPUNGE|MOVE)`)

// assertNothingDeleted checks that a run sent nothing that deletes mail
// and that the account still holds want messages.
func assertNothingDeleted(t *testing.T, e *env, want int) {
	t.Helper()
	if m := deletions.FindString(e.trace.String()); m != "" {
		t.Fatalf("the run sent %q", m)
	}
	if n := e.srv.GmailMessageCount(); n != want {
		t.Fatalf("the account holds %d messages, want %d", n, want)
	}
}

// TestGmailOverQuotaThenResumed: Gmail throttles, then refuses everything
// once the first sync has downloaded part of the account. The account
// stops with mail.ErrOverQuota, having deleted nothing and kept what it
// downloaded; the next run, the allowance back, downloads the rest, each
// message once over the two runs.
func TestGmailOverQuotaThenResumed(t *testing.T) {
	const n, size = 150, 2000
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{Limits: imaptest.GmailLimits{
		ThrottleAfter: 10,
		// The metadata of every mailbox (about 60 kB), then one batch of
		// bodies or two, and no more.
		OverQuotaAfterBytes: 150 << 10,
	}})
	gmailSeed(srv, n, size, []string{`\Inbox`, "Work"}, []string{"Work", "Later"}, []string{`\Inbox`})
	e := newEnv(t, srv)
	e.opts.Connections = 4

	res := e.sync()
	if !errors.Is(res.Err, mail.ErrOverQuota) {
		t.Fatalf("first sync: err %v; want the account stopped over quota", res.Err)
	}
	for _, m := range res.Mailboxes {
		if m.Err != nil && !errors.Is(m.Err, mail.ErrOverQuota) {
			t.Fatalf("%s: %v; only the quota may stop a mailbox", m.Name, m.Err)
		}
	}
	first := bodiesFetched(e.trace.String())
	down, _ := gmailTotals(res)
	if first == 0 || first >= n || down != first {
		t.Fatalf("first sync: the server sent %d bodies, %d were recorded downloaded; want some of %d, all recorded", first, down, n)
	}
	assertNothingDeleted(t, e, n)
	// What was downloaded is where mail readers look and in the index.
	if files := gmailFiles(t, e.root); len(files) != first {
		t.Fatalf("after the stop the Maildir holds %d messages, want the %d downloaded", len(files), first)
	}

	srv.GmailSetLimits(imaptest.GmailLimits{})
	res = e.mustSync()
	second := bodiesFetched(e.trace.String())
	if first+second != n {
		t.Fatalf("the server sent %d bodies, then %d: want %d in all, each message once", first, second, n)
	}
	assertNothingDeleted(t, e, n)
	e.assertMirror(true)
	for name, paths := range gmailFiles(t, e.root) {
		if !oneFile(t, paths) {
			t.Fatalf("%s: %v are not one file", name, paths)
		}
	}
}

// TestGmailThrottled: every reply carries [THROTTLED]. The sync slows to
// one connection, whatever imap.connections allows, and completes.
func TestGmailThrottled(t *testing.T) {
	const n = 90
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{Limits: imaptest.GmailLimits{ThrottleAfter: 1}})
	gmailSeed(srv, n, 200, []string{`\Inbox`, "Work"}, []string{"Later"}, []string{"Travel", "Work"})
	e := newEnv(t, srv)
	e.opts.Connections = 6

	e.mustSync()
	if got := bodiesFetched(e.trace.String()); got != n {
		t.Fatalf("the server sent %d bodies, want %d", got, n)
	}
	if l := srv.GmailLogins(); l != 1 {
		t.Fatalf("%d logins; want the one connection the throttled run keeps", l)
	}
	e.assertMirror(true)
	assertNothingDeleted(t, e, n)
}

// TestGmailTooManyConnections: the account may have two connections
// while imap.connections says 6. The connections the server refuses are
// given up, and the sync completes over the others.
func TestGmailTooManyConnections(t *testing.T) {
	const n = 120
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{Limits: imaptest.GmailLimits{MaxConnections: 2}})
	gmailSeed(srv, n, 200, []string{`\Inbox`, "Work"}, []string{"Later"}, []string{"Travel"}, []string{"Receipts", `\Inbox`}, []string{"Family"})
	e := newEnv(t, srv)
	e.opts.Connections = 6

	e.mustSync()
	if p := srv.GmailPeakConnections(); p > 2 {
		t.Fatalf("%d connections at once, the server allows 2", p)
	}
	if got := bodiesFetched(e.trace.String()); got != n {
		t.Fatalf("the server sent %d bodies, want %d", got, n)
	}
	e.assertMirror(true)
	assertNothingDeleted(t, e, n)
}

// TestGmailAtMost15Connections: a server with X-GM-EXT-1 gets at most 15
// connections at once, even where imap.connections asks for 40 and the
// server would take them.
func TestGmailAtMost15Connections(t *testing.T) {
	const labels = 24
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{Limits: imaptest.GmailLimits{MaxConnections: -1}})
	var ls [][]string
	for i := range labels {
		ls = append(ls, []string{fmt.Sprintf("Label%02d", i)})
	}
	gmailSeed(srv, 2*labels, 200, ls...)
	e := newEnv(t, srv)
	e.opts.Connections = 40

	e.mustSync()
	if p := srv.GmailPeakConnections(); p > 15 || p < 2 {
		t.Fatalf("%d connections at once; want several, and at most Gmail's 15", p)
	}
	e.assertMirror(true)
}

// TestGmailSessionExpires: each session ends after 20 commands, as
// a session does when its OAuth token runs out, in the middle of the
// download. Each mailbox cut off is synced again on a new connection,
// logged in with a password fetched again, and the sync completes with
// each message downloaded once.
func TestGmailSessionExpires(t *testing.T) {
	const n = 400
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{Limits: imaptest.GmailLimits{SessionExpiresAfter: 20}})
	gmailSeed(srv, n, 200, []string{`\Inbox`})
	e := newEnv(t, srv)

	res := e.mustSync()
	if got := bodiesFetched(e.trace.String()); got != n {
		t.Fatalf("the server sent %d bodies, want %d", got, n)
	}
	if down, _ := gmailTotals(res); down != n {
		t.Fatalf("%d downloaded, want %d", down, n)
	}
	if !strings.Contains(e.trace.String(), "S: * BYE Session expired") {
		t.Fatal("no session expired: the test tests nothing")
	}
	if p, l := e.passwords.Load(), srv.GmailLogins(); p < 2 || int(p) != l {
		t.Fatalf("%d passwords fetched for %d logins; want a fresh one for each of several logins", p, l)
	}
	srv.GmailSetLimits(imaptest.GmailLimits{}) // for the harness's own connection
	e.assertMirror(true)
	assertNothingDeleted(t, e, n)
}

// TestGmailSessionAlwaysExpires: a server that ends every session after
// three commands. The run gives up instead of reconnecting for ever, and
// deletes nothing.
func TestGmailSessionAlwaysExpires(t *testing.T) {
	const n = 200
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{Limits: imaptest.GmailLimits{SessionExpiresAfter: 3}})
	gmailSeed(srv, n, 200, []string{`\Inbox`, "Work"})
	e := newEnv(t, srv)

	res := e.sync()
	failed := res.Err != nil || res.Failed() > 0
	if !failed {
		t.Fatal("the sync succeeded on a server that lets no session do anything")
	}
	if l := srv.GmailLogins(); l > 40 {
		t.Fatalf("%d logins: the run kept reconnecting", l)
	}
	assertNothingDeleted(t, e, n)
}
