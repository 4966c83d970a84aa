package imaptest

import "strings"

// Name spells a mailbox the way this server names it: path's levels
// ("Archive/2024") joined with the server's delimiter, under its personal
// namespace's prefix ("INBOX.Archive.2024" on a hosting-style server).
// "INBOX" is INBOX everywhere. Tests write one story for every server
// with it.
func (s *Server) Name(path string) string {
	if strings.EqualFold(path, "INBOX") {
		return "INBOX"
	}
	return s.Prefix + strings.ReplaceAll(path, "/", string(s.Delim))
}
