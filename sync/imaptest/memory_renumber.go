package imaptest

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// MemoryOptions makes StartMemoryWith's in-memory server behave like
// servers that keep fewer of the promises Dovecot keeps, within what the
// RFCs allow, so the engine meets them in every test run without Courier
// or Cyrus installed.
type MemoryOptions struct {
	// RenameRenumbers makes RENAME what it is on servers that store a
	// mailbox's UIDs with its name: a new mailbox with a new UIDVALIDITY,
	// holding copies of the old one's messages in UID order, numbered
	// from 1 with flags and INTERNALDATE kept. Mailboxes below the old
	// name move along (RFC 9051 §6.3.6) the same way. RENAME of INBOX
	// moves its messages into the new mailbox and leaves INBOX empty
	// (RFC 9051 §6.3.6); the mailboxes below INBOX stay. Subscriptions
	// do not move along.
	RenameRenumbers bool
	// SharedUIDValidity makes UIDVALIDITY clock-like, as on servers that
	// take it from the time of day: every mailbox created in the same
	// tick of the server's clock reports the same value, wherever the
	// client reads it (SELECT and EXAMINE, STATUS, APPENDUID, COPYUID,
	// also MOVE's). RFC 9051 §2.3.1.1 asks UIDVALIDITY to be unique per
	// mailbox name, not across mailboxes, so this is allowed.
	//
	// The clock ticks on every DELETE and RENAME, so that a name that
	// comes back never comes back with its old value (RFC 9051
	// §2.3.1.1: name, UIDVALIDITY and UID refer to one message forever),
	// and on Server.AdvanceUIDValidityClock. Without RenameRenumbers a
	// renamed mailbox keeps its value.
	//
	// LIST-STATUS (RFC 5819) is not advertised; a LIST RETURN (STATUS)
	// asking for UIDVALIDITY anyway is refused rather than answered
	// with the server's internal value.
	SharedUIDValidity bool
	// MaxKeywords, if not 0, keeps at most this many keywords per
	// mailbox, as Cyrus does (128 user flags) and Dovecot's Maildir in
	// its file names (26): a STORE or APPEND of a keyword beyond them
	// succeeds without it, and the flags that answer it do not show it.
	// See keywordlimit.go.
	MaxKeywords int
}

// StartMemoryWith starts the in-memory server of StartMemory, shaped by
// opts. Its Server.Kind is "memory-renumbering". It stops in t.Cleanup.
func StartMemoryWith(t testing.TB, opts MemoryOptions) *Server {
	t.Helper()
	user := newMemoryUser(t)
	r := &renumberer{
		opts:  opts,
		user:  user,
		base:  uint32(time.Now().Unix()),
		uidv:  make(map[uint32]uint32),
		names: map[string]struct{}{"INBOX": {}},
	}
	st, err := user.Status("INBOX", &imap.StatusOptions{UIDValidity: true})
	if err != nil {
		t.Fatalf("imaptest: status INBOX: %v", err)
	}
	r.uidv[st.UIDValidity] = r.clockLocked()

	s := serveMemory(t, user, nil, nil, func(sess imapserver.Session) imapserver.Session {
		return &renumberSession{SessionIMAP4rev2: sess.(imapserver.SessionIMAP4rev2), r: r}
	})
	s.Kind = "memory-renumbering"
	renumberers.Store(s, r)
	t.Cleanup(func() { renumberers.Delete(s) })
	return s
}

// renumberers maps each Server started by StartMemoryWith to its state,
// for AdvanceUIDValidityClock.
var renumberers sync.Map // *Server -> *renumberer

// AdvanceUIDValidityClock moves the clock of a server started by
// StartMemoryWith with SharedUIDValidity one tick on: mailboxes created
// from now on report a UIDVALIDITY no earlier mailbox has, as if a second
// had passed on a server that takes UIDVALIDITY from the time.
func (s *Server) AdvanceUIDValidityClock() {
	v, ok := renumberers.Load(s)
	if !ok || !v.(*renumberer).opts.SharedUIDValidity {
		s.t.Fatalf("imaptest: %s has no UIDVALIDITY clock (StartMemoryWith with SharedUIDValidity)", s)
	}
	r := v.(*renumberer)
	r.mu.Lock()
	r.tick++
	r.mu.Unlock()
}

// renumberer is the state the sessions of one StartMemoryWith server
// share. Its mutex serializes CREATE, DELETE and RENAME, so the names and
// values it records cannot interleave with another session's.
type renumberer struct {
	opts MemoryOptions
	user *imapmemserver.User

	mu   sync.Mutex
	base uint32 // the clock at tick 0: the server's start, in Unix seconds
	tick uint32
	// uidv maps the value imapmemserver keeps (unique per mailbox: a
	// counter) to the one reported, fixed when the mailbox is created.
	uidv map[uint32]uint32
	// names are the existing mailboxes. imapmemserver lists them only
	// through a connection's ListWriter; every change goes through
	// renumberSession, which keeps this set.
	names map[string]struct{}
	// keywords holds each mailbox's keywords, lower case, for
	// MaxKeywords.
	keywords map[string]map[string]bool
}

func (r *renumberer) clockLocked() uint32 {
	return r.base + r.tick
}

// report converts a UIDVALIDITY of imapmemserver's to the one the client
// sees. A mailbox not seen at its creation gets the clock's current value.
func (r *renumberer) report(real uint32) uint32 {
	if !r.opts.SharedUIDValidity {
		return real
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.uidv[real]
	if !ok {
		v = r.clockLocked()
		r.uidv[real] = v
	}
	return v
}

// createdLocked records a mailbox just created under the current tick.
func (r *renumberer) createdLocked(sess imapserver.Session, name string) error {
	r.names[name] = struct{}{}
	st, err := sess.Status(name, &imap.StatusOptions{UIDValidity: true})
	if err != nil {
		return err
	}
	r.uidv[st.UIDValidity] = r.clockLocked()
	return nil
}

// removedLocked forgets a mailbox that is gone. The clock ticks so that a
// mailbox created under the same name later reports another value.
func (r *renumberer) removedLocked(name string) {
	delete(r.names, name)
	if r.opts.SharedUIDValidity {
		r.tick++
	}
}

// renumberSession wraps one connection's imapmemserver session.
type renumberSession struct {
	imapserver.SessionIMAP4rev2
	r *renumberer
	// selected is the mailbox selected, for MaxKeywords.
	selected string
}

// imapmemserver keeps names with the delimiter trimmed off their end.
func trimDelim(name string) string {
	return strings.TrimRight(name, "/")
}

func (s *renumberSession) Create(name string, options *imap.CreateOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if err := s.SessionIMAP4rev2.Create(name, options); err != nil {
		return err
	}
	return s.r.createdLocked(s.SessionIMAP4rev2, trimDelim(name))
}

func (s *renumberSession) Delete(name string) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if err := s.SessionIMAP4rev2.Delete(name); err != nil {
		return err
	}
	s.r.removedLocked(name)
	return nil
}

func (s *renumberSession) Rename(from, to string, options *imap.RenameOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.opts.RenameRenumbers {
		return s.r.renumberLocked(from, trimDelim(to))
	}
	if err := s.SessionIMAP4rev2.Rename(from, to, options); err != nil {
		return err
	}
	// The mailbox keeps its UIDVALIDITY; the old name's tick ends.
	s.r.removedLocked(from)
	s.r.names[trimDelim(to)] = struct{}{}
	return nil
}

// renumberLocked renames from, and the mailboxes below it, to to by
// copying: see MemoryOptions.RenameRenumbers. It works on a session of its
// own, so the caller's selected mailbox stays selected.
func (r *renumberer) renumberLocked(from, to string) error {
	if _, ok := r.names[from]; !ok {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}
	}
	type move struct{ from, to string }
	moves := []move{{from, to}}
	if from != "INBOX" {
		var below []string
		for n := range r.names {
			if strings.HasPrefix(n, from+"/") {
				below = append(below, n)
			}
		}
		slices.Sort(below) // parents before children
		for _, n := range below {
			moves = append(moves, move{n, to + n[len(from):]})
		}
	}
	for _, m := range moves {
		if _, ok := r.names[m.to]; ok {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists: " + m.to}
		}
	}

	sess := imapmemserver.NewUserSession(r.user)
	defer sess.Close()
	if r.opts.SharedUIDValidity {
		// The new mailboxes are made after every one that exists now.
		r.tick++
	}
	for _, m := range moves {
		if err := sess.Create(m.to, nil); err != nil {
			return err
		}
		if err := r.createdLocked(sess, m.to); err != nil {
			return err
		}
		sel, err := sess.Select(m.from, nil)
		if err != nil {
			return err
		}
		if sel.NumMessages > 0 {
			// COPY keeps flags and INTERNALDATE and takes the messages in
			// UID order; the new mailbox numbers them from 1.
			if _, err := sess.Copy(imap.UIDSet{{Start: 1, Stop: 0}}, m.to); err != nil {
				return err
			}
		}
		if err := sess.Unselect(); err != nil {
			return err
		}
	}
	if from == "INBOX" {
		return emptyInbox(sess)
	}
	for _, m := range moves {
		if err := sess.Delete(m.from); err != nil {
			return err
		}
		delete(r.names, m.from)
	}
	return nil
}

// emptyInbox expunges every message of INBOX. Other sessions with INBOX
// selected see them flagged \Deleted, then expunged.
func emptyInbox(sess *imapmemserver.UserSession) error {
	if _, err := sess.Select("INBOX", nil); err != nil {
		return err
	}
	all := imap.UIDSet{{Start: 1, Stop: 0}}
	// Silent STORE and Expunge write nothing to their writers:
	// imapmemserver queues the updates for the sessions' next poll.
	if err := sess.Store(nil, all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, &imap.StoreOptions{}); err != nil {
		return err
	}
	if err := sess.Expunge(&imapserver.ExpungeWriter{}, nil); err != nil {
		return err
	}
	return sess.Unselect()
}

func (s *renumberSession) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	data, err := s.SessionIMAP4rev2.Select(name, options)
	if err == nil {
		data.UIDValidity = s.r.report(data.UIDValidity)
		s.selected = name
	}
	return data, err
}

func (s *renumberSession) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	data, err := s.SessionIMAP4rev2.Status(name, options)
	if err == nil && options.UIDValidity {
		data.UIDValidity = s.r.report(data.UIDValidity)
	}
	return data, err
}

func (s *renumberSession) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	// imapmemserver writes LIST-STATUS through w, out of reach of
	// report.
	if s.r.opts.SharedUIDValidity && options.ReturnStatus != nil && options.ReturnStatus.UIDValidity {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "LIST-STATUS is not advertised"}
	}
	return s.SessionIMAP4rev2.List(w, ref, patterns, options)
}

func (s *renumberSession) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	options = s.r.appendOptions(name, options)
	data, err := s.SessionIMAP4rev2.Append(name, r, options)
	if err == nil {
		data.UIDValidity = s.r.report(data.UIDValidity)
	}
	return data, err
}

func (s *renumberSession) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	data, err := s.SessionIMAP4rev2.Copy(numSet, dest)
	if err == nil {
		data.UIDValidity = s.r.report(data.UIDValidity)
	}
	return data, err
}

// Move is imapmemserver's MOVE with COPYUID's UIDVALIDITY reported.
// imapmemserver writes COPYUID straight to w, so the move is done here
// as COPY, silent STORE \Deleted and UID EXPUNGE of the moved messages;
// the EXPUNGE responses reach the client from the poll that follows every
// command, before the tagged OK, as RFC 6851 §3.3 has them.
func (s *renumberSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if !s.r.opts.SharedUIDValidity {
		return s.SessionIMAP4rev2.Move(w, numSet, dest)
	}
	data, err := s.SessionIMAP4rev2.Copy(numSet, dest)
	if err != nil {
		return err
	}
	if len(data.SourceUIDs) == 0 {
		return nil
	}
	moved := data.SourceUIDs
	// A silent STORE writes nothing to its writer, and imapmemserver
	// does not echo it to the session that made it.
	if err := s.SessionIMAP4rev2.Store(nil, moved, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, &imap.StoreOptions{}); err != nil {
		return err
	}
	data.UIDValidity = s.r.report(data.UIDValidity)
	if err := w.WriteCopyData(data); err != nil {
		return err
	}
	return s.SessionIMAP4rev2.Expunge(&imapserver.ExpungeWriter{}, &moved)
}
