// Command satchel keeps IMAP accounts and local Maildirs in sync.
//
// This package wires the parts together: it reads the flags and the
// configuration, opens each account in one place (open.go: lock, login,
// index, identity check, run marker), hands the adapters to one engine
// entry point per command (sync, sync/verify, sync/restore, sync/watch),
// prints the result and maps errors to exit codes. It is the only package
// that knows about exit codes and the command line, and it holds no sync,
// restore or watch logic of its own.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// version is set at build time with -ldflags "-X main.version=...".
var (
	version = "dev"
	commit  = ""
)

func main() {
	limitMemory()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// memoryLimit is the Go runtime's soft memory limit (see limitMemory).
const memoryLimit = 32 << 20

// limitMemory makes the garbage collector work harder as the process
// nears memoryLimit, instead of letting the heap grow to twice what is
// live (GOGC=100): a sync holds a large mailbox's index rows and folder
// listing while it plans (about 20 MB for 100,000 messages), and the
// README's benchmark requires a peak RSS of at most 51.8 MB in every
// scenario, SQLite's memory and the binary included. It is a backstop to
// holding little, not a substitute. The limit is soft
// (runtime/debug.SetMemoryLimit): a run that needs more gets it, at the
// cost of more collections; nothing fails. It covers every command: none
// holds more than a sync. GOMEMLIMIT, when set, decides instead. Tests
// run the commands without main and keep the runtime's default.
func limitMemory() {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return
	}
	debug.SetMemoryLimit(memoryLimit)
}

// globals are the options given before the command, and where output
// goes.
type globals struct {
	config  string
	quiet   bool
	verbose bool
	json    bool
	trace   string
	stdout  io.Writer
	stderr  io.Writer
	// terminal is true when stderr is a terminal: a person is watching,
	// so sync shows progress and a summary. Otherwise (cron, a pipe) a
	// successful sync prints nothing.
	terminal bool
	// logOut is where the logger writes: stderr, or above the progress
	// bars while they show.
	logOut *switchWriter
	log    *slog.Logger
	// parallel: other accounts sync at the same time as this one
	// (parallel_accounts), so no progress bars.
	parallel bool
}

// showSummary reports whether sync prints its summary line: on a
// terminal or with -v, never with -q.
func (g *globals) showSummary() bool {
	return !g.quiet && (g.terminal || g.verbose)
}

// showProgress reports whether sync shows progress bars: on a terminal,
// unless -q, --json or --dry-run asks for other output, and while one
// account syncs at a time.
func (g *globals) showProgress(dryRun bool) bool {
	return g.terminal && !g.quiet && !g.json && !dryRun && !g.parallel
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, &globals{stdout: stdout, stderr: stderr, terminal: isTerminal(stderr)})
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// runWith runs the command line with g's output settings (stdout,
// stderr, terminal); tests set them.
func runWith(ctx context.Context, args []string, g *globals) int {
	stdout, stderr := g.stdout, g.stderr
	g.logOut = &switchWriter{w: stderr}
	var code int
	app := &cli.App{
		Name:  "satchel",
		Usage: "keep IMAP accounts and local Maildirs in sync",
		Description: `Examples:
   satchel sync                      # sync every account in the configuration
   satchel sync personal --dry-run   # show what a sync of one account would do
   satchel status                    # messages per mailbox, last sync, sync mode
   satchel check personal            # test the login and show the server's capabilities
   satchel --json sync               # the result as one JSON document
   satchel demo                      # try it on built-in sample mail, no setup

On a terminal, sync shows its progress and a summary; otherwise (from cron)
it prints nothing unless something failed. Exit codes: 0 success, 1 failure,
2 usage or configuration error, 3 partial failure, 4 held back by a safety
check, 75 another run holds the account's lock, 130 interrupted.
Run "satchel COMMAND --help" for a command's options and examples.`,
		Version:   versionString(),
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "configuration `FILE` (default $SATCHEL_CONFIG, else $XDG_CONFIG_HOME/satchel/config.yaml)", Destination: &g.config},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors", Destination: &g.quiet},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log what is done, message by message", Destination: &g.verbose},
			&cli.BoolFlag{Name: "json", Usage: "print results as one JSON document", Destination: &g.json},
			&cli.StringFlag{Name: "trace", Usage: "write the IMAP protocol exchange to `FILE` (passwords redacted)", Destination: &g.trace},
		},
		HideHelpCommand: true,
		// The hidden --generate-bash-completion flag that the scripts of
		// satchel completion call.
		EnableBashCompletion: true,
		// -v means verbose; the version is --version.
		Before: func(c *cli.Context) error {
			g.log = newLogger(g)
			return nil
		},
		Commands: []*cli.Command{
			newSyncCommand(g, &code),
			newWatchCommand(g, &code),
			newStatusCommand(g, &code),
			newCheckCommand(g, &code),
			newReindexCommand(g, &code),
			newVerifyCommand(g, &code),
			newRestoreCommand(g, &code),
			newDemoCommand(g, &code),
			newMailboxesCommand(g, &code),
			newMigrateCommand(g, &code),
			newInitCommand(g, &code),
			newCompletionCommand(g, &code),
		},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return usageError{err}
		},
		CommandNotFound: func(c *cli.Context, name string) {
			code = exitUsage
			fmt.Fprintf(stderr, "satchel: unknown command %q; see satchel --help\n", name)
		},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	// A usage error points to the help of the command it was made in,
	// and is one line on stderr rather than the help on stdout.
	help := "satchel --help"
	for _, c := range app.Commands {
		before := c.Before
		c.Before = func(ctx *cli.Context) error {
			help = "satchel " + c.Name + " --help"
			if before != nil {
				return before(ctx)
			}
			return nil
		}
		onUsage := c.OnUsageError
		c.OnUsageError = func(ctx *cli.Context, err error, sub bool) error {
			help = "satchel " + c.Name + " --help"
			if onUsage != nil {
				return onUsage(ctx, err, sub)
			}
			return usageError{err}
		}
	}
	completeAccounts(g, app.Commands)
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
	err := app.RunContext(ctx, args)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) || isCLIUsage(err) {
			fmt.Fprintf(stderr, "satchel: %v; see %s\n", err, help)
			return exitUsage
		}
		fmt.Fprintf(stderr, "satchel: %s\n", withHint(err))
		return exitCodeOf(err)
	}
	return code
}

func versionString() string {
	if commit != "" {
		return version + " (" + commit + ")"
	}
	return version
}

// newLogger logs to stderr: warnings and errors by default, everything
// with -v, errors only with -q.
func newLogger(g *globals) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case g.verbose:
		level = slog.LevelDebug
	case g.quiet:
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(g.logOut, &slog.HandlerOptions{Level: level}))
}

// switchWriter is a writer whose destination can change while others
// write to it.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	return w.Write(p)
}

// set redirects the writes to w.
func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}
