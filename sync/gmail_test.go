package sync_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/satchel-mail/satchel/maildir"
	satsync "github.com/satchel-mail/satchel/sync"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/synctest"
	"github.com/satchel-mail/satchel/sync/verify"
)

// gmailBody is a message whose subject names it.
func gmailBody(name string) []byte {
	return []byte(fmt.Sprintf("From: a@example.org\r\nTo: b@example.org\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\nDate: Mon, 2 Dec 2024 10:00:00 +0000\r\n\r\nThis is %s.\r\n", name, name, name))
}

// gmailFiles maps each message's subject to the paths of its files,
// in every folder below root.
func gmailFiles(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if sub := filepath.Base(filepath.Dir(path)); sub != "cur" && sub != "new" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		m := regexp.MustCompile(`(?m)^Subject: (.*)$`).FindSubmatch(data)
		if m == nil {
			t.Fatalf("%s has no subject", path)
		}
		out[string(m[1])] = append(out[string(m[1])], path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// oneFile reports whether all paths are one file (hard links).
func oneFile(t *testing.T, paths []string) bool {
	t.Helper()
	first, err := os.Stat(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths[1:] {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(first, fi) {
			return false
		}
	}
	return true
}

func gmailTotals(res satsync.Result) (down, linked int) {
	for _, m := range res.Mailboxes {
		down += m.Downloaded
		linked += m.Linked
	}
	return
}

// bodiesFetched counts the message bodies the server sent in the run
// traced in trace.
func bodiesFetched(trace string) int {
	return len(regexp.MustCompile(`(?m)^S: \* \d+ FETCH \(.*BODY\[\] [{~]`).FindAllString(trace, -1))
}

func TestGmailFolderModeDownloadsEachMessageOnce(t *testing.T) {
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{})
	labels := map[string][]string{
		"three":    {`\Inbox`, "Work", "Travel"},
		"inbox":    {`\Inbox`},
		"work":     {"Work"},
		"archived": nil,
		"nested":   {"Projects/Alpha", `\Inbox`},
		"umlaut":   {"Entwürfe", "Work"},
		"starred":  {`\Inbox`, `\Starred`},
	}
	ids := map[string]uint64{}
	copies := 0
	for name, ls := range labels {
		ids[name] = srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody(name), Labels: ls})
		copies += srv.GmailCopies(ids[name])
	}
	e := newEnv(t, srv)

	res := e.mustSync()
	down, linked := gmailTotals(res)
	if down != len(labels) || linked != copies-len(labels) {
		t.Fatalf("first sync: %d downloaded, %d linked; want %d and %d", down, linked, len(labels), copies-len(labels))
	}
	if n := bodiesFetched(e.trace.String()); n != len(labels) {
		t.Fatalf("the server sent %d bodies, want %d", n, len(labels))
	}
	e.assertMirror(true)
	files := gmailFiles(t, e.root)
	for name, id := range ids {
		if len(files[name]) != srv.GmailCopies(id) || !oneFile(t, files[name]) {
			t.Fatalf("%s: %d files %v, one file: %v; want %d names of one file", name, len(files[name]), files[name], oneFile(t, files[name]), srv.GmailCopies(id))
		}
	}

	// A label added in the web interface: the new mailbox's copy is
	// linked to the file the Maildir has.
	srv.GmailRelabel(ids["inbox"], []string{"Work"}, nil)
	res = e.mustSync()
	if down, linked := gmailTotals(res); down != 0 || linked != 1 {
		t.Fatalf("after a label was added: %d downloaded, %d linked; want 0 and 1", down, linked)
	}
	e.assertMirror(false)
	files = gmailFiles(t, e.root)
	if len(files["inbox"]) != 3 || !oneFile(t, files["inbox"]) {
		t.Fatalf("after a label was added: %v", files["inbox"])
	}

	// A label removed: that folder's name goes, the others keep the file.
	srv.GmailRelabel(ids["three"], nil, []string{"Work"})
	e.mustSync()
	e.assertMirror(false)
	files = gmailFiles(t, e.root)
	if len(files["three"]) != 3 || !oneFile(t, files["three"]) {
		t.Fatalf("after a label was removed: %v", files["three"])
	}
	for _, p := range files["three"] {
		if strings.Contains(p, string(filepath.Separator)+"Work"+string(filepath.Separator)) {
			t.Fatalf("the Work copy is still there: %s", p)
		}
	}

	// Deleted locally from INBOX: the message loses \Inbox on the server
	// and keeps its other labels, and its other files stay.
	for _, p := range files["three"] {
		if strings.Contains(p, string(filepath.Separator)+"INBOX"+string(filepath.Separator)) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.mustSync()
	got, ok := srv.GmailLabels(ids["three"])
	if !ok || slices.Contains(got, `\Inbox`) || !slices.Contains(got, "Travel") {
		t.Fatalf("after the INBOX file was removed, labels are %v (exists %v); want Travel without \\Inbox", got, ok)
	}
	files = gmailFiles(t, e.root)
	if len(files["three"]) != 2 {
		t.Fatalf("after the INBOX file was removed: %v", files["three"])
	}
	e.assertMirror(false)

	// A renumbered mailbox (new UIDVALIDITY) or a folder re-synced from
	// nothing downloads nothing either: the files are found by id.
	if err := os.RemoveAll(filepath.Join(e.root, "Travel")); err != nil {
		t.Fatal(err)
	}
	res = e.mustSync()
	if down, _ := gmailTotals(res); down != 0 {
		t.Fatalf("re-syncing a folder removed locally downloaded %d messages", down)
	}
}

// TestGmailLinksAcrossFileSystems puts one label's folder on another file
// system: its files are copies, each message is still downloaded once.
func TestGmailLinksAcrossFileSystems(t *testing.T) {
	other := os.Getenv("SATCHEL_OTHER_FS")
	if other == "" {
		other = "/dev/shm"
	}
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{})
	e := newEnv(t, srv)
	if err := os.MkdirAll(e.root, 0o700); err != nil {
		t.Fatal(err)
	}
	var here, there syscall.Stat_t
	if err := syscall.Stat(e.root, &here); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(other, &there); err != nil || here.Dev == there.Dev {
		if os.Getenv("SATCHEL_REQUIRE_OTHER_FS") != "" {
			t.Fatalf("no second file system at %s (SATCHEL_OTHER_FS)", other)
		}
		t.Skipf("no second file system at %s; set SATCHEL_OTHER_FS", other)
	}
	far, err := os.MkdirTemp(other, "satchel-gmail-")
	if err != nil {
		t.Skipf("cannot write on %s: %v", other, err)
	}
	t.Cleanup(func() { os.RemoveAll(far) })
	if err := os.Symlink(far, filepath.Join(e.root, "Work")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody(name), Labels: []string{`\Inbox`, "Work"}})
	}
	res := e.mustSync()
	if down, linked := gmailTotals(res); down != 3 || linked != 6 {
		t.Fatalf("%d downloaded, %d linked or copied; want 3 and 6", down, linked)
	}
	e.assertMirror(true)
	// The walk does not follow the symbolic link: Work's files are those
	// found under far.
	works := gmailFiles(t, far)
	for name, rest := range gmailFiles(t, e.root) {
		work := works[name]
		if len(work) != 1 || len(rest) != 2 || !oneFile(t, rest) || oneFile(t, append(rest, work...)) {
			t.Fatalf("%s: Work %v, others %v: want a copy in Work and one file elsewhere", name, work, rest)
		}
	}
}

// TestGmailFolderModeConcurrent: many messages in three mailboxes each,
// synced over several connections at once, the largest mailbox split
// between connections: still one download per message.
func TestGmailFolderModeConcurrent(t *testing.T) {
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{})
	const n = 600
	for i := range n {
		ls := []string{`\Inbox`, "Work"}
		if i%3 == 0 {
			ls = []string{"Work", "Later"}
		}
		srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody(fmt.Sprintf("m%d", i)), Labels: ls})
	}
	e := newEnv(t, srv)
	e.opts.Connections = 6
	res := e.mustSync()
	if down, linked := gmailTotals(res); down != n || linked != 2*n {
		t.Fatalf("%d downloaded, %d linked; want %d and %d", down, linked, n, 2*n)
	}
	if got := bodiesFetched(e.trace.String()); got != n {
		t.Fatalf("the server sent %d bodies, want %d", got, n)
	}
	for name, paths := range gmailFiles(t, e.root) {
		if len(paths) != 3 || !oneFile(t, paths) {
			t.Fatalf("%s: %v, want three names of one file", name, paths)
		}
	}
	e.assertMirror(true)
}

// TestGmailRenumberingDownloadsNothing: Gmail gives All Mail and a label
// mailbox new UIDVALIDITYs; every message keeps its file.
func TestGmailRenumberingDownloadsNothing(t *testing.T) {
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{})
	for i := range 20 {
		srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody(fmt.Sprintf("r%d", i)), Labels: []string{"Work"}})
	}
	e := newEnv(t, srv)
	e.mustSync()
	before := gmailFiles(t, e.root)
	srv.GmailRenumber("[Gmail]/All Mail")
	srv.GmailRenumber("Work")
	res := e.mustSync()
	if down, _ := gmailTotals(res); down != 0 {
		t.Fatalf("a renumbering downloaded %d messages", down)
	}
	e.assertMirror(false)
	after := gmailFiles(t, e.root)
	for name, paths := range before {
		if !slices.Equal(paths, after[name]) {
			t.Fatalf("%s: files %v became %v", name, paths, after[name])
		}
	}
}

// TestGmailRenumberingKeepsIDs: after a renumbering, the re-associated
// rows know their X-GM-MSGIDs again, so a label added later is linked.
func TestGmailRenumberingKeepsIDs(t *testing.T) {
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{})
	id := srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody("kept"), Labels: []string{`\Inbox`}})
	for i := range 6 {
		srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody(fmt.Sprintf("k%d", i)), Labels: []string{`\Inbox`}})
	}
	e := newEnv(t, srv)
	e.opts.Include = []string{"INBOX", "Work"}
	e.mustSync()
	srv.GmailRenumber("INBOX")
	if res := e.mustSync(); res.Mailboxes[0].Reassociated == 0 {
		t.Fatalf("INBOX was not re-associated: %+v", res.Mailboxes[0])
	}
	srv.GmailRelabel(id, []string{"Work"}, nil)
	res := e.mustSync()
	if down, linked := gmailTotals(res); down != 0 || linked != 1 {
		t.Fatalf("a label added after a renumbering: %d downloaded, %d linked; want 0 and 1", down, linked)
	}
}

// TestGmailDeepVerifyFetchesOnce: a deep verify of a Gmail account in
// folder mode fetches each message once and compares its other copies
// with that body; a copy whose file differs is still found.
func TestGmailDeepVerifyFetchesOnce(t *testing.T) {
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{})
	for i := range 5 {
		srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody(fmt.Sprintf("v%d", i)), Labels: []string{`\Inbox`, "Work"}})
	}
	e := newEnv(t, srv)
	e.mustSync()
	// One copy rewritten in place (a broken disk, a careless script):
	// a new file, not the others' link.
	files := gmailFiles(t, e.root)
	var broken string
	for _, p := range files["v3"] {
		if strings.Contains(p, string(filepath.Separator)+"Work"+string(filepath.Separator)) {
			broken = p
		}
	}
	data, err := os.ReadFile(broken)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, []byte(strings.Replace(string(data), "This is v3", "This is v4", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.trace.Reset()
	res := e.verify(true)
	var deep, shared int
	var diffs []string
	for _, m := range res.Mailboxes {
		deep += m.Deep
		shared += m.Shared
		for _, d := range m.Differences {
			diffs = append(diffs, m.Name+": "+string(d.Kind))
		}
	}
	if deep != 5 || shared != 10 {
		t.Fatalf("deep verify: %d contents fetched, %d compared against them; want 5 and 10", deep, shared)
	}
	if n := bodiesFetched(e.trace.String()); n != 5 {
		t.Fatalf("the server sent %d bodies, want 5", n)
	}
	if !slices.Equal(diffs, []string{"Work: content"}) {
		t.Fatalf("differences %v, want the rewritten copy in Work", diffs)
	}
}

// verify runs satchel verify's engine on the env (deep or not); the
// protocol trace is in e.trace.
func (e *env) verify(deep bool) verify.Result {
	e.t.Helper()
	root := maildir.Root{Dir: e.root, Layout: e.layout}
	ropts := imapremote.Options{
		Host: e.srv.Host, Port: e.srv.Port, TLS: imapremote.TLSNone,
		User: e.srv.User, Auth: imapremote.AuthPlain,
		Password: func(context.Context) (string, error) { return e.srv.Password, nil },
		Trace:    &e.trace,
	}
	return verify.Account(context.Background(), verify.Options{Account: "test", Include: e.opts.Include, Deep: deep}, verify.Deps{
		Connect:   func(ctx context.Context) (verify.Remote, error) { return imapremote.Dial(ctx, ropts) },
		Index:     e.ix,
		Folder:    func(rel string) verify.Folder { return synctest.VerifyFolder{Folder: root.Folder(rel)} },
		LocalPath: root.Path,
		Folders: func() ([]string, error) {
			fs, err := root.Folders()
			out := make([]string, len(fs))
			for i, f := range fs {
				out[i] = f.Rel
			}
			return out, err
		},
		Stored: func(w io.Writer) io.WriteCloser { return maildir.NewLFWriter(w) },
	})
}
