// Package config turns satchel's YAML configuration file into validated
// values. It owns the schema, the defaults, and the messages that tell a
// user which line to fix and how.
//
// It reads no mail and opens no connections. It imports the standard
// library and gopkg.in/yaml.v3 only, and must not import the sync engine or
// go-imap (imports_test.go holds it to that): cmd/satchel hands the values
// it returns to the packages that act on them.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Config is one loaded configuration file.
type Config struct {
	// Path is the file the configuration came from, as given to Load or Parse.
	Path string
	// Accounts holds at least one account, in file order, with unique names.
	Accounts []Account
	// ParallelAccounts is how many accounts satchel sync syncs at once,
	// 1 to 32; 1 syncs them one after another.
	ParallelAccounts int
	// Warnings are problems that do not stop satchel, such as a password
	// written into the file. Each reads like an Error: "file:line: key: ...".
	Warnings []string

	// lines maps the key path of every value read to its line, for
	// KeyError.
	lines map[string]int
}

// Account is one IMAP account and the Maildir it syncs with. Every field
// holds its default when the file leaves the key out or empty.
type Account struct {
	// Name is a safe file name ([A-Za-z0-9._-]+, no leading dot), unique in
	// the file even ignoring case, because it names the index file.
	Name string
	IMAP IMAP
	// Maildir is absolute, with ~ and $VARS expanded.
	Maildir string
	// Layout is "verbatim" or "maildir++".
	Layout string
	// Index is the account's SQLite index: absolute, with ~ and $VARS
	// expanded; by default $XDG_DATA_HOME/satchel/<name>.db.
	Index     string
	Mailboxes Mailboxes
	Sync      Sync
	// Watch lists the mailboxes that `satchel watch` keeps an eye on.
	Watch []string
	// WatchInterval is how often `satchel watch` syncs everything; positive.
	WatchInterval time.Duration
	Hooks         Hooks
	Notmuch       Notmuch
	Gmail         Gmail
}

// Gmail says how a Gmail account (a server with X-GM-EXT-1) is synced.
type Gmail struct {
	// Labels is "folders" (each label a folder; a message in several is
	// one file, hard-linked) or "tags" (All Mail, Trash and Spam only,
	// labels as notmuch tags; needs Notmuch.Enabled).
	Labels string
	// LabelScanEvery: every so many syncs, label mode reads every
	// message's labels, not only those with a new MODSEQ.
	LabelScanEvery int
	// ReadOnly are labels read and never written; nil for the default
	// (\Important).
	ReadOnly []string
}

// Notmuch turns on the tag sync with a notmuch database that indexes the
// account's Maildir.
type Notmuch struct {
	Enabled bool
	// Config is notmuch's configuration file, absolute with ~ and $VARS
	// expanded; "" lets notmuch find it as it does.
	Config string
	// Keywords pairs keywords with tags (keyword: tag), over the pairs
	// satchel has built in; nil when the file sets none. cmd/satchel
	// checks them when it loads the file (see KeyError).
	Keywords map[string]string
	// LocalTags are the tags that never leave the machine: the file's
	// list, which replaces DefaultLocalTags (empty for []).
	LocalTags []string
}

// IMAP says how to reach and log in to the server.
type IMAP struct {
	Host string
	// Port defaults to 993 for TLS "implicit" and 143 otherwise.
	Port int
	// TLS is "implicit", "starttls" or "none"; "none" only for loopback hosts.
	TLS string
	// TLSFingerprint, when not nil, is the SHA-256 of the certificate's
	// SubjectPublicKeyInfo (32 bytes) that the server must present.
	TLSFingerprint []byte
	User           string
	// Auth is "plain", "login", "xoauth2" or "oauthbearer".
	Auth string
	// PasswordCommand is a shell command that prints the password. At most
	// one of PasswordCommand and Password is set, and one is when Auth is
	// "plain" or "login".
	PasswordCommand string
	Password        string
	// OAuth2TokenCommand prints an access token; set for the OAuth methods.
	OAuth2TokenCommand string
	// Connections is how many connections to open at most, 1 to 32.
	Connections int
	// Prefix, when set, is the personal namespace's prefix ("INBOX."),
	// left out of local folder names and put before new mailboxes'
	// names; unset ("auto"), the server's NAMESPACE answer decides (RFC
	// 2342).
	Prefix *string
	// Compress is "auto" (compress the connection with COMPRESS=DEFLATE,
	// RFC 4978, when the server offers it) or "off".
	Compress string
}

// Mailboxes chooses which remote mailboxes are synced and what they are
// called locally.
type Mailboxes struct {
	// Include and Exclude are path.Match patterns over remote mailbox names.
	// A mailbox is synced when it matches an Include pattern and no Exclude
	// pattern. Include defaults to ["*"].
	Include, Exclude []string
	// Map gives local names, keyed by remote mailbox name or by a special-use
	// attribute (RFC 6154 §2) such as `\Sent`, spelled as the RFC does.
	Map map[string]string
}

// Sync holds the policies of one sync run.
type Sync struct {
	// Direction is "both", "pull" or "push".
	Direction string
	// Expunge says which sides may lose messages: "both", "local", "remote"
	// or "none".
	Expunge string
	// Trash, when set, is the remote mailbox that locally deleted mail moves
	// to instead of being expunged.
	Trash string
	// Conflict is "merge", "remote" or "local".
	Conflict  string
	MaxDelete MaxDelete
	// RemoveFolders lets a sync delete a mailbox on one side that was
	// deleted on the other.
	RemoveFolders bool
	Since         Since
	// MaxSize skips messages larger than this many bytes; 0 is no limit.
	MaxSize int64
	// MaxMessages keeps only the newest this many messages per mailbox;
	// 0 is no limit.
	MaxMessages int
}

// MaxDelete caps how many messages one run may delete from a mailbox: at
// most Percent percent of it, or Count messages if that is more. The
// default is {25, 10}; a file that gives only a share ("25%") keeps the
// default Count, one that gives only a count ("50") sets Percent to 0.
type MaxDelete struct {
	Percent float64
	Count   int
}

// Since limits a sync to messages received on or after Date (UTC midnight),
// or within the last Days days. The zero value is no limit; at most one
// field is set.
type Since struct {
	Date time.Time
	Days int
}

// Hooks are shell commands run before and after each sync of the account.
type Hooks struct {
	Pre, Post string
}

// Error is every problem with the configuration file: cmd/satchel maps it
// to exit code 2.
type Error struct {
	File string
	// Line is 1-based; 0 when the problem has no single line.
	Line int
	// Key is the path of the offending key, such as accounts[1].sync.max_size;
	// empty when the problem is with the file as a whole.
	Key string
	// Msg says what is wrong and what to do about it.
	Msg string

	err error // the cause, when reading the file failed
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the cause of a failed read, so that callers can tell a
// missing file (fs.ErrNotExist) from a broken one.
func (e *Error) Unwrap() error { return e.err }

// Load reads the file at path and parses it. Beyond Parse, it warns when the
// file holds a password and other users can read it.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, readError(path, err)
	}
	cfg, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, readError(path, err)
	}
	if mode := fi.Mode().Perm(); mode&0o044 != 0 && hasPassword(cfg) {
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf(
			"%s: holds a password and is readable by group or others (mode %04o); run chmod 600 %s",
			path, mode, path))
	}
	return cfg, nil
}

func readError(path string, err error) *Error {
	cause := err
	var pe *os.PathError
	if errors.As(err, &pe) {
		cause = pe.Err // the path is already in the message
	}
	return &Error{File: path, Msg: "cannot read the configuration file: " + cause.Error(), err: err}
}

func hasPassword(cfg *Config) bool {
	return slices.ContainsFunc(cfg.Accounts, func(a Account) bool { return a.IMAP.Password != "" })
}

// Parse turns the contents of a configuration file into validated values.
// path is used in messages only. Every error it returns is an *Error.
//
// Parse reads the environment: $HOME and $VARS in paths, and
// $XDG_DATA_HOME for the default index location.
func Parse(path string, data []byte) (*Config, error) {
	root, perr := parseYAML(path, data)
	if perr != nil {
		return nil, perr
	}
	d := &decoder{file: path, lines: map[string]int{}}
	cfg := &Config{Path: path, ParallelAccounts: defaultParallelAccounts, lines: d.lines}
	cfg.Accounts = d.accounts(root, &cfg.ParallelAccounts)
	if d.err != nil {
		return nil, d.err
	}
	for i, a := range cfg.Accounts {
		if a.IMAP.Password != "" {
			key := fmt.Sprintf("accounts[%d].imap.password", i)
			w := &Error{File: path, Line: d.lines[key], Key: key,
				Msg: "a password in the config file; prefer password_command"}
			cfg.Warnings = append(cfg.Warnings, w.Error())
		}
	}
	return cfg, nil
}

// KeyError is a problem with the value of key (a path such as
// accounts[0].notmuch.keywords) that only a caller can see, such as a
// check that needs a package this one must not import: an *Error on the
// line where the file sets key, or with no line when it sets none.
func (c *Config) KeyError(key, format string, args ...any) *Error {
	return &Error{File: c.Path, Line: c.lines[key], Key: key, Msg: fmt.Sprintf(format, args...)}
}

// DefaultPath is where the configuration lives when no path is given:
// $SATCHEL_CONFIG, else $XDG_CONFIG_HOME/satchel/config.yaml, else
// ~/.config/satchel/config.yaml. The XDG Base Directory specification says
// to ignore a relative $XDG_CONFIG_HOME, and so does DefaultPath.
func DefaultPath() (string, error) {
	if p := os.Getenv("SATCHEL_CONFIG"); p != "" {
		return p, nil
	}
	if dir := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "satchel", "config.yaml"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the configuration file: %w; set SATCHEL_CONFIG", err)
	}
	return filepath.Join(home, ".config", "satchel", "config.yaml"), nil
}

// Select returns the accounts with the given names, in the order given and
// each once, or every account when names is empty. An unknown name is an
// *Error that lists the names the file does have.
func (c *Config) Select(names []string) ([]Account, error) {
	if len(names) == 0 {
		return slices.Clone(c.Accounts), nil
	}
	var out []Account
	for _, name := range names {
		i := slices.IndexFunc(c.Accounts, func(a Account) bool { return a.Name == name })
		if i < 0 {
			known := make([]string, len(c.Accounts))
			for j, a := range c.Accounts {
				known[j] = a.Name
			}
			return nil, &Error{File: c.Path, Msg: fmt.Sprintf(
				"no account named %q; the accounts are %s", name, strings.Join(known, ", "))}
		}
		if !slices.ContainsFunc(out, func(a Account) bool { return a.Name == name }) {
			out = append(out, c.Accounts[i])
		}
	}
	return out, nil
}

// IsLoopback reports whether host names this machine: "localhost", an
// address in 127.0.0.0/8, or ::1. Only there may a password cross the
// connection without TLS.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
