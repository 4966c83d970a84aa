// Command satchel keeps IMAP accounts and local Maildirs in sync.
//
// This package wires the parts together: it reads the configuration,
// builds the IMAP adapter, the index and the Maildir for each account,
// runs the engine, prints results and maps errors to exit codes. It is the
// only package that knows about exit codes and the command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var (
	version = "dev"
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// globals are the options given before the command.
type globals struct {
	config  string
	quiet   bool
	verbose bool
	json    bool
	trace   string
	stdout  io.Writer
	stderr  io.Writer
	log     *slog.Logger
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	var code int
	app := &cli.App{
		Name:      "satchel",
		Usage:     "keep IMAP accounts and local Maildirs in sync",
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
		// -v means verbose; the version is --version.
		Before: func(c *cli.Context) error {
			g.log = newLogger(g)
			return nil
		},
		Commands: []*cli.Command{
			newSyncCommand(g, &code),
			newStatusCommand(g, &code),
			newCheckCommand(g, &code),
			newReindexCommand(g, &code),
			newDemoCommand(g, &code),
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
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
	err := app.RunContext(ctx, args)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) || isCLIUsage(err) {
			fmt.Fprintf(stderr, "satchel: %v; see satchel --help\n", err)
			return exitUsage
		}
		fmt.Fprintf(stderr, "satchel: %v\n", err)
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
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
}
