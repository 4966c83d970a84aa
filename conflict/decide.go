package conflict

import (
	"fmt"

	"github.com/satchel-mail/satchel/sync/mail"
)

// Policy is sync.conflict: who wins the cases the per-flag merge cannot
// decide.
type Policy int

const (
	// Merge (the default) keeps what either side did where it can.
	Merge Policy = iota
	// Remote lets the server win.
	Remote
	// Local lets the Maildir win.
	Local
)

// ParsePolicy reads the configuration's spelling.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "merge":
		return Merge, nil
	case "remote":
		return Remote, nil
	case "local":
		return Local, nil
	}
	return Merge, fmt.Errorf("unknown conflict policy %q (merge, remote or local)", s)
}

func (p Policy) String() string {
	return [...]string{"merge", "remote", "local"}[p]
}

// State is one side's copy of a message: Present false means the side no
// longer has it (expunged on the server, file deleted locally).
type State struct {
	Present bool
	Flags   mail.Flags
}

// Action is what to do with one message.
type Action int

const (
	// Keep: both sides keep the message with Outcome.Flags.
	Keep Action = iota
	// DeleteLocal: the server expunged it; remove the local file.
	DeleteLocal
	// DeleteRemote: the user deleted it locally; remove it from the server.
	DeleteRemote
	// RestoreLocal: the local file was deleted but the server's copy wins;
	// download it again.
	RestoreLocal
	// RestoreRemote: the server expunged it but the local copy wins;
	// upload it again.
	RestoreRemote
	// Forget: gone on both sides; only the index row remains to drop.
	Forget
)

func (a Action) String() string {
	return [...]string{"keep", "delete-local", "delete-remote", "restore-local", "restore-remote", "forget"}[a]
}

// Outcome is the decision for one message: the action, the flags both
// sides end with (for Keep and the restores), and whether the case was a
// conflict worth logging.
type Outcome struct {
	Action   Action
	Flags    mail.Flags
	Conflict bool
}

// Decide resolves one message from its last synced state (base; hasBase
// false when there is none: a first sync with mail on both sides, an
// adopted Maildir, a UIDVALIDITY change), the local state and the remote
// state. It is pure: the same arguments always give the same outcome.
//
// With a base, flags merge per flag (MergeFlags) and the policy is not
// consulted. Without one, Merge takes the union of the flags except
// \Deleted, which follows the server; Remote and Local take that side's
// flags.
//
// A message gone on one side goes on the other too, unless the other side
// changed its flags since the base: then the expunge still wins, except
// when \Flagged was added on the other side, in which case the message is
// kept and restored on the side that lost it. Remote and Local make that
// side win every such case. A restore records the restored state as the
// new base, so deleting it again is a plain deletion: it cannot loop.
func Decide(base mail.Flags, hasBase bool, local, remote State, p Policy) Outcome {
	switch {
	case !local.Present && !remote.Present:
		return Outcome{Action: Forget}
	case local.Present && remote.Present:
		if !hasBase {
			return Outcome{Action: Keep, Flags: noBase(local.Flags, remote.Flags, p), Conflict: !local.Flags.Equal(remote.Flags)}
		}
		return Outcome{Action: Keep, Flags: MergeFlags(base, local.Flags, remote.Flags)}
	case !remote.Present:
		// Expunged on the server, still here.
		if !hasBase {
			// Never synced: nothing says the user wanted it gone.
			return Outcome{Action: RestoreRemote, Flags: local.Flags}
		}
		changed := !local.Flags.Equal(base)
		switch {
		case !changed:
			return Outcome{Action: DeleteLocal}
		case p == Local || p == Merge && flaggedAdded(base, local.Flags):
			return Outcome{Action: RestoreRemote, Flags: local.Flags, Conflict: true}
		default:
			return Outcome{Action: DeleteLocal, Conflict: true}
		}
	default:
		// Deleted locally, still on the server.
		if !hasBase {
			return Outcome{Action: RestoreLocal, Flags: remote.Flags}
		}
		changed := !remote.Flags.Equal(base)
		switch {
		case !changed:
			return Outcome{Action: DeleteRemote}
		case p == Remote || p == Merge && flaggedAdded(base, remote.Flags):
			return Outcome{Action: RestoreLocal, Flags: remote.Flags, Conflict: true}
		default:
			return Outcome{Action: DeleteRemote, Conflict: true}
		}
	}
}

// noBase resolves flags that have no common ancestor.
func noBase(local, remote mail.Flags, p Policy) mail.Flags {
	switch p {
	case Remote:
		return remote
	case Local:
		return local
	}
	u := local.Union(remote)
	// \Deleted follows the server: a union would otherwise resurrect or
	// invent a pending deletion.
	return u.With(mail.FlagDeleted, remote.Has(mail.FlagDeleted))
}

func flaggedAdded(base, now mail.Flags) bool {
	return now.Has(mail.FlagFlagged) && !base.Has(mail.FlagFlagged)
}
