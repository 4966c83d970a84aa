package mail

// TagBase is what a message's keywords on the server and its tags in
// notmuch last agreed on: the base of their three-way merge. Labels are
// keywords in lower case (keywords are case-insensitive, RFC 9051
// §2.3.2), sorted; NotmuchID is the id notmuch knows the message by.
type TagBase struct {
	MailboxID   int64
	UIDValidity UIDValidity
	UID         UID
	NotmuchID   string
	Labels      []string
}
