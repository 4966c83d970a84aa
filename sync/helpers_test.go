package sync_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// serverModes are the servers every scenario runs against: Dovecot as
// installed, Dovecot without QRESYNC, Dovecot as a bare IMAP4rev1 server,
// and go-imap's in-memory server (no CONDSTORE, real LOGIN).
var serverModes = []struct {
	name  string
	start func(t *testing.T) *imaptest.Server
}{
	{"dovecot", func(t *testing.T) *imaptest.Server { return imaptest.StartDovecot(t, imaptest.DovecotOptions{}) }},
	{"dovecot-condstore", func(t *testing.T) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: imaptest.CapsCondStoreOnly})
	}},
	{"dovecot-plain", func(t *testing.T) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{Capabilities: imaptest.CapsPlain})
	}},
	{"memory", func(t *testing.T) *imaptest.Server { return imaptest.StartMemory(t) }},
}

// otherServers are the servers that differ from Dovecot's defaults in
// what matters to whole mailboxes: namespaces, delimiters, UIDVALIDITY
// across RENAME and between mailboxes. Stories about folders run against
// these as well as serverModes. Cyrus and Courier skip where they are not
// installed (see .ci/install-cyrus and .ci/install-courier), unless
// SATCHEL_REQUIRE_CYRUS or SATCHEL_REQUIRE_COURIER is 1.
var otherServers = []struct {
	name  string
	start func(t *testing.T) *imaptest.Server
}{
	// A hosting panel's Dovecot: ("INBOX." ".").
	{"dovecot-hosting", func(t *testing.T) *imaptest.Server {
		return imaptest.StartDovecot(t, imaptest.DovecotOptions{Prefix: "INBOX.", Separator: "."})
	}},
	// RENAME renumbers; mailboxes made together share UIDVALIDITY.
	{"memory-renumbering", func(t *testing.T) *imaptest.Server {
		return imaptest.StartMemoryWith(t, imaptest.MemoryOptions{RenameRenumbers: true, SharedUIDValidity: true})
	}},
	// Cyrus with ("" "/"), and with ("INBOX." ".") beside a shared "".
	{"cyrus", func(t *testing.T) *imaptest.Server {
		return imaptest.StartCyrus(t, imaptest.CyrusOptions{AltNamespace: true})
	}},
	{"cyrus-inbox", func(t *testing.T) *imaptest.Server {
		return imaptest.StartCyrus(t, imaptest.CyrusOptions{AltNamespace: false})
	}},
	// Courier: ("INBOX." "."), no CONDSTORE, RENAME renumbers.
	{"courier", func(t *testing.T) *imaptest.Server { return imaptest.StartCourier(t, imaptest.CourierOptions{}) }},
}

// env is one account under test: a server, a Maildir, an index.
type env struct {
	t     *testing.T
	srv   *imaptest.Server
	root  string
	ix    *store.Index
	trace lockedBuffer
	wrap  func(satsync.Remote) satsync.Remote
	// index, when set, stands between the engine and e.ix.
	index  func(satsync.Index) satsync.Index
	folder func(rel string) satsync.Folder
	opts   satsync.Options
	// layout places the folders; nil is maildir.Verbatim.
	layout maildir.Layout
	// mirrored, when set, are the only server mailboxes assertMirror
	// compares (Gmail's label mode syncs three).
	mirrored []string
	// passwords counts the calls of the password function: one per login.
	passwords atomic.Int32
	// clock, when set, is the connections' clock (imapremote.Options.Now).
	clock func() time.Time
	// noWatch: the run watches no folder (as where inotify is missing).
	noWatch bool
}

// watcher gives the engine the root's folder watcher, as satchel does.
func (e *env) watcher(root maildir.Root) func() (satsync.Watcher, error) {
	if e.noWatch {
		return nil
	}
	return func() (satsync.Watcher, error) {
		w, err := root.NewWatcher()
		if err != nil {
			return nil, err
		}
		return w, nil
	}
}

type lockedBuffer struct {
	mu gosync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

func newEnv(t *testing.T, srv *imaptest.Server) *env {
	t.Helper()
	dir := t.TempDir()
	ix, err := store.Open(context.Background(), filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return &env{t: t, srv: srv, root: filepath.Join(dir, "Mail"), ix: ix,
		opts: satsync.Options{Account: "test", Include: []string{"*"}}}
}

// sync runs one sync and returns its result; the protocol trace of that
// run is in e.trace.
func (e *env) sync() satsync.Result {
	e.t.Helper()
	e.trace.Reset()
	return satsync.Account(context.Background(), e.opts, e.deps())
}

func (e *env) engineIndex() satsync.Index {
	if e.index != nil {
		return e.index(e.ix)
	}
	return e.ix
}

// deps wires the env's server (through e.wrap), Maildir and index as
// cmd/satchel does, tracing the protocol into e.trace.
func (e *env) deps() satsync.Deps {
	root := maildir.Root{Dir: e.root, Layout: e.layout}
	ropts := imapremote.Options{
		Host: e.srv.Host, Port: e.srv.Port, TLS: imapremote.TLSNone,
		User: e.srv.User, Auth: imapremote.AuthPlain,
		Password: func(context.Context) (string, error) {
			e.passwords.Add(1)
			return e.srv.Password, nil
		},
		Trace: &e.trace,
		Now:   e.clock,
	}
	folder := e.folder
	if folder == nil {
		folder = func(rel string) satsync.Folder { return root.Folder(rel) }
	}
	return satsync.Deps{
		Connect: func(ctx context.Context) (satsync.Remote, error) {
			c, err := imapremote.Dial(ctx, ropts)
			if err != nil {
				return nil, err
			}
			if e.wrap != nil {
				return e.wrap(c), nil
			}
			return c, nil
		},
		Index:        e.engineIndex(),
		Folder:       folder,
		LocalPath:    root.Path,
		MkdirAll:     root.MkdirAll,
		MoveFile:     root.MoveFile,
		RenameFolder: root.RenameFolder,
		RemoveFolder: root.RemoveFolder,
		Watcher:      e.watcher(root),
		LocalFolders: func() ([]satsync.LocalFolder, error) {
			fs, err := root.Folders()
			out := make([]satsync.LocalFolder, len(fs))
			for i, f := range fs {
				out[i] = satsync.LocalFolder{Rel: f.Rel, Levels: f.Levels}
			}
			return out, err
		},
	}
}

// mustSync runs a sync that must succeed in every mailbox.
func (e *env) mustSync() satsync.Result {
	e.t.Helper()
	res := e.sync()
	if res.Err != nil {
		e.t.Fatalf("sync: %v", res.Err)
	}
	for _, m := range res.Mailboxes {
		if m.Err != nil {
			e.t.Fatalf("sync %s: %v", m.Name, m.Err)
		}
	}
	return res
}

func totals(res satsync.Result) (down, flags, removed int) {
	for _, m := range res.Mailboxes {
		down += m.Downloaded
		flags += m.FlagsChanged
		removed += m.Removed
	}
	return
}

// withOthers is modes followed by every server of otherServers, for the
// stories whose outcome can depend on namespaces, delimiters, CONDSTORE
// or what a server keeps across DELETE and RENAME.
func withOthers(modes []serverMode) []serverMode {
	return append(slices.Clip(modes), otherServers...)
}

// otherServer returns the server of otherServers called name.
func otherServer(name string) serverMode {
	for _, o := range otherServers {
		if o.name == name {
			return o
		}
	}
	panic("no " + name + " among otherServers")
}

// pathOf is the folder path ("Archive/2024") of the mailbox the server
// calls name ("INBOX.Archive.2024"): Server.Name the other way round.
func (e *env) pathOf(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if p := e.srv.Prefix; p != "" && len(name) > len(p) && strings.EqualFold(name[:len(p)], p) {
		name = name[len(p):]
	}
	return strings.ReplaceAll(name, string(e.srv.Delim), "/")
}

func (e *env) dir(mailbox string) maildir.Dir {
	levels := strings.Split(mailbox, "/")
	rel, err := maildir.EncodeName(levels)
	if err != nil {
		e.t.Fatal(err)
	}
	return maildir.Dir{Path: filepath.Join(e.root, filepath.FromSlash(rel))}
}

// assertMirror checks that the Maildir holds exactly the server's
// messages, mailbox by mailbox: for every UID an index row whose file has
// the server's body (CRLF read as LF), the server's system flags, in new/
// exactly when unseen, with the INTERNALDATE as mtime; and no other file.
func (e *env) assertMirror(fresh bool) {
	e.t.Helper()
	ctx := context.Background()
	for _, name := range e.srv.Mailboxes() {
		if e.mirrored != nil && !slices.Contains(e.mirrored, name) {
			continue
		}
		d := e.dir(e.pathOf(name))
		local, err := d.Scan()
		if err != nil {
			e.t.Fatalf("%s: scan: %v", name, err)
		}
		mb, ok, err := e.ix.Mailbox(ctx, name)
		if err != nil || !ok {
			e.t.Fatalf("%s: not in the index (%v)", name, err)
		}
		rows, err := e.ix.Messages(ctx, mb.ID, mail.UIDValidity(e.srv.UIDValidity(name)))
		if err != nil {
			e.t.Fatal(err)
		}
		msgs := e.srv.Messages(name)
		if len(local) != len(msgs) || len(rows) != len(msgs) {
			e.t.Fatalf("%s: server has %d messages, Maildir %d files, index %d rows", name, len(msgs), len(local), len(rows))
		}
		for _, m := range msgs {
			row, ok := rows[mail.UID(m.UID)]
			if !ok {
				e.t.Fatalf("%s: UID %d not in the index", name, m.UID)
			}
			ent, ok := local[row.Key]
			if !ok {
				e.t.Fatalf("%s: UID %d: no file for key %s", name, m.UID, row.Key)
			}
			want := mail.NewFlags(m.Flags...)
			if got := ent.Flags; !got.Equal(want.System()) {
				e.t.Errorf("%s: UID %d: file flags %q, server %q", name, m.UID, got, want)
			}
			if !row.Flags.Equal(want) {
				e.t.Errorf("%s: UID %d: index flags %q, server %q", name, m.UID, row.Flags, want)
			}
			// Seen mail is in cur/; unseen mail arrives in new/ (where
			// mutt announces it) and stays in cur/ if it was there.
			if want.Has(mail.FlagSeen) && ent.Subdir != "cur" || fresh && !want.Has(mail.FlagSeen) && ent.Subdir != "new" {
				e.t.Errorf("%s: UID %d (flags %q) is in %s/", name, m.UID, want, ent.Subdir)
			}
			path := ent.Path(d)
			body, err := os.ReadFile(path)
			if err != nil {
				e.t.Fatal(err)
			}
			if wantBody := bytes.ReplaceAll(m.Body, []byte("\r\n"), []byte("\n")); !bytes.Equal(body, wantBody) {
				e.t.Errorf("%s: UID %d: local file differs from the server's BODY[] (%d vs %d bytes)", name, m.UID, len(body), len(wantBody))
			}
			fi, err := os.Stat(path)
			if err != nil {
				e.t.Fatal(err)
			}
			if !fi.ModTime().Equal(m.Date) {
				e.t.Errorf("%s: UID %d: mtime %v, INTERNALDATE %v", name, m.UID, fi.ModTime(), m.Date)
			}
			if fi.Mode().Perm() != 0o600 {
				e.t.Errorf("%s: UID %d: mode %v, want 0600", name, m.UID, fi.Mode().Perm())
			}
		}
	}
}

// snapshot lists every file below the Maildir root with its size and
// mtime: two equal snapshots mean nothing was written.
func (e *env) snapshot() string {
	e.t.Helper()
	var lines []string
	err := filepath.Walk(e.root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		lines = append(lines, p+" "+fi.Mode().String()+" "+fi.ModTime().Format(time.RFC3339Nano)+" "+strconv.FormatInt(fi.Size(), 10))
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
