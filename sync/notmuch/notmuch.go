// Package notmuch runs the notmuch command for satchel's tag sync: it
// reads a database's revision, the tags and files of changed messages,
// indexes new mail and writes tags. libnotmuch has no maintained Go
// binding; the command's batch and JSON formats are stable interfaces
// (notmuch-tag(1), notmuch-show(1) --format-version).
//
// It satisfies the engine's TagDB interface and must not import the
// engine (only package mail, for the values they share); it knows
// nothing of IMAP. Writers are not serialised here: the
// engine holds one lock per database, and notmuch takes its own.
package notmuch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Options say which notmuch to run and on which database.
type Options struct {
	// Bin is the notmuch command; "" is notmuch found in PATH.
	Bin string
	// Config is the configuration file (notmuch.config); "" lets notmuch
	// find it as it does: NOTMUCH_CONFIG, then its default places
	// (notmuch-config(1) CONFIGURATION).
	Config string
	// Env is added to the environment of every command run.
	Env []string
	// Trace, if set, is given each command line run, one per line.
	Trace io.Writer
}

// DB is one notmuch database, reached through the notmuch command.
type DB struct {
	opts Options
	mu   gosync.Mutex // guards Trace writes
}

// Open returns the database the options name. It runs nothing: a
// missing notmuch or database shows at the first call.
func Open(opts Options) *DB {
	if opts.Bin == "" {
		opts.Bin = "notmuch"
	}
	return &DB{opts: opts}
}

// ErrNoNotmuch: the notmuch command is not installed.
var ErrNoNotmuch = errors.New("notmuch is not installed")

func (d *DB) run(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	if d.opts.Config != "" {
		args = append([]string{"--config=" + d.opts.Config}, args...)
	}
	if d.opts.Trace != nil {
		d.mu.Lock()
		fmt.Fprintf(d.opts.Trace, "notmuch %s\n", strings.Join(args, " "))
		d.mu.Unlock()
	}
	cmd := exec.CommandContext(ctx, d.opts.Bin, args...)
	cmd.Env = append(os.Environ(), d.opts.Env...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, ErrNoNotmuch
		}
		name := args[0]
		if d.opts.Config != "" && len(args) > 1 {
			name = args[1]
		}
		return nil, fmt.Errorf("notmuch %s: %w: %s", name, err, strings.TrimSpace(tail(errb.String(), 400)))
	}
	return out.Bytes(), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Root returns the directory the database indexes (database.mail_root,
// notmuch-config(1)), absolute and without symbolic links.
func (d *DB) Root(ctx context.Context) (string, error) {
	out, err := d.run(ctx, nil, "config", "get", "database.mail_root")
	if err != nil {
		return "", err
	}
	root := strings.TrimSpace(string(out))
	if root == "" {
		return "", errors.New("notmuch has no database.mail_root: run notmuch setup")
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	return filepath.Abs(root)
}

// scope is the query of the messages with a file under dir, relative to
// the root ("" for all): path:DIR/** (notmuch-search-terms(7)).
func scope(dir string) string {
	if dir == "" {
		return "path:**"
	}
	return "path:" + quote(dir+"/**")
}

// since restricts q to the messages changed after revision rev (0: all):
// lastmod: ranges include both ends.
func since(q string, rev uint64) string {
	if rev == 0 {
		return q
	}
	return q + " and lastmod:" + strconv.FormatUint(rev+1, 10) + ".."
}

// State counts the messages under dir changed after since and reads the
// database's UUID and revision (notmuch-count(1) --lastmod).
func (d *DB) State(ctx context.Context, dir string, after uint64) (mail.TagState, error) {
	out, err := d.run(ctx, nil, "count", "--lastmod", "--", since(scope(dir), after))
	if err != nil {
		return mail.TagState{}, err
	}
	f := strings.Split(strings.TrimSpace(string(out)), "\t")
	if len(f) != 3 {
		return mail.TagState{}, fmt.Errorf("notmuch count --lastmod: unexpected answer %q", tail(string(out), 100))
	}
	n, err1 := strconv.Atoi(f[0])
	rev, err2 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || f[1] == "" {
		return mail.TagState{}, fmt.Errorf("notmuch count --lastmod: unexpected answer %q", tail(string(out), 100))
	}
	return mail.TagState{UUID: f[1], Revision: rev, Changed: n}, nil
}

// Index indexes new, renamed and removed files without running notmuch's
// hooks (notmuch-new(1) --no-hooks): a pre-new hook often runs the syncer
// itself.
func (d *DB) Index(ctx context.Context) error {
	_, err := d.run(ctx, nil, "new", "--no-hooks", "--quiet")
	return err
}

// Changed lists the messages under dir changed after revision since (0:
// every one), with their files and tags.
func (d *DB) Changed(ctx context.Context, dir string, after uint64) ([]mail.TaggedMessage, error) {
	return d.show(ctx, since(scope(dir), after))
}

// idChunk bounds the ids of one query, so that the command line stays
// short.
const idChunk = 200

// Messages lists the messages with these ids, with their files and tags;
// an id notmuch does not know is left out.
func (d *DB) Messages(ctx context.Context, ids []string) ([]mail.TaggedMessage, error) {
	var out []mail.TaggedMessage
	for len(ids) > 0 {
		n := min(len(ids), idChunk)
		terms := make([]string, 0, n)
		for _, id := range ids[:n] {
			if q, ok := idTerm(id); ok {
				terms = append(terms, q)
			}
		}
		ids = ids[n:]
		if len(terms) == 0 {
			continue
		}
		msgs, err := d.show(ctx, strings.Join(terms, " or "))
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// show reads id, files and tags of the messages q matches, excluded ones
// included (notmuch-show(1), JSON format version 5), one thread at a time.
func (d *DB) show(ctx context.Context, q string) ([]mail.TaggedMessage, error) {
	out, err := d.run(ctx, nil, "show", "--format=json", "--format-version=5", "--body=false",
		"--entire-thread=false", "--exclude=false", "--", q)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	if _, err := dec.Token(); err != nil { // [
		return nil, fmt.Errorf("notmuch show: %w", err)
	}
	var msgs []mail.TaggedMessage
	for dec.More() {
		var thread any
		if err := dec.Decode(&thread); err != nil {
			return nil, fmt.Errorf("notmuch show: %w", err)
		}
		msgs = collect(thread, msgs)
	}
	return msgs, nil
}

// collect finds the messages in a thread of notmuch show's JSON: objects
// with an id, among nested lists of [message, replies].
func collect(v any, msgs []mail.TaggedMessage) []mail.TaggedMessage {
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			msgs = collect(x, msgs)
		}
	case map[string]any:
		id, ok := v["id"].(string)
		if !ok {
			return msgs
		}
		m := mail.TaggedMessage{ID: id}
		m.Files = strings1(v["filename"])
		m.Tags = strings1(v["tags"])
		if m.Files == nil {
			if f, ok := v["filename"].(string); ok {
				m.Files = []string{f}
			}
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func strings1(v any) []string {
	l, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Tag applies tag changes, one line per message (notmuch-tag(1) --batch;
// tags hex-encoded as notmuch-dump(1) writes them, the id quoted as a
// Xapian boolean term).
func (d *DB) Tag(ctx context.Context, changes []mail.TagChange) error {
	var b bytes.Buffer
	for _, c := range changes {
		q, ok := idTerm(c.ID)
		if !ok || len(c.Add)+len(c.Remove) == 0 {
			continue
		}
		for _, t := range c.Add {
			b.WriteString("+" + encodeTag(t) + " ")
		}
		for _, t := range c.Remove {
			b.WriteString("-" + encodeTag(t) + " ")
		}
		b.WriteString("-- " + q + "\n")
	}
	if b.Len() == 0 {
		return nil
	}
	_, err := d.run(ctx, &b, "tag", "--batch")
	return err
}

// encodeTag hex-encodes every byte outside [A-Za-z0-9@=.,_+-], as
// notmuch dump does (notmuch-dump(1) batch-tag).
func encodeTag(t string) string {
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("@=.,_+-", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02x", c)
	}
	return b.String()
}

// idTerm is the query for one message id: id:"..." with inner double
// quotes doubled (Xapian boolean term quoting, notmuch-tag(1)). An id
// with a line break or a NUL cannot be written on a batch line.
func idTerm(id string) (string, bool) {
	if id == "" || strings.ContainsAny(id, "\n\r\x00") {
		return "", false
	}
	return `id:"` + strings.ReplaceAll(id, `"`, `""`) + `"`, true
}

// quote quotes a term's value for Xapian.
func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
