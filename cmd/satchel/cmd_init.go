package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
)

type initOptions struct {
	name, host, user, passwordCommand, maildir string
	tls                                        string
	port                                       int
	// noCheck skips the login test after writing the file.
	noCheck bool
}

func newInitCommand(g *globals, code *int) *cli.Command {
	var opts initOptions
	return &cli.Command{
		Name:  "init",
		Usage: "write a configuration file for one account, then test its login",
		Description: `Asks for what it needs (the IMAP host, the login name and a command that
prints the password) unless given as options, writes a commented
configuration (mode 0600) to the configuration path (--config, else
$SATCHEL_CONFIG, else ~/.config/satchel/config.yaml), and runs satchel check
on it. An existing file is never overwritten.

Examples:
   satchel init
   satchel init --name work --host imap.example.com --user me@example.com \
       --password-command "pass show mail/work" --maildir ~/Mail/work`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "account `NAME` (default personal)", Destination: &opts.name},
			&cli.StringFlag{Name: "host", Usage: "IMAP server `HOST` name", Destination: &opts.host},
			&cli.StringFlag{Name: "user", Usage: "login `NAME`, often the email address", Destination: &opts.user},
			&cli.StringFlag{Name: "password-command", Usage: "shell `COMMAND` that prints the password", Destination: &opts.passwordCommand},
			&cli.StringFlag{Name: "maildir", Usage: "`DIR` of the account's Maildir (default ~/Mail/NAME)", Destination: &opts.maildir},
			&cli.StringFlag{Name: "tls", Value: "implicit", Usage: "implicit, starttls or none (loopback hosts only)", Destination: &opts.tls},
			&cli.IntFlag{Name: "port", Usage: "`PORT` (default 993 with tls implicit, else 143)", Destination: &opts.port},
			&cli.BoolFlag{Name: "no-check", Usage: "write the file without testing the login", Destination: &opts.noCheck},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageError{fmt.Errorf("init takes no arguments (got %q)", c.Args().First())}
			}
			*code = runInit(c.Context, g, opts, os.Stdin)
			return nil
		},
	}
}

// runInit writes the configuration file and checks it.
func runInit(ctx context.Context, g *globals, opts initOptions, in io.Reader) int {
	path := g.config
	if path == "" {
		p, err := config.DefaultPath()
		if err != nil {
			return reportFatal(g, err)
		}
		path = p
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		if err != nil {
			return reportFatal(g, fmt.Errorf("init: %w", err))
		}
		return reportFatal(g, usageError{fmt.Errorf("%s already exists; satchel init does not overwrite it: edit it (config.example.yaml documents every key), or give --config NEW_FILE", path)})
	}
	if err := askMissing(g.stdout, in, &opts); err != nil {
		return reportFatal(g, usageError{err})
	}
	if opts.name == "" {
		opts.name = "personal"
	}
	if opts.maildir == "" {
		opts.maildir = "~/Mail/" + opts.name
	} else if !strings.HasPrefix(opts.maildir, "~") && !strings.HasPrefix(opts.maildir, "$") {
		// The file is read from other working directories later.
		abs, err := filepath.Abs(opts.maildir)
		if err != nil {
			return reportFatal(g, err)
		}
		opts.maildir = abs
	}
	if opts.port == 0 {
		opts.port = 143
		if opts.tls == "implicit" {
			opts.port = 993
		}
	}
	doc := initConfig(opts)
	if _, err := config.Parse(path, doc); err != nil {
		return reportFatal(g, usageError{fmt.Errorf("init: nothing written: %w", err)})
	}
	if err := writeNewFile(path, doc); err != nil {
		return reportFatal(g, fmt.Errorf("init: %w", err))
	}
	fmt.Fprintf(g.stdout, "wrote %s\n", path)
	if opts.noCheck {
		fmt.Fprintf(g.stdout, "next: satchel check %s, then satchel sync %s\n", opts.name, opts.name)
		return exitOK
	}
	g.config = path
	code := runCheck(ctx, g, []string{opts.name})
	if code == exitOK {
		fmt.Fprintf(g.stdout, "next: satchel sync %s\n", opts.name)
	} else {
		fmt.Fprintf(g.stderr, "satchel: the configuration is in %s; fix it, then run satchel check %s\n", path, opts.name)
	}
	return code
}

// askMissing asks on out, reading answers from in, for the values the
// options leave empty. The account name and Maildir, which have
// defaults, are asked for only when something else is.
func askMissing(out io.Writer, in io.Reader, opts *initOptions) error {
	if opts.host != "" && opts.user != "" && opts.passwordCommand != "" {
		return nil
	}
	r := bufio.NewReader(in)
	ask := func(dst *string, flag, prompt, def string) error {
		if *dst != "" {
			return nil
		}
		for {
			if def != "" {
				fmt.Fprintf(out, "%s [%s]: ", prompt, def)
			} else {
				fmt.Fprintf(out, "%s: ", prompt)
			}
			line, err := r.ReadString('\n')
			line = strings.TrimSpace(line)
			switch {
			case line != "":
				*dst = line
				return nil
			case def != "" && (err == nil || errors.Is(err, io.EOF)):
				*dst = def
				return nil
			case err != nil:
				fmt.Fprintln(out)
				return fmt.Errorf("init: no answer for %s (end of input); give --%s", prompt, flag)
			}
		}
	}
	if err := ask(&opts.name, "name", "Account name", "personal"); err != nil {
		return err
	}
	if err := ask(&opts.host, "host", "IMAP server (host name, such as imap.example.org)", ""); err != nil {
		return err
	}
	if err := ask(&opts.user, "user", "Login name (often the email address)", ""); err != nil {
		return err
	}
	if err := ask(&opts.passwordCommand, "password-command", "Command that prints the password (such as pass show mail/"+opts.name+")", ""); err != nil {
		return err
	}
	return ask(&opts.maildir, "maildir", "Maildir", "~/Mail/"+opts.name)
}

// writeNewFile writes data to path with mode 0600, creating the directory
// (0700) if needed, and fails if path exists.
func writeNewFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// yamlString quotes s as a YAML double-quoted scalar: JSON's string syntax
// is a subset of it.
func yamlString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// initConfig is the file satchel init writes: the keys a first account
// needs, each commented, and the common next steps commented out.
func initConfig(o initOptions) []byte {
	return fmt.Appendf(nil, `# satchel configuration, written by satchel init. config.example.yaml (in
# satchel's source) documents every key; a key left out takes its default.

accounts:
  - name: %s               # names the index file; picks the account on the command line
    imap:
      host: %s
      port: %d
      tls: %s              # implicit (TLS from the start, port 993) | starttls (port 143) |
                           # none (refused unless the host is a loopback address)
      user: %s
      password_command: %s
                           # a shell command that prints the password; its trailing
                           # newline is dropped, and it is never logged
      # For Gmail or Outlook with OAuth 2.0, replace password_command with:
      # auth: xoauth2      # or oauthbearer (Gmail)
      # oauth2_token_command: "oama access me@gmail.com"

    maildir: %s

    mailboxes:
      include: ["*"]       # patterns of server mailboxes to sync
      exclude: []          # mailboxes to leave alone, e.g. ["Junk", "[Gmail]/All Mail"]

    sync:
      direction: both      # both | pull (never change the server) | push
      max_delete: 25%%      # a sync that would delete more of a mailbox deletes nothing
                           # there and exits 4; satchel sync --force lets it through

    # notmuch:
    #   enabled: true      # keep notmuch tags and IMAP keywords in sync; each sync
    #                      # runs notmuch new itself (no post hook needed)
    # hooks:
    #   post: 'notify-send satchel "$SATCHEL_DOWNLOADED new messages"'
    #                      # run after each sync of this account
`, yamlString(o.name), yamlString(o.host), o.port, yamlString(o.tls), yamlString(o.user), yamlString(o.passwordCommand), yamlString(o.maildir))
}
