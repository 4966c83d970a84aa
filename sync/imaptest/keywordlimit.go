package imaptest

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// MemoryOptions.MaxKeywords: a server that keeps a limited number of
// keywords per mailbox and drops the others silently, still listing \* in
// PERMANENTFLAGS. A client learns of the refusal only from the flags the
// server answers a STORE with.

func (s *renumberSession) Unselect() error {
	s.selected = ""
	return s.SessionIMAP4rev2.Unselect()
}

// allowed keeps of flags the system flags and the keywords mailbox has
// room for, recording new ones.
func (r *renumberer) allowed(mailbox string, flags []imap.Flag) []imap.Flag {
	if r.opts.MaxKeywords == 0 {
		return flags
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keywords == nil {
		r.keywords = map[string]map[string]bool{}
	}
	known := r.keywords[mailbox]
	if known == nil {
		known = map[string]bool{}
		r.keywords[mailbox] = known
	}
	var out []imap.Flag
	for _, f := range flags {
		k := strings.ToLower(string(f))
		switch {
		case strings.HasPrefix(k, `\`), known[k]:
		case len(known) < r.opts.MaxKeywords:
			known[k] = true
		default:
			continue
		}
		out = append(out, f)
	}
	return out
}

func (s *renumberSession) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	if flags.Op != imap.StoreFlagsDel {
		f := *flags
		f.Flags = s.r.allowed(s.selected, flags.Flags)
		flags = &f
	}
	return s.SessionIMAP4rev2.Store(w, numSet, flags, options)
}

// appendOptions drops from an APPEND the keywords mailbox has no room
// for.
func (r *renumberer) appendOptions(mailbox string, options *imap.AppendOptions) *imap.AppendOptions {
	if options == nil || r.opts.MaxKeywords == 0 {
		return options
	}
	o := *options
	o.Flags = r.allowed(mailbox, options.Flags)
	return &o
}
