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

// TagState is a tag database's identity and revision. Revisions compare
// only within one UUID: compacting or rebuilding the database gives it a
// new one (notmuch-count(1) --lastmod).
type TagState struct {
	UUID     string
	Revision uint64
	// Changed counts the messages that matched.
	Changed int
}

// TaggedMessage is a message of the tag database: its id, its files
// (absolute paths) and its tags.
type TaggedMessage struct {
	ID    string
	Files []string
	Tags  []string
}

// TagChange adds and removes tags of one message.
type TagChange struct {
	ID          string
	Add, Remove []string
}
