package imaptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CapsDovecot is what Dovecot 2.3.19 advertises after PREAUTH with its
// default configuration (read from a running server). It is the base the
// narrower modes below are cut from; StartDovecot with empty Capabilities
// advertises Dovecot's own list, which is this one for 2.3.19.
const CapsDovecot = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY " +
	"THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE " +
	"UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC " +
	"ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY " +
	"PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"

// CapsCondStoreOnly is CapsDovecot without QRESYNC: a server with CONDSTORE
// (RFC 7162 §3.1) but without QRESYNC (§3.2), so expunges must be found by
// comparing UID lists rather than from VANISHED.
const CapsCondStoreOnly = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY " +
	"THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE " +
	"UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE " +
	"ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY " +
	"PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"

// CapsPlain is a bare RFC 3501 server: no CONDSTORE, QRESYNC, UIDPLUS, MOVE,
// ESEARCH, LIST-STATUS or UNSELECT. LITERAL+ stays so seeding is not slowed
// down by a round trip per literal, and IDLE stays because push is tested in
// every mode.
//
// Dovecot still implements the hidden extensions (it accepts ENABLE QRESYNC
// and still reports APPENDUID); hiding them only checks that the code under
// test obeys the CAPABILITY list.
const CapsPlain = "IMAP4rev1 LITERAL+ IDLE"

// DovecotOptions configures StartDovecot.
type DovecotOptions struct {
	// Capabilities, if non-empty, replaces the advertised capability list
	// (Dovecot's imap_capability), e.g. CapsPlain.
	Capabilities string
	// SpecialUse gives mailboxes special-use attributes (RFC 6154), by
	// name: {"[Gmail]/Sent Mail": `\Sent`}. See specialUseConfig.
	SpecialUse map[string]string
	// Prefix and Separator shape the personal namespace (RFC 2342): its
	// prefix ("" by default) and hierarchy separator ("/" by default).
	// Prefix "INBOX." with Separator "." is how hosting control panels
	// (cPanel, Plesk) set Dovecot up: every mailbox but INBOX lives
	// below "INBOX.", and a name outside the prefix cannot be created.
	// Such a server stores its mail in Maildir++ (see dovecotConfig).
	// The Server's Prefix and Delim report what is set here.
	Prefix    string
	Separator string
	// Compress loads Dovecot's zlib and imap_zlib plugins, which offer
	// COMPRESS=DEFLATE (RFC 4978); it is added to a narrowed Capabilities
	// list too. The test is skipped (see StartDovecot) when the plugin is
	// not installed.
	Compress bool
}

// dovecotUser is the login name of the single Dovecot user. Sessions are
// PREAUTH, so it never travels over the wire except in the greeting.
const dovecotUser = "satchel"

// unprivilegedID is the uid and gid Dovecot drops to when the tests run as
// root: Dovecot refuses mail access as root ("Mail access not allowed for
// root") and, without mail_uid, refuses to run at all as root. 65534 is
// nobody/nogroup on Debian; numeric ids need no passwd entry.
const unprivilegedID = 65534

const installAdvice = "install Dovecot with `apt-get install dovecot-imapd` (Debian/Ubuntu)"

// StartDovecot starts a real Dovecot for the test: config, mail and log in
// t.TempDir(), a TCP listener on 127.0.0.1:0, and one Dovecot imap process
// per accepted connection, bridged to the socket through pipes. Sessions
// start PREAUTH as Server.User. Mailboxes use "/" as hierarchy separator
// and no namespace prefix unless opts says otherwise.
// Everything is stopped in t.Cleanup.
//
// The imap binary is run directly with -c CONF rather than through
// `doveadm -c CONF exec imap`: doveadm re-exports only the settings of its
// own modules to the child, so imap_capability would be lost. Pipes rather
// than the socket itself become stdin/stdout because Dovecot 2.3 refuses to
// run a standalone imap process as root with a socket on stdin.
//
// If Dovecot is not installed the test is skipped, or fails when
// SATCHEL_REQUIRE_DOVECOT=1 (set in CI so the Dovecot modes cannot silently
// disappear).
func StartDovecot(t testing.TB, opts DovecotOptions) *Server {
	t.Helper()
	if _, err := exec.LookPath("doveadm"); err != nil {
		dovecotMissing(t, "doveadm not found in PATH")
	}

	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	for _, d := range []string{home, filepath.Join(dir, "run"), filepath.Join(dir, "state")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("imaptest: create dovecot dir: %v", err)
		}
	}
	root := os.Geteuid() == 0
	if root {
		if err := openForUnprivileged(dir, home); err != nil {
			t.Fatalf("imaptest: prepare dovecot dirs for uid %d: %v", unprivilegedID, err)
		}
	}

	confPath := filepath.Join(dir, "dovecot.conf")
	sep := opts.Separator
	if sep == "" {
		sep = "/"
	}
	if len([]rune(sep)) != 1 {
		t.Fatalf("imaptest: dovecot separator %q is not one character", sep)
	}
	caps, zlib := opts.Capabilities, ""
	if opts.Compress {
		if err := findIMAPZlib(); err != nil {
			dovecotMissing(t, err.Error())
		}
		if caps != "" {
			caps += " COMPRESS=DEFLATE"
		}
		zlib = compressConfig
	}
	if err := os.WriteFile(confPath, []byte(dovecotConfig(dir, root, caps, opts.Prefix, sep)+specialUseConfig(opts.SpecialUse)+zlib), 0o644); err != nil {
		t.Fatalf("imaptest: write dovecot config: %v", err)
	}
	imapPath, err := findDovecotIMAP(confPath)
	if err != nil {
		dovecotMissing(t, err.Error())
	}

	logPath := filepath.Join(dir, "dovecot.log")
	env := []string{"USER=" + dovecotUser, "HOME=" + home, "PATH=" + os.Getenv("PATH")}
	bridge, addr := listenStdio(t, "dovecot imap", logPath, func() *exec.Cmd {
		cmd := exec.Command(imapPath, "-c", confPath)
		cmd.Env = env
		cmd.Dir = dir
		return cmd
	})
	d := &dovecotServer{dir: dir, stdioBridge: bridge}

	s := newServer(t, "dovecot", addr)
	s.User = dovecotUser
	s.Delim = []rune(sep)[0]
	s.Prefix = opts.Prefix
	s.logPath = logPath
	s.dovecot = d
	t.Cleanup(func() {
		s.closeClient()
		if err := d.stop(); err != nil {
			t.Errorf("imaptest: stop dovecot: %v", err)
		}
		if t.Failed() {
			t.Logf("imaptest: dovecot log (%s):\n%s", logPath, tail(s.DovecotLog(), 8<<10))
		}
	})
	return s
}

func dovecotMissing(t testing.TB, why string) {
	t.Helper()
	msg := fmt.Sprintf("imaptest: DOVECOT NOT AVAILABLE (%s): the Dovecot server modes are not tested; %s", why, installAdvice)
	if os.Getenv("SATCHEL_REQUIRE_DOVECOT") == "1" {
		t.Fatal(msg + " (SATCHEL_REQUIRE_DOVECOT=1)")
	}
	t.Skip(msg)
}

// dovecotConfig renders a Dovecot 2.3 configuration. Logging needs no
// setting: a standalone imap process logs to stderr, which the bridge sends
// to the log file.
//
// The default "/" separator keeps mail in LAYOUT=fs, one directory per
// level. Any other separator gets Maildir++, the layout hosting panels use
// with "INBOX." and ".": its folders are ~/Mail/.Archive.2024, the level
// separator on disk being "." whatever the namespace says, so INBOX is the
// Maildir's root and its children sit beside cur/new/tmp as Maildir++
// clients (Courier, the panels' webmail) expect.
func dovecotConfig(dir string, root bool, caps, prefix, sep string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "base_dir = %s\n", filepath.Join(dir, "run"))
	fmt.Fprintf(&b, "state_dir = %s\n", filepath.Join(dir, "state"))
	b.WriteString("ssl = no\n")
	if sep == "/" {
		b.WriteString("mail_location = maildir:~/Mail:LAYOUT=fs\n")
	} else {
		b.WriteString("mail_location = maildir:~/Mail\n")
	}
	b.WriteString(`# Test data does not need to survive a crash; fsync per APPEND would make
# seeding thousands of messages slow.
mail_fsync = never
`)
	fmt.Fprintf(&b, "namespace inbox {\n  separator = %s\n  prefix = %s\n  inbox = yes\n}\n", sep, prefix)
	if root {
		fmt.Fprintf(&b, "mail_uid = %d\nmail_gid = %d\n", unprivilegedID, unprivilegedID)
	}
	if caps != "" {
		fmt.Fprintf(&b, "imap_capability = %s\n", caps)
	}
	return b.String()
}

// compressConfig loads the plugins behind COMPRESS=DEFLATE: imap_zlib
// implements the command and needs zlib loaded for mail too.
const compressConfig = `mail_plugins = $mail_plugins zlib
protocol imap {
  mail_plugins = $mail_plugins imap_zlib
}
`

// dovecotModules is Dovecot 2.3's mail_plugin_dir on Debian; the imap_zlib
// plugin ships in dovecot-core.
const dovecotModules = "/usr/lib/dovecot/modules"

// findIMAPZlib checks that Dovecot's imap_zlib plugin is installed.
func findIMAPZlib() error {
	found, err := filepath.Glob(filepath.Join(dovecotModules, "lib*_imap_zlib_plugin.so"))
	if err != nil || len(found) == 0 {
		return fmt.Errorf("imap_zlib plugin (lib*_imap_zlib_plugin.so) not found in %s", dovecotModules)
	}
	return nil
}

// findDovecotIMAP returns the path of Dovecot's imap binary, which lives in
// libexec_dir (/usr/lib/dovecot on Debian) and comes with dovecot-imapd, not
// with the dovecot-core package that provides doveadm.
func findDovecotIMAP(confPath string) (string, error) {
	libexec := "/usr/lib/dovecot"
	if out, err := exec.Command("doveconf", "-c", confPath, "-h", "libexec_dir").Output(); err == nil {
		if s := strings.TrimSpace(string(out)); s != "" {
			libexec = s
		}
	}
	path := filepath.Join(libexec, "imap")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("dovecot imap binary: %w", err)
	}
	return path, nil
}

// openForUnprivileged lets the unprivileged mail uid reach home (and own it)
// when the tests run as root. t.TempDir() creates its parent directory with
// mode 0700, so every directory between the system temp dir and dir gets the
// search bit for others; nothing becomes listable or writable. Directories
// above the temp dir are not the test's to change: if one of them is closed
// to others, the error says so.
func openForUnprivileged(dir, home string) error {
	tmp := filepath.Clean(os.TempDir())
	d := filepath.Clean(dir)
	for ; strings.HasPrefix(d, tmp+string(filepath.Separator)); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
			return err
		}
	}
	for ; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by others, so uid %d cannot reach %s; point TMPDIR elsewhere (e.g. /tmp)", d, unprivilegedID, home)
		}
		if parent := filepath.Dir(d); parent == d {
			break
		}
	}
	return os.Chown(home, unprivilegedID, unprivilegedID)
}

// dovecotServer runs one Dovecot imap process per connection (see
// stdioBridge); dir holds its configuration, mail and log.
type dovecotServer struct {
	*stdioBridge
	dir string
}

// stopTimeout is how long server processes get to exit after their
// connection is closed before they are killed.
const stopTimeout = 10 * time.Second

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "...\n" + s
}
