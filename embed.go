// Package satchel holds the files the satchel binary carries with it: the
// sample mail that `satchel demo` serves. The program itself is in
// cmd/satchel; the engine in sync.
package satchel

import "embed"

// DemoMail is testdata/demo: one directory per mailbox, one file per
// message (see testdata/demo/README.md).
//
//go:embed testdata/demo
var DemoMail embed.FS
