package main

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// folderDir is where a dataset's folder lives in the server's Maildir
// (LAYOUT=fs, INBOX at the root).
func folderDir(maildir, name string) string {
	if strings.EqualFold(name, "INBOX") {
		return maildir
	}
	return filepath.Join(maildir, filepath.FromSlash(name))
}

// datasetFloor times `cp -a` + `sync` of the dataset's message files on
// the server (the cur/, new/ and tmp/ of its folders, without Dovecot's
// indexes) into dst: the disk's own floor for a first sync of that
// dataset, which writes those files and little else. What other work left
// unflushed is synced before the clock starts. The caller removes dst once
// the syncs are measured, not before: on ext4 without a journal, files
// created within minutes of a mass deletion cost far more (the allocator
// walks the inode table to skip recently deleted inodes), which would
// charge the first syncs for the floor's clean-up.
func datasetFloor(ctx context.Context, maildir string, d dataset, dst string) (diskTime, error) {
	var f diskTime
	var rel []string
	for _, fo := range d.folders {
		for _, sub := range []string{"cur", "new", "tmp"} {
			dir := filepath.Join(folderDir(maildir, fo.name), sub)
			entries, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			r, _ := filepath.Rel(maildir, dir)
			rel = append(rel, r)
			for _, e := range entries {
				if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
					f.files++
					f.mb += float64(fi.Size()) / (1 << 20)
				}
			}
		}
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return f, err
	}
	exec.CommandContext(ctx, "sync").Run()
	start := time.Now()
	args := append([]string{"-c", `src=$1; dst=$2; shift 2; cd "$src" && cp -a --parents "$@" "$dst" && sync`, "sh", maildir, dst}, rel...)
	if out, err := exec.CommandContext(ctx, "sh", args...).CombinedOutput(); err != nil {
		return f, fmt.Errorf("%v: %s", err, out)
	}
	f.elapsed = time.Since(start)
	return f, nil
}

// deflatedSize returns the size of the dataset's messages as they cross
// the wire (CRLF line ends) deflated as one stream at compressLevel by Go's
// compress/flate, and their size before: what a COMPRESS=DEFLATE
// connection carries, the IMAP around the messages aside.
func deflatedSize(maildir string, d dataset) (deflated, raw int64, err error) {
	var n countWriter
	zw, _ := flate.NewWriter(&n, compressLevel)
	for _, fo := range d.folders {
		for _, sub := range []string{"cur", "new"} {
			dir := filepath.Join(folderDir(maildir, fo.name), sub)
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					return 0, 0, err
				}
				if !bytes.Contains(b, []byte("\r\n")) {
					b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
				}
				raw += int64(len(b))
				if _, err := zw.Write(b); err != nil {
					return 0, 0, err
				}
			}
		}
	}
	if err := zw.Close(); err != nil {
		return 0, 0, err
	}
	return int64(n), raw, nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

var _ io.Writer = (*countWriter)(nil)
