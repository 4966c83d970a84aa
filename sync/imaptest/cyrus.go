package imaptest

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// CyrusOptions configures StartCyrus.
type CyrusOptions struct {
	// AltNamespace selects Cyrus' "alternate namespace" (altnamespace: yes,
	// unixhierarchysep: yes): the personal namespace is ("" "/"), as on
	// Dovecot. Without it (altnamespace: no, unixhierarchysep: no) the
	// personal namespace is ("INBOX." "."), with the other users' ("user."
	// ".") and a shared one ("" ".") beside it (RFC 2342 §5): every
	// personal mailbox is below INBOX, the hosting-style layout.
	AltNamespace bool
	// SuppressCapabilities names capabilities Cyrus must not advertise
	// (its suppress_capabilities option), e.g. {"QRESYNC"}. Cyrus still
	// implements them; hiding them only checks that the code under test
	// obeys the CAPABILITY list.
	SuppressCapabilities []string
}

const (
	cyrusUser     = "satchel"
	cyrusPassword = "satchel-cyrus-password"
	// cyrusAdmin is the admin (imapd.conf admins) that creates the user's
	// INBOX: Cyrus creates no mailbox at login unless autocreate is set up.
	cyrusAdmin         = "cyrusadmin"
	cyrusAdminPassword = "cyrusadmin-password"
	// cyrusServerName is imapd.conf's servername. imapd passes it to SASL
	// as the default realm, so the users are created in this realm and log
	// in without one.
	cyrusServerName = "localhost"
	// cyrusDefaultRoot is where .ci/install-cyrus extracts the Debian
	// packages: cyrus-imapd cannot be installed beside dovecot-imapd
	// (Conflicts: imap-server).
	cyrusDefaultRoot = "/opt/satchel-servers/cyrus"
)

// StartCyrus starts a real Cyrus IMAP (3.6 on Debian 12) for the test:
// configuration, mail spool, databases and SASL user database in
// t.TempDir(), its master process in the foreground, and imapd listening on
// 127.0.0.1 on a free port. Server.User logs in with Server.Password (LOGIN
// over plaintext is allowed). Server.Delim and Server.Prefix are what the
// server's NAMESPACE reports for the chosen mode. Everything is stopped in
// t.Cleanup.
//
// Cyrus comes from the tree .ci/install-cyrus extracts, at
// $SATCHEL_CYRUS_ROOT (default /opt/satchel-servers/cyrus). If it is not
// there the test is skipped, or fails when SATCHEL_REQUIRE_CYRUS=1.
//
// Cyrus is left as configured by default where a client can tell: it
// creates missing parents of a nested name as real mailboxes, keeps
// UIDVALIDITY across RENAME, gives mailboxes created in the same second
// the same UIDVALIDITY, and replaces raw 8-bit bytes in an appended
// message's header with "X" (munge8bit).
//
// Cyrus logs only to syslog; on a machine without /dev/log its messages are
// lost, and a failed test can show only what master wrote to stderr.
func StartCyrus(t testing.TB, opts CyrusOptions) *Server {
	t.Helper()
	bin, libDir, err := findCyrus()
	if err != nil {
		cyrusMissing(t, err.Error())
	}

	dir := t.TempDir()
	if strings.ContainsAny(dir+bin, " \t\"") {
		// cyrus.conf splits cmd at blanks and has no quoting for paths.
		t.Fatalf("imaptest: cyrus paths must not contain blanks or quotes: %q, %q", dir, bin)
	}
	// conf/socket holds idled's socket and each imapd's end of it
	// (imapd binds configdirectory/socket/idle.PID whatever idlesocket
	// says).
	for _, d := range []string{"conf", "conf/socket", "spool"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("imaptest: create cyrus dir: %v", err)
		}
	}
	env := []string{"LD_LIBRARY_PATH=" + libDir, "PATH=" + os.Getenv("PATH")}
	sasldb := filepath.Join(dir, "sasldb2")
	for _, u := range [][2]string{{cyrusUser, cyrusPassword}, {cyrusAdmin, cyrusAdminPassword}} {
		if err := saslPasswd(bin, env, sasldb, u[0], u[1]); err != nil {
			t.Fatalf("imaptest: %v", err)
		}
	}

	// Cyrus is not meant to run as root: master switches to cyrus_user
	// ("cyrus", which an extracted package does not create) and exits when
	// it cannot. So it is given the uid it already runs as: as root, the
	// same unprivileged uid as Dovecot, owning the temp dir.
	root := os.Geteuid() == 0
	var cred *syscall.Credential
	runAs, err := user.Current()
	if root {
		if err := openForUnprivileged(dir, dir); err == nil {
			err = chownTree(dir, unprivilegedID)
		}
		if err != nil {
			t.Fatalf("imaptest: prepare cyrus dir for uid %d: %v", unprivilegedID, err)
		}
		cred = &syscall.Credential{Uid: unprivilegedID, Gid: unprivilegedID}
		runAs, err = user.LookupId(strconv.Itoa(unprivilegedID))
	}
	if err != nil {
		t.Fatalf("imaptest: cyrus_user: %v", err)
	}

	port, err := freePort()
	if err != nil {
		t.Fatalf("imaptest: %v", err)
	}
	imapdConf := filepath.Join(dir, "imapd.conf")
	cyrusConf := filepath.Join(dir, "cyrus.conf")
	if err := os.WriteFile(imapdConf, []byte(cyrusIMAPDConfig(dir, runAs.Username, opts)), 0o644); err != nil {
		t.Fatalf("imaptest: write imapd.conf: %v", err)
	}
	if err := os.WriteFile(cyrusConf, []byte(cyrusMasterConfig(bin, imapdConf, port)), 0o644); err != nil {
		t.Fatalf("imaptest: write cyrus.conf: %v", err)
	}

	logPath := filepath.Join(dir, "master.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("imaptest: create cyrus log: %v", err)
	}
	defer logFile.Close() // the child has its own copy
	readLog := func() string {
		b, err := os.ReadFile(logPath)
		if err != nil {
			return fmt.Sprintf("(read %s: %v)", logPath, err)
		}
		if len(b) == 0 {
			return "(empty: Cyrus logs to syslog)"
		}
		return tail(string(b), 8<<10)
	}

	// -D keeps master in the foreground, so it is our child to wait for.
	cmd := exec.Command(filepath.Join(bin, "master"), "-C", imapdConf, "-M", cyrusConf, "-D", "-p", filepath.Join(dir, "conf", "master.pid"))
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Its own process group, so the imapd children can be killed with it
	// if master does not take them down on SIGTERM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatalf("imaptest: start cyrus master: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	s := newServer(t, "cyrus", addr)
	s.User = cyrusUser
	s.Password = cyrusPassword
	t.Cleanup(func() {
		s.closeClient()
		if err := stopCyrus(cmd.Process, exited); err != nil {
			t.Errorf("imaptest: stop cyrus: %v", err)
		}
		if t.Failed() {
			t.Logf("imaptest: cyrus master log (%s):\n%s", logPath, readLog())
		}
	})

	if err := waitGreeting(s.Addr, exited); err != nil {
		select {
		case <-exited:
			t.Fatalf("imaptest: cyrus master exited during start-up (%v); log:\n%s", waitErr, readLog())
		default:
		}
		t.Fatalf("imaptest: cyrus on %s: %v", s.Addr, err)
	}
	if err := createCyrusUser(s.Addr); err != nil {
		t.Fatalf("imaptest: %v", err)
	}
	s.Delim, s.Prefix = s.personalNamespace()
	return s
}

func cyrusMissing(t testing.TB, why string) {
	t.Helper()
	msg := fmt.Sprintf("imaptest: CYRUS NOT AVAILABLE (%s): the Cyrus server modes are not tested; run .ci/install-cyrus as root", why)
	if os.Getenv("SATCHEL_REQUIRE_CYRUS") == "1" {
		t.Fatal(msg + " (SATCHEL_REQUIRE_CYRUS=1)")
	}
	t.Skip(msg)
}

// findCyrus returns the directory of Cyrus' server binaries and the one
// holding its own shared libraries, which the extracted tree keeps outside
// the linker's search path.
func findCyrus() (bin, libDir string, err error) {
	root := cmp.Or(os.Getenv("SATCHEL_CYRUS_ROOT"), cyrusDefaultRoot)
	bin = filepath.Join(root, "usr", "lib", "cyrus", "bin")
	for _, p := range []string{filepath.Join(bin, "master"), filepath.Join(bin, "imapd"), filepath.Join(root, "usr", "sbin", "saslpasswd2")} {
		if _, err := os.Stat(p); err != nil {
			return "", "", err
		}
	}
	libs, _ := filepath.Glob(filepath.Join(root, "usr", "lib", "*", "libcyrus.so.0"))
	if len(libs) == 0 {
		return "", "", fmt.Errorf("no libcyrus.so.0 under %s", filepath.Join(root, "usr", "lib"))
	}
	return bin, filepath.Dir(libs[0]), nil
}

// saslPasswd adds a user to the SASL database Cyrus authenticates against
// (sasl_auxprop_plugin: sasldb), with the extracted saslpasswd2.
func saslPasswd(bin string, env []string, db, name, password string) error {
	root := filepath.Dir(filepath.Dir(filepath.Dir(bin))) // .../usr/lib/cyrus/bin -> .../usr
	cmd := exec.Command(filepath.Join(root, "sbin", "saslpasswd2"), "-c", "-p", "-f", db, "-u", cyrusServerName, name)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(password)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("saslpasswd2 %s: %v: %s", name, err, out)
	}
	return nil
}

func chownTree(dir string, id int) error {
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, id, id)
	})
}

// freePort asks the kernel for a free port on 127.0.0.1. Cyrus binds it
// itself, so another process could take it in between; ephemeral ports are
// handed out at random, which makes that rare, and the start-up then fails
// loudly rather than talking to a stranger (the greeting must be Cyrus').
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cyrusIMAPDConfig renders imapd.conf: everything Cyrus writes lives in
// dir, users authenticate against dir/sasldb2.
func cyrusIMAPDConfig(dir, runAs string, opts CyrusOptions) string {
	yesNo := map[bool]string{true: "yes", false: "no"}
	var b strings.Builder
	fmt.Fprintf(&b, "configdirectory: %s\n", filepath.Join(dir, "conf"))
	b.WriteString("defaultpartition: default\n")
	fmt.Fprintf(&b, "partition-default: %s\n", filepath.Join(dir, "spool"))
	for _, name := range []string{"idlesocket", "lmtpsocket", "notifysocket"} {
		fmt.Fprintf(&b, "%s: %s\n", name, filepath.Join(dir, "conf", "socket", strings.TrimSuffix(name, "socket")))
	}
	fmt.Fprintf(&b, "servername: %s\n", cyrusServerName)
	fmt.Fprintf(&b, "cyrus_user: %s\n", runAs)
	fmt.Fprintf(&b, "admins: %s\n", cyrusAdmin)
	b.WriteString("allowplaintext: yes\n")
	b.WriteString("sasl_pwcheck_method: auxprop\n")
	b.WriteString("sasl_auxprop_plugin: sasldb\n")
	fmt.Fprintf(&b, "sasl_sasldb_path: %s\n", filepath.Join(dir, "sasldb2"))
	b.WriteString("sasl_mech_list: PLAIN LOGIN\n")
	b.WriteString("virtdomains: off\n")
	// Tests log in with wrong passwords on purpose; the default pause of
	// 3 s after a failed login only protects against guessing.
	b.WriteString("failedloginpause: 0\n")
	// idled tells idling imapd processes about changes at once; where
	// it has not started yet (a loaded machine), they poll: every second
	// rather than every 60, so that push tests do not hang on it.
	b.WriteString("imapidlepoll: 1\n")
	fmt.Fprintf(&b, "altnamespace: %s\n", yesNo[opts.AltNamespace])
	fmt.Fprintf(&b, "unixhierarchysep: %s\n", yesNo[opts.AltNamespace])
	if len(opts.SuppressCapabilities) > 0 {
		fmt.Fprintf(&b, "suppress_capabilities: %s\n", strings.Join(opts.SuppressCapabilities, " "))
	}
	return b.String()
}

// cyrusMasterConfig renders cyrus.conf: recover the databases (which also
// creates them) before imapd is started, one imap service, and idled,
// which tells idling imapd processes about changes at once; without it
// they poll every imapidlepoll seconds (60), too slow for the push tests.
// Commands get absolute paths and -C: master would look for them in the
// packaged /usr/lib/cyrus/bin and for their config in /etc.
func cyrusMasterConfig(bin, imapdConf string, port int) string {
	return fmt.Sprintf(`START {
  recover cmd="%[1]s/ctl_cyrusdb -C %[2]s -r"
}
SERVICES {
  imap cmd="%[1]s/imapd -C %[2]s" listen="127.0.0.1:%[3]d" prefork=0
}
EVENTS {
}
DAEMON {
  idled cmd="%[1]s/idled -C %[2]s"
}
`, bin, imapdConf, port)
}

// cyrusStartTimeout bounds how long master may take to answer on its
// port: it runs ctl_cyrusdb -r first.
const cyrusStartTimeout = 30 * time.Second

// waitGreeting dials addr until a Cyrus greeting arrives, master exits
// or cyrusStartTimeout passes.
func waitGreeting(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(cyrusStartTimeout)
	for {
		greeting, err := cyrusGreeting(addr)
		if err == nil {
			if !strings.HasPrefix(greeting, "* OK ") || !strings.Contains(greeting, "Cyrus") {
				return fmt.Errorf("unexpected greeting %q (is another server on the port?)", greeting)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no greeting within %v: %w", cyrusStartTimeout, err)
		}
		select {
		case <-exited:
			return errors.New("master exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func cyrusGreeting(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting: %w", err)
	}
	c.Write([]byte("x LOGOUT\r\n"))
	return strings.TrimRight(line, "\r\n"), nil
}

// createCyrusUser creates the user's INBOX as the admin. Its name is the
// other-users prefix the admin's NAMESPACE reports ("user." or
// "user/") plus the user name.
func createCyrusUser(addr string) error {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("dial cyrus: %w", err)
	}
	c := imapclient.New(nc, nil)
	defer c.Close()
	if err := c.Login(cyrusAdmin, cyrusAdminPassword).Wait(); err != nil {
		return fmt.Errorf("login as cyrus admin: %w", err)
	}
	ns, err := c.Namespace().Wait()
	if err != nil {
		return fmt.Errorf("cyrus admin namespace: %w", err)
	}
	if len(ns.Other) == 0 {
		return fmt.Errorf("cyrus admin sees no other users' namespace: %+v", ns)
	}
	inbox := ns.Other[0].Prefix + cyrusUser
	if err := c.Create(inbox, nil).Wait(); err != nil {
		return fmt.Errorf("create %q as cyrus admin: %w", inbox, err)
	}
	c.Logout().Wait()
	return nil
}

// personalNamespace returns the delimiter and prefix of the first personal
// namespace (RFC 2342 §5) the server reports to Server.User.
func (s *Server) personalNamespace() (rune, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, err := s.conn().Namespace().Wait()
	if err != nil {
		s.t.Fatalf("imaptest: namespace: %v", err)
	}
	if len(ns.Personal) == 0 {
		s.t.Fatalf("imaptest: %s server reports no personal namespace", s.Kind)
	}
	return ns.Personal[0].Delim, ns.Personal[0].Prefix
}

// cyrusStopTimeout is how long master gets to take its children down
// after SIGTERM before they are all killed.
const cyrusStopTimeout = 10 * time.Second

// stopCyrus sends master SIGTERM, on which it ends its children and
// exits, and waits for it; after cyrusStopTimeout its whole process group
// is killed. Whatever is left in the group once master is gone (an imapd
// still finishing its session) is killed too: the temp dir is about to be
// removed under it.
func stopCyrus(p *os.Process, exited <-chan struct{}) error {
	var err error
	p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(cyrusStopTimeout):
		err = fmt.Errorf("killed master, which did not exit within %v of SIGTERM", cyrusStopTimeout)
	}
	syscall.Kill(-p.Pid, syscall.SIGKILL)
	<-exited
	return err
}
