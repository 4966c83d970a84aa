package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/store"
	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/synctest"
)

// runTerminalCLI runs the command line as runCLI does, with stderr taken
// for a terminal.
func runTerminalCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb synctest.Buffer
	g := &globals{stdout: &out, stderr: &errb, terminal: true}
	code := runWith(context.Background(), append([]string{"satchel"}, args...), g)
	return code, out.String(), errb.String()
}

// serverWithMail starts the in-memory server with three messages in INBOX
// and two in Archive, and a configuration for it.
func serverWithMail(t *testing.T) (*imaptest.Server, account) {
	t.Helper()
	srv := imaptest.StartMemory(t)
	srv.CreateMailbox("Archive")
	for i := range 3 {
		srv.Append("INBOX", testMsg(fmt.Sprint("inbox ", i)), nil, testDate)
	}
	for i := range 2 {
		srv.Append("Archive", testMsg(fmt.Sprint("archive ", i)), []string{`\Seen`}, testDate)
	}
	return srv, writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
}

// writeLocalMessage puts a new message into a local folder, as a mail
// reader saving a draft would.
func writeLocalMessage(t *testing.T, a account, folder, subject string) {
	t.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(a.maildir, folder, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(a.maildir, folder, "cur", "draft-"+strings.ReplaceAll(subject, " ", "-")+":2,DS")
	body := strings.ReplaceAll(string(testMsg(subject)), "\r\n", "\n")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSilentWithoutTerminal: from cron (no terminal) a sync that did work
// prints nothing at all; a failure is one line on stderr.
func TestSilentWithoutTerminal(t *testing.T) {
	srv, a := serverWithMail(t)
	code, out, errs := runCLI(t, "--config", a.config, "sync")
	if code != exitOK || out != "" || errs != "" {
		t.Fatalf("sync without a terminal: exit %d, stdout %q, stderr %q; want 0 and no output", code, out, errs)
	}
	if n := len(localFiles(t, a, "INBOX")); n != 3 {
		t.Fatalf("INBOX has %d local files, want 3: the sync did not do its work", n)
	}
	writeLocalMessage(t, a, "INBOX", "draft one")
	srv.Append("Archive", testMsg("archive new"), nil, testDate)
	code, out, errs = runCLI(t, "--config", a.config, "sync")
	if code != exitOK || out != "" || errs != "" {
		t.Fatalf("second sync: exit %d, stdout %q, stderr %q; want 0 and no output", code, out, errs)
	}
	if n := len(srv.Messages("INBOX")); n != 4 {
		t.Fatalf("the server has %d messages in INBOX, want 4 (the draft uploaded)", n)
	}

	// A failure still speaks, on stderr only.
	bad := writeConfig(t, srv.Host, srv.Port, srv.User, "not-"+srv.Password, "")
	code, out, errs = runCLI(t, "--config", bad.config, "sync")
	if code != exitFailure || out != "" {
		t.Fatalf("failed sync: exit %d, stdout %q; want 1 and nothing on stdout", code, out)
	}
	if line := oneLine(t, errs); !strings.Contains(line, "authentication failed") {
		t.Fatalf("failed sync: stderr %q", errs)
	}
}

// TestTerminalProgressAndSummary: on a terminal a sync draws a bar per
// mailbox that transfers mail and ends with the account's summary line;
// -q, --json and --dry-run draw none.
func TestTerminalProgressAndSummary(t *testing.T) {
	srv, a := serverWithMail(t)
	code, out, errs := runTerminalCLI(t, "--config", a.config, "sync")
	if code != exitOK {
		t.Fatalf("sync: exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{"personal INBOX", "3/3 msgs", "personal Archive", "2/2 msgs"} {
		if !strings.Contains(errs, want) {
			t.Errorf("the progress display lacks %q:\n%q", want, errs)
		}
	}
	if !strings.Contains(out, "personal: 2 mailboxes, 5 downloaded (") || !strings.Contains(out, ", 0 uploaded, 0 flag updates, 0 removed locally, 0 deleted on the server, 0 moved, 0 conflicts in ") {
		t.Errorf("summary %q", out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("want one summary line, got %q", out)
	}

	// An upload, a flag change and a deletion.
	writeLocalMessage(t, a, "INBOX", "draft one")
	srv.AddFlags("Archive", srv.Messages("Archive")[0].UID, `\Flagged`)
	if err := os.Remove(fileOf(t, a, "INBOX", "inbox 0")); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runTerminalCLI(t, "--config", a.config, "sync")
	if code != exitOK {
		t.Fatalf("second sync: exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(errs, "1/1 msgs") {
		t.Errorf("the upload's progress is not shown:\n%q", errs)
	}
	if !strings.Contains(out, "0 downloaded (0 B), 1 uploaded, 1 flag updates, 0 removed locally, 1 deleted on the server") {
		t.Errorf("summary %q", out)
	}

	srv.Append("INBOX", testMsg("one more"), nil, testDate)
	for _, args := range [][]string{{"-q", "sync"}, {"--json", "sync", "--dry-run"}, {"sync", "--dry-run"}} {
		code, _, errs = runTerminalCLI(t, append([]string{"--config", a.config}, args...)...)
		if code != exitOK || errs != "" {
			t.Errorf("%v on a terminal: exit %d, stderr %q; want 0 and no progress", args, code, errs)
		}
	}
	code, out, errs = runTerminalCLI(t, "--config", a.config, "-q", "sync")
	if code != exitOK || out != "" || errs != "" {
		t.Errorf("-q on a terminal: exit %d, stdout %q, stderr %q; want silence", code, out, errs)
	}

	// -v prints the summary without a terminal, and logs.
	srv.Append("INBOX", testMsg("and another"), nil, testDate)
	code, out, errs = runCLI(t, "--config", a.config, "-v", "sync")
	if code != exitOK || !strings.Contains(out, "personal: 2 mailboxes, 1 downloaded") || !strings.Contains(errs, "downloaded") {
		t.Errorf("-v: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// TestProgressBars drives the display as the engine does, for two
// mailboxes at once, and checks what it draws.
func TestProgressBars(t *testing.T) {
	var out synctest.Buffer
	logs := &switchWriter{w: &out}
	logTarget := func() any {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return logs.w
	}
	pb := newProgressBars("personal", &out, logs)
	pb.Plan("INBOX", 2, 3000)
	pb.Plan("Lists", 3, 100)
	pb.Advance("INBOX", 1, 1000)
	pb.Advance("Lists", 1, 40)
	if logTarget() == any(&out) {
		t.Fatal("log output is not routed above the bars while they show")
	}
	pb.Advance("INBOX", 1, 2000) // INBOX done: its bar goes
	pb.Plan("INBOX", 1, 0)       // then an upload: a new bar
	pb.Advance("INBOX", 1, 512)
	// Lists fails halfway: finish takes its bar away without waiting.
	done := make(chan struct{})
	go func() { pb.finish(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("finish waits for a transfer that will never complete")
	}
	if logTarget() != any(&out) {
		t.Error("log output is not given back to stderr")
	}
	got := out.String()
	for _, want := range []string{"personal INBOX", "2/2 msgs", "2.9 KiB/2.9 KiB", "1/1 msgs", "512 B", "personal Lists"} {
		if !strings.Contains(got, want) {
			t.Errorf("display lacks %q:\n%q", want, got)
		}
	}
	// Without a single bar, nothing is drawn.
	var quiet synctest.Buffer
	newProgressBars("personal", &quiet, &switchWriter{w: &quiet}).finish()
	if quiet.String() != "" {
		t.Errorf("a run without transfers drew %q", quiet.String())
	}
}

// TestProgressText: counts, sizes, rate and time left, by bytes when
// the sizes are known and by messages when they are not.
func TestProgressText(t *testing.T) {
	start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name             string
		msgs, msgsDone   int64
		bytes, bytesDone int64
		elapsed          time.Duration
		want             string
	}{
		{"not started", 4, 0, 4096, 0, 0, "0/4 msgs  0 B/4.0 KiB"},
		{"by bytes", 4, 1, 4096, 1024, 2 * time.Second, "1/4 msgs  1.0 KiB/4.0 KiB  512 B/s  ETA 6s"},
		{"uploads: size unknown", 4, 1, 0, 2048, 2 * time.Second, "1/4 msgs  2.0 KiB  1.0 KiB/s  ETA 6s"},
		{"done", 2, 2, 2048, 2048, time.Second, "2/2 msgs  2.0 KiB/2.0 KiB  2.0 KiB/s"},
	}
	for _, tt := range tests {
		bp := &boxProgress{start: start}
		bp.msgs.Store(tt.msgs)
		bp.msgsDone.Store(tt.msgsDone)
		bp.bytes.Store(tt.bytes)
		bp.bytesDone.Store(tt.bytesDone)
		if got := bp.describe(start.Add(tt.elapsed)); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// The JSON documents as README.md ("JSON output") describes them, written
// out apart from the types that produce them: decoding with
// DisallowUnknownFields fails on any field the README does not describe,
// and TestJSONFieldsDocumented checks each is in the README.
type (
	docSync struct {
		DryRun   bool             `json:"dry_run"`
		Accounts []docSyncAccount `json:"accounts"`
	}
	docSyncAccount struct {
		Account   string           `json:"account"`
		Mode      string           `json:"mode"`
		Seconds   float64          `json:"seconds"`
		Error     string           `json:"error"`
		Mailboxes []docSyncMailbox `json:"mailboxes"`
	}
	docSyncMailbox struct {
		Name         string   `json:"name"`
		Local        string   `json:"local"`
		Mode         string   `json:"mode"`
		Unchanged    bool     `json:"unchanged"`
		Downloaded   int      `json:"downloaded"`
		Bytes        int64    `json:"bytes"`
		Uploaded     int      `json:"uploaded"`
		FlagsChanged int      `json:"flags_changed"`
		FlagsPushed  int      `json:"flags_pushed"`
		Removed      int      `json:"removed"`
		Deleted      int      `json:"deleted"`
		Moved        int      `json:"moved"`
		Deferred     int      `json:"deferred"`
		Conflicts    int      `json:"conflicts"`
		Reassociated int      `json:"reassociated"`
		Held         int      `json:"held"`
		Error        string   `json:"error"`
		Safety       string   `json:"safety"`
		Plan         *docPlan `json:"plan"`
	}
	docPlan struct {
		Download      int   `json:"download"`
		DownloadBytes int64 `json:"download_bytes"`
		Upload        int   `json:"upload"`
		LocalFlags    int   `json:"local_flags"`
		ServerFlags   int   `json:"server_flags"`
		RemoveLocal   int   `json:"remove_local"`
		DeleteServer  int   `json:"delete_server"`
		Move          int   `json:"move"`
	}
	docStatus struct {
		Accounts []struct {
			Account   string `json:"account"`
			Maildir   string `json:"maildir"`
			Index     string `json:"index"`
			Synced    bool   `json:"synced"`
			Mailboxes []struct {
				Name           string     `json:"name"`
				Local          string     `json:"local"`
				MessagesLocal  int        `json:"messages_local"`
				MessagesRemote int        `json:"messages_remote"`
				Skipped        int        `json:"skipped"`
				LastSync       *time.Time `json:"last_sync"`
				Mode           string     `json:"mode"`
			} `json:"mailboxes"`
		} `json:"accounts"`
	}
	// docVerify is verify's document as far as the JSON output section
	// describes it: the tag differences; the rest is described under
	// "Backups".
	docVerify struct {
		Accounts []struct {
			Account     string            `json:"account"`
			OK          bool              `json:"ok"`
			Complete    bool              `json:"complete"`
			Error       string            `json:"error"`
			Mailboxes   []json.RawMessage `json:"mailboxes"`
			Differences []json.RawMessage `json:"differences"`
			Tags        []struct {
				Mailbox      string   `json:"mailbox"`
				UID          uint32   `json:"uid"`
				ID           string   `json:"message_id"`
				OnlyTags     []string `json:"only_tags"`
				OnlyKeywords []string `json:"only_keywords"`
			} `json:"tags"`
			TagsError string `json:"tags_error"`
		} `json:"accounts"`
	}
	docCheck struct {
		Accounts []struct {
			Account      string   `json:"account"`
			Server       string   `json:"server"`
			Capabilities []string `json:"capabilities"`
			Mode         string   `json:"mode"`
			Note         string   `json:"note"`
			Error        string   `json:"error"`
			Namespaces   *struct {
				Personal, Other, Shared []struct {
					Prefix    string `json:"prefix"`
					Separator string `json:"separator"`
				}
			} `json:"namespaces"`
			Prefix      *string `json:"prefix"`
			Compression string  `json:"compression"`
		} `json:"accounts"`
	}
)

// decodeDoc decodes exactly one JSON document into v, refusing fields v
// does not have.
func decodeDoc(t *testing.T, what, data string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, data)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON document:\n%s", what, data)
	}
}

// TestJSONOutput: sync, sync --dry-run, status and check print one JSON
// document each, in the documented shape, with the run's numbers.
func TestJSONOutput(t *testing.T) {
	srv, a := serverWithMail(t)

	code, out, errs := runCLI(t, "--config", a.config, "--json", "sync", "--dry-run")
	if code != exitOK || errs != "" {
		t.Fatalf("sync --dry-run --json: exit %d, stderr %q", code, errs)
	}
	var plan docSync
	decodeDoc(t, "sync --dry-run --json", out, &plan)
	if !plan.DryRun || len(plan.Accounts) != 1 {
		t.Fatalf("dry run: %+v", plan)
	}
	for _, m := range plan.Accounts[0].Mailboxes {
		want := map[string]int{"INBOX": 3, "Archive": 2}[m.Name]
		if m.Plan == nil || m.Plan.Download != want || m.Plan.DownloadBytes == 0 || m.Downloaded != 0 {
			t.Errorf("dry run of %s: %+v (plan %+v), want %d to download and nothing done", m.Name, m, m.Plan, want)
		}
	}

	code, out, errs = runCLI(t, "--config", a.config, "--json", "sync")
	if code != exitOK || errs != "" {
		t.Fatalf("sync --json: exit %d, stderr %q", code, errs)
	}
	var doc docSync
	decodeDoc(t, "sync --json", out, &doc)
	if doc.DryRun || len(doc.Accounts) != 1 {
		t.Fatalf("sync: %+v", doc)
	}
	acc := doc.Accounts[0]
	if acc.Account != "personal" || acc.Mode != "full" || acc.Error != "" || acc.Seconds <= 0 || len(acc.Mailboxes) != 2 {
		t.Fatalf("sync account: %+v", acc)
	}
	got := map[string]docSyncMailbox{}
	for _, m := range acc.Mailboxes {
		got[m.Name] = m
		if m.Plan != nil || m.Error != "" || m.Safety != "" || m.Mode != "full" {
			t.Errorf("mailbox %s: %+v", m.Name, m)
		}
	}
	if m := got["INBOX"]; m.Downloaded != 3 || m.Local != "INBOX" || m.Bytes == 0 {
		t.Errorf("INBOX: %+v, want 3 downloaded", m)
	}
	if m := got["Archive"]; m.Downloaded != 2 || m.Uploaded != 0 {
		t.Errorf("Archive: %+v, want 2 downloaded", m)
	}

	code, out, errs = runCLI(t, "--config", a.config, "--json", "status")
	if code != exitOK || errs != "" {
		t.Fatalf("status --json: exit %d, stderr %q", code, errs)
	}
	var st docStatus
	decodeDoc(t, "status --json", out, &st)
	if len(st.Accounts) != 1 || !st.Accounts[0].Synced || st.Accounts[0].Maildir != a.maildir || st.Accounts[0].Index != a.index || len(st.Accounts[0].Mailboxes) != 2 {
		t.Fatalf("status: %+v", st)
	}
	for _, m := range st.Accounts[0].Mailboxes {
		want := map[string]int{"INBOX": 3, "Archive": 2}[m.Name]
		if m.MessagesLocal != want || m.MessagesRemote != want || m.LastSync == nil || m.Mode != "full" {
			t.Errorf("status of %s: %+v, want %d messages each side", m.Name, m, want)
		}
	}

	code, out, errs = runCLI(t, "--config", a.config, "--json", "check")
	if code != exitOK || errs != "" {
		t.Fatalf("check --json: exit %d, stderr %q", code, errs)
	}
	var ck docCheck
	decodeDoc(t, "check --json", out, &ck)
	if len(ck.Accounts) != 1 || ck.Accounts[0].Account != "personal" || ck.Accounts[0].Mode != "full" || ck.Accounts[0].Error != "" ||
		ck.Accounts[0].Server != fmt.Sprintf("%s:%d", srv.Host, srv.Port) || !contains(ck.Accounts[0].Capabilities, "IMAP4rev1") {
		t.Fatalf("check: %+v", ck)
	}
	if c := ck.Accounts[0].Compression; c != "off" {
		t.Errorf("check: compression %q, want off (the memory server has no COMPRESS)", c)
	}
	if ns := ck.Accounts[0].Namespaces; ns == nil || len(ns.Personal) != 1 || ns.Personal[0].Prefix != "" || ns.Personal[0].Separator != "/" || ck.Accounts[0].Prefix != nil {
		t.Fatalf("check: namespaces %+v, prefix %v", ns, ck.Accounts[0].Prefix)
	}

	// What a second sync did, in the same shape.
	writeLocalMessage(t, a, "INBOX", "draft one")
	if err := os.Remove(fileOf(t, a, "Archive", "archive 0")); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "--config", a.config, "--json", "sync")
	if code != exitOK || errs != "" {
		t.Fatalf("second sync --json: exit %d, stderr %q", code, errs)
	}
	doc = docSync{}
	decodeDoc(t, "second sync --json", out, &doc)
	for _, m := range doc.Accounts[0].Mailboxes {
		if m.Downloaded != 0 || m.Uploaded != map[string]int{"INBOX": 1}[m.Name] || m.Deleted != map[string]int{"Archive": 1}[m.Name] {
			t.Errorf("second sync of %s: %+v, want the draft uploaded from INBOX and one deletion in Archive", m.Name, m)
		}
	}

	// A failed login is in the document too, and on stderr.
	bad := writeConfig(t, srv.Host, srv.Port, srv.User, "not-"+srv.Password, "")
	for _, cmd := range []string{"sync", "check"} {
		code, out, errs = runCLI(t, "--config", bad.config, "--json", cmd)
		if code != exitFailure || !strings.Contains(errs, "authentication failed") {
			t.Fatalf("%s --json with a wrong password: exit %d, stderr %q", cmd, code, errs)
		}
		var e struct {
			Accounts []struct {
				Error string `json:"error"`
			} `json:"accounts"`
		}
		if err := json.Unmarshal([]byte(out), &e); err != nil || len(e.Accounts) != 1 || !strings.Contains(e.Accounts[0].Error, "password_command") {
			t.Fatalf("%s --json with a wrong password: %v\n%s", cmd, err, out)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestJSONFieldsDocumented: every field of the documented shapes is
// described in README.md's "JSON output" section, and each command's
// example there decodes into its shape.
func TestJSONFieldsDocumented(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## JSON output\n")
	if !ok {
		t.Fatal(`README.md has no "## JSON output" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	for _, doc := range []struct {
		command string
		v       any
	}{{"sync", &docSync{}}, {"status", &docStatus{}}, {"check", &docCheck{}}, {"verify", &docVerify{}}} {
		for _, name := range jsonFields(reflect.TypeOf(doc.v).Elem()) {
			if !strings.Contains(section, "`"+name+"`") {
				t.Errorf("%s: field %q is not described in README.md's JSON output section", doc.command, name)
			}
		}
		// The example follows the heading "### satchel --json COMMAND".
		_, rest, ok := strings.Cut(section, "### `satchel --json "+doc.command)
		if !ok {
			t.Errorf("no example of %s --json", doc.command)
			continue
		}
		m := regexp.MustCompile("(?s)```json\n(.*?)```").FindStringSubmatch(rest)
		if m == nil {
			t.Errorf("no JSON example after the %s heading", doc.command)
			continue
		}
		decodeDoc(t, "README example of "+doc.command, m[1], doc.v)
	}
}

// jsonFields lists the JSON names of a struct's fields, nested ones
// included.
func jsonFields(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Time{}) {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, name)
		out = append(out, jsonFields(f.Type)...)
	}
	return out
}

// TestErrorsSayWhatToDo: the errors a user meets most name what to
// check, in one line on stderr, with the documented exit codes.
func TestErrorsSayWhatToDo(t *testing.T) {
	srv := imaptest.StartMemory(t)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")

	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"missing configuration", []string{"--config", filepath.Join(t.TempDir(), "none.yaml"), "sync"}, exitUsage,
			[]string{"none.yaml", "cannot read the configuration file", "config.example.yaml", "--config"}},
		{"unknown account", []string{"--config", a.config, "sync", "work"}, exitUsage,
			[]string{`no account named "work"`, "the accounts are personal"}},
		{"unknown flag", []string{"--config", a.config, "sync", "--frobnicate"}, exitUsage,
			[]string{"-frobnicate", "see satchel sync --help"}},
		{"unknown command", []string{"--config", a.config, "synch"}, exitUsage,
			[]string{`unknown command "synch"`, "satchel --help"}},
		{"mailbox not on the server", []string{"--config", a.config, "sync", "--mailbox", "Nope"}, exitFailure,
			[]string{`mailbox "Nope"`, "not on the server"}},
	}
	for _, tt := range tests {
		code, out, errs := runCLI(t, tt.args...)
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d (stderr %q)", tt.name, code, tt.code, errs)
		}
		if out != "" {
			t.Errorf("%s: stdout %q, want nothing", tt.name, out)
		}
		line := oneLine(t, errs)
		for _, w := range tt.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: %q does not say %q", tt.name, line, w)
			}
		}
	}

	// TLS spoken to a server that does not speak it.
	plain := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	cfg, _ := os.ReadFile(plain.config)
	os.WriteFile(plain.config, bytes.Replace(cfg, []byte("tls: none"), []byte("tls: implicit"), 1), 0o600)
	code, _, errs := runCLI(t, "--config", plain.config, "check")
	if line := oneLine(t, errs); code != exitFailure || !strings.Contains(line, "does not speak TLS") || !strings.Contains(line, "tls: starttls") {
		t.Errorf("TLS to a plaintext port: exit %d, %q", code, line)
	}

	// An index where no directory can be made.
	blocked := writeConfig(t, srv.Host, srv.Port, srv.User, srv.Password, "")
	if err := os.WriteFile(filepath.Dir(blocked.index), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "--config", blocked.config, "sync")
	if line := oneLine(t, errs); code != exitFailure || !strings.Contains(line, "check accounts.index") {
		t.Errorf("unwritable index directory: exit %d, %q", code, line)
	}

	// An interrupted run says so once, and exits 130.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code = run(ctx, []string{"satchel", "--config", a.config, "sync"}, &out, &errb)
	if line := oneLine(t, errb.String()); code != exitInterrupted || !strings.Contains(line, "personal: interrupted") || strings.Contains(line, "context canceled") {
		t.Errorf("interrupted: exit %d, %q", code, line)
	}
}

// TestLoginHints: a refused login points at what the account uses to log
// in; an error that already says what to do is left alone.
func TestLoginHints(t *testing.T) {
	srv := imaptest.StartMemory(t)
	a := writeConfig(t, srv.Host, srv.Port, srv.User, "wrong", "")
	code, _, errs := runCLI(t, "--config", a.config, "check")
	if line := oneLine(t, errs); code != exitFailure || !strings.Contains(line, "personal: authentication failed for "+srv.User) || !strings.Contains(line, "password_command prints its password") {
		t.Errorf("password_command: exit %d, %q", code, line)
	}
	cfg, _ := os.ReadFile(a.config)
	cfg = regexp.MustCompile(`password_command: .*`).ReplaceAll(cfg, []byte("password: wrong"))
	os.WriteFile(a.config, cfg, 0o600)
	code, _, errs = runCLI(t, "--config", a.config, "check")
	if !strings.Contains(errs, "check imap.user and imap.password") || strings.Contains(errs, "password_command prints") {
		t.Errorf("password: exit %d, %q", code, errs)
	}
}

// hasExample reports whether a help text shows usage and, in its
// description, an example command line starting with prefix.
func hasExample(help, prefix string) bool {
	_, desc, ok := strings.Cut(help, "\nDESCRIPTION:\n")
	if !ok || !strings.Contains(help, "USAGE:") {
		return false
	}
	desc, _, _ = strings.Cut(desc, "\n\n"+"OPTIONS:")
	desc, _, _ = strings.Cut(desc, "\n\n"+"COMMANDS:")
	for _, line := range strings.Split(desc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), prefix) {
			return true
		}
	}
	return false
}

// TestHelpHasExamples: satchel --help and each command's --help show
// usage with examples.
func TestHelpHasExamples(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != exitOK || !hasExample(out, "satchel ") {
		t.Fatalf("satchel --help: exit %d, no usage with examples:\n%s", code, out)
	}
	_, cmds, ok := strings.Cut(out, "COMMANDS:\n")
	if !ok {
		t.Fatalf("satchel --help lists no commands:\n%s", out)
	}
	cmds, _, _ = strings.Cut(cmds, "\n\n")
	var names []string
	for _, line := range strings.Split(cmds, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, strings.TrimSuffix(f[0], ","))
		}
	}
	if len(names) < 4 {
		t.Fatalf("commands %v", names)
	}
	for _, name := range names {
		code, out, errs := runCLI(t, name, "--help")
		if code != exitOK || !hasExample(out, "satchel "+name) {
			t.Errorf("satchel %s --help: exit %d, stderr %q, no usage with examples:\n%s", name, code, errs, out)
		}
	}
}

// TestWithHint: each kind of error gets the hint that fits it, and one
// that already says what to do keeps its own.
func TestWithHint(t *testing.T) {
	connect := func(cause error) error {
		return fmt.Errorf("%w to imap.example.org:993: %w", imapremote.ErrConnect, cause)
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no such host", connect(&net.DNSError{Err: "no such host", Name: "imap.example.org", IsNotFound: true}), "check imap.host: there is no such host"},
		{"refused", connect(&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), "and that the server is running"},
		{"plaintext port", connect(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), "use tls: starttls"},
		{"untrusted certificate", connect(x509.UnknownAuthorityError{}), "imap.tls_fingerprint"},
		{"timeout", connect(imapremote.ErrTimeout), "did not answer in time"},
		{"other connection failure", connect(errors.New("EOF")), "check imap.host, imap.port and imap.tls"},
		{"disk full", fmt.Errorf("download UID 4: %w", &fs.PathError{Op: "write", Path: "/m/tmp/x", Err: syscall.ENOSPC}), "the disk is full"},
		{"permission", fmt.Errorf("open index: %w", &fs.PathError{Op: "open", Path: "/x.db", Err: fs.ErrPermission}), "check the permissions"},
		{"newer index", fmt.Errorf("open index /x.db: %w (schema version 9)", store.ErrTooNew), "use that satchel, or a newer one"},
		{"interrupted", fmt.Errorf("fetch: %w", context.Canceled), "interrupted; what was synced is kept"},
		{"own hint kept", fmt.Errorf("%w for me: the server disables LOGIN on this connection; use tls: implicit or starttls", imapremote.ErrAuth), "disables LOGIN on this connection; use tls: implicit or starttls"},
	}
	for _, tt := range tests {
		got := withHint(tt.err)
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q does not say %q", tt.name, got, tt.want)
		}
		if strings.Count(got, "; ") > 1 && tt.name != "own hint kept" {
			t.Errorf("%s: %q has more than one hint", tt.name, got)
		}
		if tt.name == "own hint kept" && got != tt.err.Error() {
			t.Errorf("%s: %q, want the error unchanged", tt.name, got)
		}
	}
}
