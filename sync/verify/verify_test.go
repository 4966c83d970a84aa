package verify_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/maildir"
	"github.com/satchel-mail/satchel/store"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
	"github.com/satchel-mail/satchel/sync/synctest"
	"github.com/satchel-mail/satchel/sync/verify"
)

// mirror is an account synced to the end: a Dovecot, a Maildir and an
// index that agree.
type mirror struct {
	t     *testing.T
	srv   *imaptest.Server
	root  maildir.Root
	ix    *store.Index
	trace synctest.Buffer
}

// mailboxes of every mirror, and how many corpus messages each gets.
var mirrorMailboxes = []struct {
	name string
	n    int
}{{"INBOX", 24}, {"Archive/2024", 12}, {"Друзья", 6}}

func newMirror(t *testing.T) *mirror {
	t.Helper()
	return newMirrorOn(t, imaptest.StartDovecot(t, imaptest.DovecotOptions{}))
}

// newMirrorOn fills srv with the mirror's mailboxes (named the server's
// way: srv.Name) and syncs it.
func newMirrorOn(t *testing.T, srv *imaptest.Server) *mirror {
	t.Helper()
	corpus := imaptest.Corpus(imaptest.CorpusOptions{Seed: 7, Messages: 42})
	for _, mb := range mirrorMailboxes {
		if mb.name != "INBOX" {
			srv.CreateMailbox(srv.Name(mb.name))
		}
		srv.AppendMany(srv.Name(mb.name), corpus[:mb.n])
		corpus = corpus[mb.n:]
	}
	dir := t.TempDir()
	ix, err := store.Open(context.Background(), filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	m := &mirror{t: t, srv: srv, root: maildir.Root{Dir: filepath.Join(dir, "Mail")}, ix: ix}
	res := satsync.Account(context.Background(), satsync.Options{Account: "test", Include: []string{"*"}}, satsync.Deps{
		Connect:   func(ctx context.Context) (satsync.Remote, error) { return imapremote.Dial(ctx, m.remoteOptions()) },
		Index:     ix,
		Folder:    func(rel string) satsync.Folder { return m.root.Folder(rel) },
		LocalPath: m.root.Path,
		MkdirAll:  m.root.MkdirAll,
		MoveFile:  m.root.MoveFile,
	})
	if res.Err != nil || res.Failed() > 0 {
		t.Fatalf("sync: %v %+v", res.Err, res.Mailboxes)
	}
	return m
}

func (m *mirror) remoteOptions() imapremote.Options {
	return synctest.RemoteOptions(m.srv, &m.trace)
}

// verify runs a verification; its protocol trace is in m.trace.
func (m *mirror) verify(ctx context.Context, opts verify.Options, progress verify.Progress) verify.Result {
	m.t.Helper()
	m.trace.Reset()
	opts.Account = "test"
	opts.Include = []string{"*"}
	return verify.Account(ctx, opts, verify.Deps{
		Connect:   func(ctx context.Context) (verify.Remote, error) { return imapremote.Dial(ctx, m.remoteOptions()) },
		Index:     m.ix,
		Folder:    func(rel string) verify.Folder { return synctest.VerifyFolder{Folder: m.root.Folder(rel)} },
		LocalPath: m.root.Path,
		Folders:   func() ([]string, error) { return folders(m.root.Dir) },
		Stored:    func(w io.Writer) io.WriteCloser { return maildir.NewLFWriter(w) },
		Progress:  progress,
	})
}

// folders lists the Maildir folders below root (directories with a cur/).
func folders(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if fi, err := os.Stat(filepath.Join(p, "cur")); err == nil && fi.IsDir() && p != root {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out, err
}

// row returns the index row of a mailbox's nth message (by UID order).
func (m *mirror) row(mailbox string, n int) (mail.Mailbox, mail.Message) {
	m.t.Helper()
	ctx := context.Background()
	mb, ok, err := m.ix.Mailbox(ctx, mailbox)
	if err != nil || !ok {
		m.t.Fatalf("mailbox %s: %v", mailbox, err)
	}
	rows, err := m.ix.Messages(ctx, mb.ID, mb.UIDValidity)
	if err != nil {
		m.t.Fatal(err)
	}
	uids := make([]mail.UID, 0, len(rows))
	for u := range rows {
		uids = append(uids, u)
	}
	slices.Sort(uids)
	return mb, rows[uids[n]]
}

// file returns the path of the file of a mailbox's nth message.
func (m *mirror) file(mailbox string, n int) (string, mail.Message) {
	m.t.Helper()
	mb, r := m.row(mailbox, n)
	e, ok, err := m.root.Folder(mb.LocalPath).Dir.Find(r.Key)
	if err != nil || !ok {
		m.t.Fatalf("file of UID %d: %v", r.UID, err)
	}
	return e.Path(m.root.Folder(mb.LocalPath).Dir), r
}

type found struct {
	mailbox string
	kind    verify.Kind
	uid     mail.UID
}

func differences(res verify.Result) []found {
	var out []found
	for _, d := range res.Differences {
		out = append(out, found{"", d.Kind, d.UID})
	}
	for _, mb := range res.Mailboxes {
		for _, d := range mb.Differences {
			out = append(out, found{mb.Name, d.Kind, d.UID})
		}
	}
	return out
}

func mustComplete(t *testing.T, res verify.Result) {
	t.Helper()
	if !res.Complete() {
		t.Fatalf("verification incomplete: %v", res.Err)
	}
	for _, mb := range res.Mailboxes {
		if mb.Err != nil {
			t.Fatalf("%s: %v", mb.Name, mb.Err)
		}
	}
}

// TestVerifyFindsDamage damages a clean mirror in one way at a time and
// checks that verify reports that damage and nothing else, with and
// without --deep.
// TestVerifyOtherServers: verify places mailboxes as a sync does on
// servers whose namespace has a prefix (hosting panels, Courier, Cyrus
// without altnamespace) or another delimiter: a fresh mirror has no
// difference, and a missing file is found in the right folder.
func TestVerifyOtherServers(t *testing.T) {
	for _, c := range []struct {
		name  string
		start func(t *testing.T) *imaptest.Server
	}{
		{"dovecot-hosting", func(t *testing.T) *imaptest.Server {
			return imaptest.StartDovecot(t, imaptest.DovecotOptions{Prefix: "INBOX.", Separator: "."})
		}},
		{"courier", func(t *testing.T) *imaptest.Server { return imaptest.StartCourier(t, imaptest.CourierOptions{}) }},
		{"cyrus-inbox", func(t *testing.T) *imaptest.Server { return imaptest.StartCyrus(t, imaptest.CyrusOptions{}) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMirrorOn(t, c.start(t))
			ctx := context.Background()
			if res := m.verify(ctx, verify.Options{}, nil); res.Err != nil || res.Count() != 0 || !res.Complete() {
				t.Fatalf("fresh mirror: %v, %d differences: %+v", res.Err, res.Count(), res)
			}
			if _, err := os.Stat(filepath.Join(m.root.Dir, "Archive", "2024", "cur")); err != nil {
				t.Fatalf("Archive/2024 is not where a sync puts it: %v", err)
			}
			p, r := m.file(m.srv.Name("Archive/2024"), 2)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			res := m.verify(ctx, verify.Options{}, nil)
			if res.Count() != 1 {
				t.Fatalf("%d differences, want the missing file: %+v", res.Count(), res)
			}
			for _, mr := range res.Mailboxes {
				for _, d := range mr.Differences {
					if mr.Name != m.srv.Name("Archive/2024") || d.UID != r.UID {
						t.Errorf("difference in %s at UID %d, want %s UID %d", mr.Name, d.UID, m.srv.Name("Archive/2024"), r.UID)
					}
				}
			}
		})
	}
}

func TestVerifyFindsDamage(t *testing.T) {
	cases := []struct {
		name string
		// damage breaks the mirror and returns the difference expected
		// from a plain and from a deep verification.
		damage func(t *testing.T, m *mirror) (plain, deep []found)
	}{
		{"clean", func(t *testing.T, m *mirror) ([]found, []found) { return nil, nil }},
		{"truncated local file", func(t *testing.T, m *mirror) ([]found, []found) {
			p, r := m.file("INBOX", 3)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			want := []found{{"INBOX", verify.Size, r.UID}}
			return want, want
		}},
		{"flipped byte", func(t *testing.T, m *mirror) ([]found, []found) {
			p, r := m.file("Archive/2024", 5)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			i := len(data) - 10
			data[i] ^= 0x01
			// The flip keeps the size and the line ends: only the content
			// can tell.
			if data[i] == '\n' || data[i] == '\r' || data[i]^0x01 == '\n' || data[i]^0x01 == '\r' {
				t.Fatalf("the flipped byte is a line end")
			}
			fi, _ := os.Stat(p)
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(p, fi.ModTime(), fi.ModTime())
			return nil, []found{{"Archive/2024", verify.Content, r.UID}}
		}},
		{"missing local file", func(t *testing.T, m *mirror) ([]found, []found) {
			p, r := m.file("Друзья", 2)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			want := []found{{"Друзья", verify.MissingLocal, r.UID}}
			return want, want
		}},
		{"message missing on the server", func(t *testing.T, m *mirror) ([]found, []found) {
			_, r := m.row("INBOX", 7)
			m.srv.Expunge("INBOX", uint32(r.UID))
			want := []found{{"INBOX", verify.MissingRemote, r.UID}}
			return want, want
		}},
		{"stray local file", func(t *testing.T, m *mirror) ([]found, []found) {
			mb, _ := m.row("INBOX", 0)
			p := filepath.Join(m.root.Dir, mb.LocalPath, "cur", maildir.NewKey()+":2,S")
			if err := os.WriteFile(p, []byte("Subject: stray\n\nnot from the server\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			want := []found{{"INBOX", verify.UnknownLocal, 0}}
			return want, want
		}},
		{"flag mismatch", func(t *testing.T, m *mirror) ([]found, []found) {
			_, r := m.row("Archive/2024", 1)
			if r.Flags.Has(mail.FlagFlagged) {
				m.srv.SetFlags("Archive/2024", uint32(r.UID), r.Flags.Minus(mail.NewFlags(mail.FlagFlagged)).List()...)
			} else {
				m.srv.AddFlags("Archive/2024", uint32(r.UID), mail.FlagFlagged)
			}
			want := []found{{"Archive/2024", verify.Flags, r.UID}}
			return want, want
		}},
		{"keyword mismatch", func(t *testing.T, m *mirror) ([]found, []found) {
			_, r := m.row("INBOX", 2)
			m.srv.AddFlags("INBOX", uint32(r.UID), "$verify9")
			want := []found{{"INBOX", verify.Keywords, r.UID}}
			return want, want
		}},
		{"new server message", func(t *testing.T, m *mirror) ([]found, []found) {
			uid := m.srv.Append("Друзья", []byte("Subject: late\r\n\r\narrived after the sync\r\n"), nil, time.Now())
			want := []found{{"Друзья", verify.UnknownRemote, mail.UID(uid)}}
			return want, want
		}},
		{"stray folder", func(t *testing.T, m *mirror) ([]found, []found) {
			d := maildir.Dir{Path: filepath.Join(m.root.Dir, "Elsewhere")}
			if err := d.Init(); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Deliver(context.Background(), strings.NewReader("Subject: x\r\n\r\ny\r\n"), mail.NewFlags(), time.Now()); err != nil {
				t.Fatal(err)
			}
			want := []found{{"", verify.UnknownFolder, 0}}
			return want, want
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newMirror(t)
			plain, deep := tc.damage(t, m)
			ctx := context.Background()
			res := m.verify(ctx, verify.Options{}, nil)
			mustComplete(t, res)
			if got := differences(res); !slices.Equal(got, plain) {
				t.Errorf("verify: got %v, want %v", got, plain)
			}
			var compared int
			for _, mb := range res.Mailboxes {
				compared += mb.Compared
			}
			if compared < 40 {
				t.Errorf("verify compared %d messages, want about 42", compared)
			}
			if strings.Contains(m.trace.String(), "BODY.PEEK[]") {
				t.Errorf("a plain verify fetched bodies")
			}
			res = m.verify(ctx, verify.Options{Deep: true}, nil)
			mustComplete(t, res)
			if got := differences(res); !slices.Equal(got, deep) {
				t.Errorf("verify --deep: got %v, want %v", got, deep)
			}
			checkReadOnly(t, m.trace.String())
		})
	}
}

// checkReadOnly fails on any command in a trace that could change the
// server.
func checkReadOnly(t *testing.T, trace string) {
	t.Helper()
	re := regexp.MustCompile(`(?i)^C: \S+ (?:UID )?(SELECT|STORE|EXPUNGE|APPEND|MOVE|COPY|CREATE|DELETE|RENAME|CLOSE)\b`)
	for line := range strings.Lines(trace) {
		if m := re.FindStringSubmatch(line); m != nil {
			t.Errorf("verify sent %s: %q", m[1], strings.TrimSpace(line))
		}
	}
	if !strings.Contains(trace, "EXAMINE") {
		t.Errorf("verify examined no mailbox")
	}
}

// cancelAfter is a Progress that ends the run after n records.
type cancelAfter struct {
	*verify.ProgressFile
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Record(e verify.Entry) error {
	if err := c.ProgressFile.Record(e); err != nil {
		return err
	}
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return nil
}

// TestVerifyDeepResumes interrupts a deep verification and runs it again:
// the second run fetches exactly the messages the first did not verify.
func TestVerifyDeepResumes(t *testing.T) {
	m := newMirror(t)
	path := filepath.Join(t.TempDir(), "verify-progress")
	p, err := verify.OpenProgress(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const first, all = 30, 42 // the first run ends in its second mailbox
	res := m.verify(ctx, verify.Options{Deep: true}, &cancelAfter{ProgressFile: p, n: first, cancel: cancel})
	if res.Complete() {
		t.Fatal("the interrupted run says it completed")
	}
	p.Close()
	done := recorded(t, path)
	if len(done) != first {
		t.Fatalf("the progress file holds %d messages, want %d", len(done), first)
	}

	p, err = verify.OpenProgress(path)
	if err != nil {
		t.Fatal(err)
	}
	res = m.verify(context.Background(), verify.Options{Deep: true}, p)
	mustComplete(t, res)
	if res.Count() != 0 {
		t.Fatalf("differences on a clean mirror: %v", differences(res))
	}
	resumed, deep := 0, 0
	for _, mb := range res.Mailboxes {
		resumed += mb.Resumed
		deep += mb.Deep
	}
	if resumed != first || deep != all-first {
		t.Errorf("second run: %d resumed, %d compared; want %d and %d", resumed, deep, first, all-first)
	}
	seen := map[msgRef]int{}
	for mbName, uids := range fetchedByMailbox(t, m.trace.String()) {
		for _, u := range uids {
			ref := msgRef{mbName, u}
			seen[ref]++
			if done[ref] {
				t.Errorf("%s UID %d: verified by the first run, fetched again", mbName, u)
			}
		}
	}
	for _, mb := range mirrorMailboxes {
		for i := 0; i < mb.n; i++ {
			_, r := m.row(mb.name, i)
			ref := msgRef{mb.name, r.UID}
			if got := seen[ref]; !done[ref] && got != 1 {
				t.Errorf("%s UID %d: fetched %d times by the second run, want once", mb.name, r.UID, got)
			}
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the progress file is still there after a complete run: %v", err)
	}
}

type msgRef struct {
	mailbox string
	uid     mail.UID
}

// recorded reads a progress file as the messages it names.
func recorded(t *testing.T, path string) map[msgRef]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[msgRef]bool{}
	for line := range strings.Lines(string(data)) {
		var e verify.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("progress line %q: %v", line, err)
		}
		out[msgRef{e.Mailbox, e.UID}] = true
	}
	return out
}

// fetchedByMailbox lists, per mailbox, the UIDs of a trace's BODY.PEEK[]
// fetches, in order. The mailbox is the last one examined.
func fetchedByMailbox(t *testing.T, trace string) map[string][]mail.UID {
	t.Helper()
	examine := regexp.MustCompile(`^C: \S+ EXAMINE (.+?)(?: \(CONDSTORE\))?$`)
	fetch := regexp.MustCompile(`^C: \S+ UID FETCH (\S+) \(UID BODY\.PEEK\[\]\)`)
	out := map[string][]mail.UID{}
	current := ""
	for line := range strings.Lines(trace) {
		line = strings.TrimRight(line, "\r\n")
		if m := examine.FindStringSubmatch(line); m != nil {
			current = decodeName(t, m[1])
			continue
		}
		m := fetch.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, r := range strings.Split(m[1], ",") {
			lo, hi, _ := strings.Cut(r, ":")
			if hi == "" {
				hi = lo
			}
			a, err1 := strconv.ParseUint(lo, 10, 32)
			b, err2 := strconv.ParseUint(hi, 10, 32)
			if err1 != nil || err2 != nil {
				t.Fatalf("cannot read the UID set of %q", line)
			}
			for u := a; u <= b; u++ {
				out[current] = append(out[current], mail.UID(u))
			}
		}
	}
	return out
}

// decodeName reads a mailbox name as a trace shows it: quoted or not, in
// modified UTF-7 (only the names of mirrorMailboxes are known).
func decodeName(t *testing.T, s string) string {
	s = strings.Trim(s, `"`)
	if s == "Archive" {
		return s // created by Dovecot as the parent of Archive/2024
	}
	for _, mb := range mirrorMailboxes {
		if s == mb.name {
			return s
		}
	}
	if strings.HasPrefix(s, "&") {
		return "Друзья"
	}
	t.Fatalf("unknown mailbox %q in the trace", s)
	return ""
}
