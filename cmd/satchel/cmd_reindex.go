package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/urfave/cli/v2"
)

func newReindexCommand(g *globals, code *int) *cli.Command {
	return &cli.Command{
		Name:      "reindex",
		Usage:     "rebuild a lost or damaged index from the Maildir and the server",
		ArgsUsage: "[ACCOUNT...]",
		Description: `The index is set aside (renamed to INDEX.before-reindex-TIME) and built
anew: every local file is paired with the server message that has the same
Message-ID and size (or the UID in an mbsync or OfflineIMAP file name).
Nothing is transferred twice. Local files without a server counterpart are
kept and not uploaded: without the index there is no telling whether they
are new or were deleted on the server since. Then the accounts sync.

Examples:
   satchel reindex personal`,
		Action: func(c *cli.Context) error {
			*code = runSync(c.Context, g, syncOptions{accounts: c.Args().Slice(), reindex: true})
			return nil
		},
	}
}

// setIndexAside renames an index (and its WAL files) out of the way,
// keeping it for inspection; a missing index is not an error.
func setIndexAside(path string, now time.Time) error {
	suffix := ".before-reindex-" + now.Format("20060102-150405")
	for _, ext := range []string{"", "-wal", "-shm"} {
		err := os.Rename(path+ext, path+suffix+ext)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("set the old index aside: %w", err)
		}
	}
	return nil
}
