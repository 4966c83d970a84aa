package sync

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/conflict"
	"github.com/satchel-mail/satchel/sync/mail"
)

// Plan is what one sync of one mailbox will do, decided before anything
// is changed. It is what --dry-run prints and what tests assert.
type Plan struct {
	Mailbox string
	Mode    mail.SyncMode
	Status  mail.MailboxStatus
	// Download: new on the server, metadata complete, by ascending UID.
	Download []mail.RemoteMessage
	// Flags: known messages whose flags changed on the server.
	Flags []FlagChange
	// Remove: known messages the server expunged.
	Remove []mail.Message
}

// FlagChange updates one message after a remote flag change.
type FlagChange struct {
	UID mail.UID
	Key string
	// File holds the flags the local file should carry; FileChanged says
	// whether that differs from what it carries now (false also when the
	// file is gone locally).
	File        mail.Flags
	FileChanged bool
	// Base is the new last-synced state recorded in the index.
	Base   mail.Flags
	ModSeq mail.ModSeq
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool {
	return len(p.Download) == 0 && len(p.Flags) == 0 && len(p.Remove) == 0
}

// String is the plan as --dry-run prints it.
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %d to download, %d flag updates, %d to remove locally\n",
		p.Mailbox, p.Mode, len(p.Download), len(p.Flags), len(p.Remove))
	for _, m := range p.Download {
		fmt.Fprintf(&b, "  download UID %d (%d bytes, flags %q)\n", m.UID, m.Size, m.Flags)
	}
	for _, f := range p.Flags {
		if f.FileChanged {
			fmt.Fprintf(&b, "  flags UID %d -> %q\n", f.UID, f.File)
		}
	}
	for _, m := range p.Remove {
		fmt.Fprintf(&b, "  remove UID %d (expunged on the server)\n", m.UID)
	}
	return b.String()
}

// remoteDelta is what the server says changed since the index's state:
// changed holds new and flag-changed messages (new ones with full
// metadata once completed), gone the expunged UIDs.
type remoteDelta struct {
	changed []mail.RemoteMessage
	gone    []mail.UID
}

// localFlags reads the current flags of a known message's file.
type localFlags func(key string) (flags mail.Flags, ok bool, err error)

// decide turns the server's delta and the index into a plan. It reads the
// local files' flags through lookup and changes nothing.
func decide(name string, st mail.MailboxStatus, mode mail.SyncMode, known map[mail.UID]mail.Message, d remoteDelta, lookup localFlags) (*Plan, error) {
	p := &Plan{Mailbox: name, Mode: mode, Status: st}
	for _, rm := range d.changed {
		base, ok := known[rm.UID]
		if !ok {
			p.Download = append(p.Download, rm)
			continue
		}
		if rm.Flags.Equal(base.Flags) {
			if rm.ModSeq != base.ModSeq {
				p.Flags = append(p.Flags, FlagChange{UID: rm.UID, Key: base.Key, Base: base.Flags, ModSeq: rm.ModSeq})
			}
			continue
		}
		cur, found, err := lookup(base.Key)
		if err != nil {
			return nil, err
		}
		fc := FlagChange{UID: rm.UID, Key: base.Key, Base: rm.Flags, ModSeq: rm.ModSeq}
		if found {
			// A Maildir name cannot carry keywords: locally they are as
			// the base has them, so the merge keeps the server's.
			local := cur.Union(keywords(base.Flags))
			merged := conflict.MergeFlags(base.Flags, local, rm.Flags)
			fc.File = systemOnly(merged)
			fc.FileChanged = !fc.File.Equal(systemOnly(cur))
		}
		p.Flags = append(p.Flags, fc)
	}
	for _, uid := range d.gone {
		if m, ok := known[uid]; ok {
			p.Remove = append(p.Remove, m)
		}
	}
	slices.SortFunc(p.Download, func(a, b mail.RemoteMessage) int { return cmp.Compare(a.UID, b.UID) })
	slices.SortFunc(p.Flags, func(a, b FlagChange) int { return cmp.Compare(a.UID, b.UID) })
	slices.SortFunc(p.Remove, func(a, b mail.Message) int { return cmp.Compare(a.UID, b.UID) })
	return p, nil
}

func keywords(f mail.Flags) mail.Flags {
	var l []string
	for _, x := range f.List() {
		if !mail.IsSystem(x) {
			l = append(l, x)
		}
	}
	return mail.NewFlags(l...)
}

func systemOnly(f mail.Flags) mail.Flags {
	var l []string
	for _, x := range f.List() {
		if mail.IsSystem(x) {
			l = append(l, x)
		}
	}
	return mail.NewFlags(l...)
}

// gone returns the known UIDs missing from present.
func goneUIDs(known map[mail.UID]mail.Message, present []mail.UID) []mail.UID {
	seen := make(map[mail.UID]bool, len(present))
	for _, u := range present {
		seen[u] = true
	}
	var out []mail.UID
	for u := range known {
		if !seen[u] {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}
