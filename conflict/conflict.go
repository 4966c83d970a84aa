// Package conflict decides what happens to a message whose state changed
// on the server, in the Maildir, or both, since the last sync.
//
// Everything here is a pure function of its arguments: no I/O, no clock,
// no randomness. The sync engine feeds it the last synced state (the base,
// from the index), the local state and the remote state, and applies the
// result. It imports only satchel's value types.
package conflict

import "github.com/satchel-mail/satchel/sync/mail"

// MergeFlags merges flag changes three ways against base: for each flag, a
// change made on only one side is taken; a change made on both sides is
// necessarily the same change (a flag is either set or not), so it is
// taken too. Nothing one side did is lost.
//
// Flags absent from all three sets stay absent. Keywords merge like system
// flags.
func MergeFlags(base, local, remote mail.Flags) mail.Flags {
	var out []string
	for _, f := range base.Union(local).Union(remote).List() {
		if mergeFlag(base.Has(f), local.Has(f), remote.Has(f)) {
			out = append(out, f)
		}
	}
	return mail.NewFlags(out...)
}

// mergeFlag is the per-flag rule: whichever side differs from the base
// carries the change; if neither does, the base stands.
func mergeFlag(base, local, remote bool) bool {
	if local != base {
		return local
	}
	return remote
}
