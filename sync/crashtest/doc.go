// Package crashtest is satchel's SIGKILL crash harness. It has no code of
// its own outside the tests: they build the satchel binary, run
// `satchel sync` against a real Dovecot, kill it with SIGKILL at random
// moments, start it again, and check that once a run completes the server
// and the Maildir hold exactly the mail the scenario's own model says they
// should: nothing lost, nothing twice, nothing the index does not know.
//
// The tests drive the binary only (the configuration file, the exit code,
// the --trace file); they read the index, the Maildir and the server
// directly to check the outcome, and decode Maildir names and mailbox
// paths with their own code, so that a bug in package maildir cannot make
// them agree with the engine.
//
// Environment:
//   - SATCHEL_CRASH_KILLS: kill attempts per scenario (default 10, 4 with
//     -short); `make crash` sets hundreds.
//   - SATCHEL_CRASH_SEED: replays a run: the worlds, the changes and the
//     kill delays (as fractions of the measured run time) are drawn from
//     it. With the same SATCHEL_CRASH_KILLS, -run 'TestCrash/mixed/round-17'
//     replays one round; -count=N repeats it, since where a delay lands in
//     the work still varies from run to run.
//   - SATCHEL_CRASH_AT: a regular expression; each run is killed as soon
//     as its --trace shows a client line that matches it (e.g. "UID COPY"),
//     instead of after a random delay: a crash at one step, on demand.
//   - SATCHEL_CRASH_ARTIFACTS: where a failed round's traces, logs and
//     index copies are kept (default $TMPDIR/satchel-crash).
package crashtest
