package crashtest

import (
	"slices"
	"strings"
)

// flags is a set of IMAP flags, sorted, in canonical spelling: the flags a
// Maildir name carries as IMAP spells them, keywords as given. The harness
// keeps its own notion of flags and Maildir names rather than the engine's,
// so the two cannot share a mistake.
type flags []string

// maildirLetters are the flags a Maildir name carries (the ":2," info of
// https://cr.yp.to/proto/maildir.html, plus "P" for $Forwarded as mutt
// and Dovecot write it), in the order the letters sort.
var maildirLetters = []struct {
	letter byte
	flag   string
}{
	{'D', `\Draft`}, {'F', `\Flagged`}, {'P', `$Forwarded`},
	{'R', `\Answered`}, {'S', `\Seen`}, {'T', `\Deleted`},
}

// canonicalFlag spells a flag the one way the harness compares: system
// flags are case-insensitive in IMAP.
func canonicalFlag(f string) string {
	for _, m := range maildirLetters {
		if strings.EqualFold(f, m.flag) {
			return m.flag
		}
	}
	return f
}

func newFlags(list ...string) flags {
	out := make(flags, 0, len(list))
	for _, f := range list {
		if f == "" || strings.EqualFold(f, `\Recent`) {
			continue
		}
		out = append(out, canonicalFlag(f))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (f flags) has(x string) bool { return slices.Contains(f, canonicalFlag(x)) }

func (f flags) String() string { return "(" + strings.Join(f, " ") + ")" }

func (f flags) equal(o flags) bool { return slices.Equal(f, o) }

// with returns f with x set or cleared.
func (f flags) with(x string, on bool) flags {
	out := slices.DeleteFunc(slices.Clone(f), func(y string) bool { return y == canonicalFlag(x) })
	if on {
		out = append(out, x)
	}
	return newFlags(out...)
}

// maildir is the part of f a Maildir name can carry.
func (f flags) maildir() flags {
	var out []string
	for _, x := range f {
		if isMaildirFlag(x) {
			out = append(out, x)
		}
	}
	return newFlags(out...)
}

// keywords is the part of f a Maildir name cannot carry.
func (f flags) keywords() flags {
	var out []string
	for _, x := range f {
		if !isMaildirFlag(x) {
			out = append(out, x)
		}
	}
	return newFlags(out...)
}

func isMaildirFlag(x string) bool {
	for _, m := range maildirLetters {
		if m.flag == x {
			return true
		}
	}
	return false
}

// letters is the ":2," info of f.
func (f flags) letters() string {
	var b []byte
	for _, m := range maildirLetters {
		if f.has(m.flag) {
			b = append(b, m.letter)
		}
	}
	return string(b)
}

// splitName splits a Maildir file name into its key and the flags of its
// ":2," info; ok is false for names that are no message (dot files, an
// empty key).
func splitName(name string) (key string, f flags, ok bool) {
	key, info, _ := strings.Cut(name, ":")
	if key == "" || strings.HasPrefix(key, ".") {
		return "", nil, false
	}
	letters, ok := strings.CutPrefix(info, "2,")
	if !ok {
		return key, flags{}, true
	}
	var list []string
	for i := 0; i < len(letters); i++ {
		for _, m := range maildirLetters {
			if m.letter == letters[i] {
				list = append(list, m.flag)
			}
		}
	}
	return key, newFlags(list...), true
}

// merged is the three-way merge the README promises, per flag a Maildir
// name carries: a flag changed on one side since the base takes that
// change (both sides changing it can only agree). Keywords are the
// server's: a Maildir name cannot change them.
func merged(base, local, remote flags) flags {
	out := remote.keywords()
	for _, m := range maildirLetters {
		on := remote.has(m.flag)
		if local.has(m.flag) != base.has(m.flag) {
			on = local.has(m.flag)
		}
		if on {
			out = append(out, m.flag)
		}
	}
	return newFlags(out...)
}
