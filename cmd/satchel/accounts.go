package main

import (
	"io"

	"github.com/satchel-mail/satchel/cmd/satchel/config"
)

// eachAccount loads the accounts named on the command line (all of them
// when none is named), opens the --trace file if one was asked for, and
// calls run for each account in turn with the trace writer (nil without
// --trace); the trace is closed when the last account has run. Tallying
// and printing stay with the caller. An error means no account was run:
// the configuration, the selection or the trace file is wrong.
func eachAccount(g *globals, names []string, run func(acc config.Account, trace io.Writer)) error {
	accounts, err := loadAccounts(g, names)
	if err != nil {
		return err
	}
	trace, closeTrace, err := openTrace(g)
	if err != nil {
		return err
	}
	defer closeTrace()
	for _, acc := range accounts {
		run(acc, trace)
	}
	return nil
}
