package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The bench starts Dovecot the way sync/imaptest does for the tests (that
// package is for _test.go files only, and its Start functions need a
// testing.TB): a Dovecot 2.3 configuration in a directory of its own, a
// TCP listener on 127.0.0.1, and one standalone `imap` process per accepted
// connection, its stdin and stdout bridged to the socket through pipes.
// Sessions start PREAUTH, so neither satchel nor mbsync logs in. There is
// no Dovecot master, hence no per-user connection limit
// (mail_max_userip_connections is enforced by imap-login, which is not in
// the path): each connection is its own process.

// dovecotUser is the single user; it appears only in the PREAUTH greeting.
const dovecotUser = "bench"

// nobody is the uid and gid Dovecot drops to when the bench runs as root:
// Dovecot refuses mail access as root.
const nobody = 65534

// dovecot is a running server.
type dovecot struct {
	Addr     string // 127.0.0.1:PORT
	Port     int
	MailDir  string // the user's Maildir root on the server side
	dir      string
	confPath string
	imapPath string
	root     bool
	env      []string
	log      *os.File
	ln       net.Listener
	// caps, when not empty, replaces the capabilities Dovecot offers
	// (imap_capability); compressLevel, when above 0, loads the imap_zlib
	// plugin, which offers COMPRESS=DEFLATE (RFC 4978) at that level.
	// Both take effect for the connections opened after configure.
	caps          string
	compressLevel int

	mu    sync.Mutex
	conns map[net.Conn]*os.Process
	wg    sync.WaitGroup
}

// startDovecot starts Dovecot with everything under dir, which must exist
// and be reachable by uid 65534 when running as root.
func startDovecot(dir string) (*dovecot, error) {
	if _, err := exec.LookPath("doveconf"); err != nil {
		return nil, errors.New("doveconf not found: install Dovecot (apt-get install dovecot-imapd)")
	}
	home := filepath.Join(dir, "home")
	for _, d := range []string{home, filepath.Join(dir, "run"), filepath.Join(dir, "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create dovecot dir: %w", err)
		}
	}
	d := &dovecot{
		dir:      dir,
		confPath: filepath.Join(dir, "dovecot.conf"),
		MailDir:  filepath.Join(home, "Mail"),
		root:     os.Geteuid() == 0,
		env:      []string{"USER=" + dovecotUser, "HOME=" + home, "PATH=" + os.Getenv("PATH")},
		conns:    map[net.Conn]*os.Process{},
	}
	if d.root {
		if err := os.Chown(home, nobody, nobody); err != nil {
			return nil, fmt.Errorf("chown dovecot home: %w", err)
		}
	}
	if err := d.configure(true); err != nil {
		return nil, err
	}
	libexec := "/usr/lib/dovecot"
	if out, err := exec.Command("doveconf", "-c", d.confPath, "-h", "libexec_dir").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		libexec = strings.TrimSpace(string(out))
	}
	d.imapPath = filepath.Join(libexec, "imap")
	if _, err := os.Stat(d.imapPath); err != nil {
		return nil, fmt.Errorf("dovecot imap binary (apt-get install dovecot-imapd): %w", err)
	}
	log, err := os.OpenFile(filepath.Join(dir, "dovecot.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	d.log = log
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Close()
		return nil, err
	}
	d.ln = ln
	d.Addr = ln.Addr().String()
	d.Port = ln.Addr().(*net.TCPAddr).Port
	go d.accept()
	return d, nil
}

// configure writes the configuration; every imap process reads it when it
// starts. Seeding runs with mail_fsync = never (thousands of APPENDs), the
// measurements with Dovecot's default, optimized, as a real server.
func (d *dovecot) configure(fast bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "base_dir = %s\nstate_dir = %s\nssl = no\n", filepath.Join(d.dir, "run"), filepath.Join(d.dir, "state"))
	b.WriteString("mail_location = maildir:~/Mail:LAYOUT=fs\n")
	b.WriteString("namespace inbox {\n  separator = /\n  prefix =\n  inbox = yes\n}\n")
	if fast {
		b.WriteString("mail_fsync = never\n")
	}
	if d.root {
		fmt.Fprintf(&b, "mail_uid = %d\nmail_gid = %d\n", nobody, nobody)
	}
	if d.caps != "" {
		fmt.Fprintf(&b, "imap_capability = %s\n", d.caps)
	}
	if d.compressLevel > 0 {
		// imap_zlib implements COMPRESS and needs zlib loaded for mail too.
		b.WriteString("mail_plugins = $mail_plugins zlib\nprotocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}\n")
		fmt.Fprintf(&b, "plugin {\n  imap_zlib_compress_level = %d\n}\n", d.compressLevel)
	}
	if err := os.WriteFile(d.confPath, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write dovecot config: %w", err)
	}
	return nil
}

// capsCondStoreOnly is what Dovecot 2.3.19 offers after PREAUTH, without
// QRESYNC: a server with CONDSTORE (RFC 7162 §3.1) only, as
// sync/imaptest's CapsCondStoreOnly.
const capsCondStoreOnly = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY " +
	"THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE " +
	"UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE " +
	"ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY " +
	"PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"

// dovecotModules is where Debian's Dovecot 2.3 keeps its plugins.
const dovecotModules = "/usr/lib/dovecot/modules"

// findIMAPZlib checks that the plugin behind COMPRESS=DEFLATE is installed
// (it ships in dovecot-core).
func findIMAPZlib() error {
	found, _ := filepath.Glob(filepath.Join(dovecotModules, "lib*_imap_zlib_plugin.so"))
	if len(found) == 0 {
		return fmt.Errorf("Dovecot's imap_zlib plugin (lib*_imap_zlib_plugin.so) not found in %s", dovecotModules)
	}
	return nil
}

// reconfigure sets what the next connections are offered (see caps and
// compressLevel), once the sessions still running have ended.
func (d *dovecot) reconfigure(ctx context.Context, caps string, compressLevel int) error {
	if err := d.waitIdle(ctx); err != nil {
		return err
	}
	d.caps, d.compressLevel = caps, compressLevel
	return d.configure(false)
}

func (d *dovecot) accept() {
	for {
		conn, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.wg.Add(1)
		go d.serve(conn)
	}
}

// serve runs one imap process for conn. Pipes rather than the socket
// become its stdin and stdout: Dovecot 2.3 refuses to run a standalone
// imap as root with a socket on stdin.
func (d *dovecot) serve(conn net.Conn) {
	defer d.wg.Done()
	defer conn.Close()
	cmd := exec.Command(d.imapPath, "-c", d.confPath)
	cmd.Env, cmd.Dir, cmd.Stderr = d.env, d.dir, d.log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(d.log, "bench bridge: start imap: %v\n", err)
		return
	}
	d.mu.Lock()
	d.conns[conn] = cmd.Process
	d.mu.Unlock()
	done := make(chan struct{})
	go func() {
		io.Copy(stdin, conn)
		stdin.Close() // EOF ends the imap process
		close(done)
	}()
	io.Copy(conn, stdout)
	conn.Close() // imap is gone: the client sees EOF, the copy above ends
	<-done
	cmd.Wait()
	d.mu.Lock()
	delete(d.conns, conn)
	d.mu.Unlock()
}

// waitIdle waits until no imap process is left, so that the server's files
// can be copied or replaced: a client that has closed its connection may
// leave a process still writing its indexes.
func (d *dovecot) waitIdle(ctx context.Context) error {
	for {
		d.mu.Lock()
		n := len(d.conns)
		d.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d dovecot sessions to end: %w", n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop closes the listener and every connection, kills the imap processes
// still running (the bench is done with the mail) and waits for them.
func (d *dovecot) stop() {
	d.ln.Close()
	d.mu.Lock()
	for c, p := range d.conns {
		c.Close()
		p.Kill()
	}
	d.mu.Unlock()
	d.wg.Wait()
	d.log.Close()
}
