package imaptest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Courier-IMAP is the hosting-style server of the suite: a personal
// namespace "INBOX." with "." as delimiter, Maildir++ folders, and none of
// CONDSTORE, QRESYNC, MOVE, LIST-STATUS or LITERAL+. What Courier-IMAP
// 5.0.13 (Debian 12) does, observed by courier_test.go:
//
//   - NAMESPACE is (("INBOX." ".")) NIL (("#shared." ".")("shared." ".")),
//     and CREATE refuses names outside "INBOX." ("Invalid mailbox name").
//   - It has UIDPLUS: APPEND answers APPENDUID, and UID EXPUNGE works.
//   - UIDVALIDITY is the creation time in seconds minus 10^9, so mailboxes
//     created in the same second share it. RFC 3501 §2.3.1.1 asks only that
//     a name's UIDVALIDITY not repeat with different messages, which
//     sharing between different names does not break.
//   - RENAME gives the renamed mailbox (and those below it) a new, larger
//     UIDVALIDITY, unlike Dovecot. RFC 3501 §6.3.5 does not say either way.
//   - RENAME and DELETE each take about two seconds before Courier
//     answers, so tests should use few of them.
//   - DELETE of a mailbox with mailboxes below it leaves a \Noselect level
//     (RFC 3501 §6.3.4).
//   - No UNSELECT: the harness leaves a mailbox with EXAMINE and CLOSE.
//   - CREATE of an existing name is a plain NO, without ALREADYEXISTS.
//   - Seen in a raw session, not tested: RENAME of a mailbox that does not
//     exist answers OK.

// CourierOptions configures StartCourier. It has no fields yet; it exists
// so options can be added without changing every caller.
type CourierOptions struct{}

// CapsCourier is the capability list Debian's /etc/courier/imapd gives
// Courier-IMAP (IMAP_CAPABILITY); imapd itself appends ENABLE and
// UTF8=ACCEPT when it announces them.
const CapsCourier = "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"

// courierUser is the name Courier's sessions are logged in as. imapd run
// outside imaplogin takes it from AUTHENTICATED; no account is needed.
const courierUser = "satchel"

// courierRootDefault is where .ci/install-courier extracts Courier's
// packages; SATCHEL_COURIER_ROOT overrides it.
const courierRootDefault = "/opt/satchel-servers/courier"

const courierInstallAdvice = "run .ci/install-courier as root (it extracts courier-imap into $SATCHEL_COURIER_ROOT, default " +
	courierRootDefault + ", without replacing Dovecot)"

// StartCourier starts a real Courier-IMAP for the test: a Maildir in
// t.TempDir(), a TCP listener on 127.0.0.1:0, and one imapd process per
// accepted connection, bridged to the socket through pipes. Sessions start
// PREAUTH as Server.User; Server.Delim is '.' and Server.Prefix "INBOX.".
// Everything is stopped in t.Cleanup.
//
// imapd(8) run outside Courier's login chain greets with PREAUTH and serves
// the Maildir named by MAILDIR, so neither authdaemond nor couriertcpd
// runs, no account exists, and neither /etc/courier nor /run/courier is
// needed. Its settings, normally exported from /etc/courier/imapd by the
// init script, are passed in the environment (see courierEnv).
//
// Courier's packages conflict with Dovecot's, so they are not installed but
// extracted into SATCHEL_COURIER_ROOT (default /opt/satchel-servers/courier)
// by .ci/install-courier. If imapd is not there or cannot run, the test is
// skipped, or fails when SATCHEL_REQUIRE_COURIER=1.
func StartCourier(t testing.TB, opts CourierOptions) *Server {
	t.Helper()
	s, _ := startCourier(t, opts)
	return s
}

// startCourier is StartCourier, also returning the bridge for tests that
// check its processes.
func startCourier(t testing.TB, opts CourierOptions) (*Server, *stdioBridge) {
	t.Helper()
	root := os.Getenv("SATCHEL_COURIER_ROOT")
	if root == "" {
		root = courierRootDefault
	}
	imapd := filepath.Join(root, "usr", "bin", "imapd")
	if _, err := os.Stat(imapd); err != nil {
		courierMissing(t, fmt.Sprintf("no imapd: %v", err))
	}

	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	maildir := filepath.Join(home, "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, d), 0o700); err != nil {
			t.Fatalf("imaptest: create courier maildir: %v", err)
		}
	}
	env := courierEnv(dir, home, maildir)
	command := func() *exec.Cmd {
		cmd := exec.Command(imapd)
		cmd.Env = env
		cmd.Dir = home
		return cmd
	}
	probeCourier(t, command)

	logPath := filepath.Join(dir, "courier.log")
	b, addr := listenStdio(t, "courier imapd", logPath, command)

	s := newServer(t, "courier", addr)
	s.User = courierUser
	s.Delim = '.'
	s.Prefix = "INBOX."
	s.logPath = logPath
	t.Cleanup(func() {
		s.closeClient()
		if err := b.stop(); err != nil {
			t.Errorf("imaptest: stop courier: %v", err)
		}
		if t.Failed() {
			t.Logf("imaptest: courier log (%s):\n%s", logPath, tail(s.DovecotLog(), 8<<10))
		}
	})
	return s, b
}

// courierEnv is imapd's whole environment: what Debian's /etc/courier/imapd
// sets for it, except where a test needs otherwise (marked below).
func courierEnv(dir, home, maildir string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"MAILDIR=" + maildir,
		"AUTHENTICATED=" + courierUser,
		"IMAP_CAPABILITY=" + CapsCourier,
		"IMAP_KEYWORDS=1",
		"IMAP_ACL=1",
		"IMAP_IDLE_TIMEOUT=60",
		"IMAP_MAILBOX_SANITY_CHECK=1",
		"IMAP_DISABLETHREADSORT=0",
		"IMAP_CHECK_ALL_FOLDERS=0",
		"IMAP_OBSOLETE_CLIENT=0",
		"IMAP_USELOCKS=1",
		// Without FAM/Gamin; IDLE then polls (imapd(8)).
		"IMAP_ENHANCEDIDLE=0",
		"IMAP_MOVE_EXPUNGE_TO_TRASH=0",
		"IMAP_TRASHFOLDERNAME=Trash",
		// Test's own: no shared folders, and nothing read from /etc/courier.
		"IMAP_SHAREDINDEXFILE=" + filepath.Join(dir, "shared", "index"),
		// Test's own: Debian sets IMAP_EMPTYTRASH=Trash:7, which deletes
		// messages older than seven days from Trash at logout; the corpus's
		// dates are older than that, so seeded messages would vanish.
	}
}

// probeCourier runs imapd once on a canned LOGOUT, so that a missing shared
// library (Courier's are installed separately from the extracted tree) is
// reported as Courier being unavailable rather than as an EOF in the middle
// of a test.
func probeCourier(t testing.TB, command func() *exec.Cmd) {
	t.Helper()
	cmd := command()
	cmd.Stdin = strings.NewReader("a LOGOUT\r\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if bytes.HasPrefix(stdout.Bytes(), []byte("* PREAUTH ")) && err == nil {
		return
	}
	why := fmt.Sprintf("%s: %v; stdout %q; stderr %q", cmd.Path, err, tail(stdout.String(), 512), tail(stderr.String(), 512))
	if strings.Contains(stderr.String(), "error while loading shared libraries") {
		courierMissing(t, why)
	}
	t.Fatalf("imaptest: courier imapd does not start: %s", why)
}

func courierMissing(t testing.TB, why string) {
	t.Helper()
	msg := fmt.Sprintf("imaptest: COURIER-IMAP NOT AVAILABLE (%s): the Courier server mode is not tested; %s", why, courierInstallAdvice)
	if os.Getenv("SATCHEL_REQUIRE_COURIER") == "1" {
		t.Fatal(msg + " (SATCHEL_REQUIRE_COURIER=1)")
	}
	t.Skip(msg)
}
