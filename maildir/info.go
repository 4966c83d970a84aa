package maildir

import (
	"slices"
	"strings"

	"github.com/satchel-mail/satchel/sync/mail"
)

// infoSep starts the "info" part of a Maildir file name; "2," says the
// info holds flag letters ("experimental semantics" version 2 of the
// Maildir spec, https://cr.yp.to/proto/maildir.html).
const infoSep = ":2,"

// flagLetters maps the Maildir flag letters to IMAP flags, in ASCII order,
// which is the order the spec requires in a file name. T ("trashed") is
// \Deleted, as Dovecot maps it; P ("passed") is $Forwarded.
var flagLetters = [...]struct {
	letter byte
	flag   string
}{
	{'D', mail.FlagDraft},
	{'F', mail.FlagFlagged},
	{'P', mail.FlagForwarded},
	{'R', mail.FlagAnswered},
	{'S', mail.FlagSeen},
	{'T', mail.FlagDeleted},
}

// isFlagLetter reports whether c is one of the letters this package owns.
func isFlagLetter(c byte) bool {
	for _, fl := range flagLetters {
		if fl.letter == c {
			return true
		}
	}
	return false
}

// FlagsFromInfo reads the flag letters of an info part (the text after
// ":2,"). Letters this package does not know (Dovecot's lowercase keyword
// letters, for one) are ignored.
func FlagsFromInfo(info string) mail.Flags {
	mask := 0
	for i := 0; i < len(info); i++ {
		for j, fl := range flagLetters {
			if info[i] == fl.letter {
				mask |= 1 << j
			}
		}
	}
	return flagsByMask[mask]
}

// flagsByMask holds the flag set of each combination of the letters,
// indexed by a bit per entry of flagLetters: a folder listing reads every
// name, and names carry a handful of combinations, each made once here.
var flagsByMask = func() (sets [1 << len(flagLetters)]mail.Flags) {
	for mask := range sets {
		var l []string
		for j, fl := range flagLetters {
			if mask&(1<<j) != 0 {
				l = append(l, fl.flag)
			}
		}
		sets[mask] = mail.NewFlags(l...)
	}
	return sets
}()

// InfoFromFlags returns the flag letters of f, sorted. Keywords other than
// $Forwarded have no letter and are left out: they live in the index and on
// the server only.
func InfoFromFlags(f mail.Flags) string {
	var b []byte
	for _, fl := range flagLetters {
		if f.Has(fl.flag) {
			b = append(b, fl.letter)
		}
	}
	return string(b)
}

// ParseName splits a Maildir file name into its key (the unique part, up
// to the first ":") and the flags of its ":2," info. A name without info
// has empty flags; so has one with an info of another version (":1,...").
// ok is false for names that are not messages: dot files, names with an
// empty key, and names holding "/" or NUL.
func ParseName(name string) (key string, flags mail.Flags, ok bool) {
	key, info, hasInfo := strings.Cut(name, ":")
	if !validKey(key) {
		return "", mail.Flags{}, false
	}
	if hasInfo {
		if letters, ok := strings.CutPrefix(":"+info, infoSep); ok {
			return key, FlagsFromInfo(letters), true
		}
	}
	return key, mail.NewFlags(), true
}

// validKey reports whether key can be the unique part of a message file
// name in this package: non-empty, not hidden, a single path element
// without the info separator.
func validKey(key string) bool {
	return key != "" && key[0] != '.' && !strings.ContainsAny(key, ":/\x00")
}

// nameWithFlags returns the file name for key carrying flags. ASCII
// letters of the old info that this package does not own (Dovecot's
// keyword letters a–z, other programs' experimental flags) are kept, so a
// flag change never destroys another mail reader's data; anything else in
// the old info is dropped.
func nameWithFlags(key, oldName string, flags mail.Flags) string {
	letters := []byte(InfoFromFlags(flags))
	if _, info, ok := strings.Cut(oldName, ":"); ok {
		if old, ok := strings.CutPrefix(":"+info, infoSep); ok {
			for i := 0; i < len(old); i++ {
				c := old[i]
				isLetter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
				if isLetter && !isFlagLetter(c) && !slices.Contains(letters, c) {
					letters = append(letters, c)
				}
			}
		}
	}
	slices.Sort(letters)
	return key + infoSep + string(letters)
}
