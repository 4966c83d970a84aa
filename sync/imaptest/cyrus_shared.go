package imaptest

import (
	"net"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// CyrusShared creates, as the Cyrus admin, a mailbox outside the user's
// personal namespace (a shared one: "Public.Lists" where the shared
// namespace is "", RFC 2342 §5), gives Server.User every right on it
// (RFC 4314), and stores msgs in it. Only for StartCyrus servers.
func (s *Server) CyrusShared(name string, msgs ...Message) {
	s.t.Helper()
	if s.Kind != "cyrus" {
		s.t.Fatalf("imaptest: CyrusShared on a %s server", s.Kind)
	}
	nc, err := net.DialTimeout("tcp", s.Addr, 10*time.Second)
	if err != nil {
		s.t.Fatalf("imaptest: dial cyrus: %v", err)
	}
	c := imapclient.New(nc, nil)
	defer c.Close()
	if err := c.Login(cyrusAdmin, cyrusAdminPassword).Wait(); err != nil {
		s.t.Fatalf("imaptest: login as cyrus admin: %v", err)
	}
	if err := c.Create(name, nil).Wait(); err != nil {
		s.t.Fatalf("imaptest: create shared %q: %v", name, err)
	}
	// The admin may administer it, not store in it, until it says so.
	for _, who := range []string{s.User, cyrusAdmin} {
		if err := c.SetACL(name, imap.RightsIdentifier(who), imap.RightModificationReplace, imap.RightSet("lrswipkxtecda")).Wait(); err != nil {
			s.t.Fatalf("imaptest: give %s the rights on %q: %v", who, name, err)
		}
	}
	for _, m := range msgs {
		cmd := c.Append(name, int64(len(m.Body)), &imap.AppendOptions{Flags: toFlags(m.Flags), Time: m.Date})
		if _, err := cmd.Write(m.Body); err != nil {
			s.t.Fatalf("imaptest: append to shared %q: %v", name, err)
		}
		if err := cmd.Close(); err != nil {
			s.t.Fatalf("imaptest: append to shared %q: %v", name, err)
		}
		if _, err := cmd.Wait(); err != nil {
			s.t.Fatalf("imaptest: append to shared %q: %v", name, err)
		}
	}
	c.Logout().Wait()
}
