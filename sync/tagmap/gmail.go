package tagmap

import (
	"fmt"
	"slices"
	"strings"
)

// Gmail labels (X-GM-LABELS) and notmuch tags, for Gmail's label mode.
//
// Gmail's system labels are names with a backslash (\Inbox, \Sent,
// \Important, ...); user labels are any UTF-8 names, nested with "/"
// ("Projects/Alpha"). A user label is the tag of the same name; the
// system labels are paired with the tags notmuch users give them (lieer's
// table: https://github.com/gauteh/lieer). \Starred and \Draft are not
// labels here: they are the \Flagged and \Draft flags, which reach
// notmuch as the F and D of the file name (its flagged and draft tags).
// Two more tags stand for the mailbox a message is in, not for a label:
// GmailTrash and GmailSpam.

// DefaultGmailLabels pairs Gmail's system labels with tags.
var DefaultGmailLabels = map[string]string{
	`\Inbox`:     "inbox",
	`\Sent`:      "sent",
	`\Important`: "important",
}

// GmailTrash and GmailSpam are the tags of the messages in Gmail's Trash
// and Spam mailboxes ([Gmail]/Trash, [Gmail]/Spam: \Trash and \Junk).
const (
	GmailTrash = "trash"
	GmailSpam  = "spam"
)

// DefaultGmailLocal are the tags that never become labels: notmuch's own
// (new, attachment, signed, encrypted) and those kept in the file name
// (unread, replied, passed, flagged, draft).
var DefaultGmailLocal = []string{"new", "unread", "replied", "passed", "flagged", "draft", "attachment", "signed", "encrypted"}

// DefaultGmailReadOnly are the labels read but never written: Gmail's
// classifier sets and clears \Important on its own.
var DefaultGmailReadOnly = []string{`\Important`}

// GmailMap is a configured label mapping. Its methods are safe for
// concurrent use.
type GmailMap struct {
	toTag    map[string]string // system label (lower case) → tag
	toLabel  map[string]string // tag → system label
	local    map[string]bool
	readOnly map[string]bool // by label, system labels in lower case
}

// NewGmail builds a GmailMap from system label → tag pairs (nil:
// DefaultGmailLabels), local tags (nil: DefaultGmailLocal) and read-only
// labels (nil: DefaultGmailReadOnly).
func NewGmail(labels map[string]string, local, readOnly []string) (*GmailMap, error) {
	if labels == nil {
		labels = DefaultGmailLabels
	}
	if local == nil {
		local = DefaultGmailLocal
	}
	if readOnly == nil {
		readOnly = DefaultGmailReadOnly
	}
	m := &GmailMap{toTag: map[string]string{}, toLabel: map[string]string{}, local: map[string]bool{}, readOnly: map[string]bool{}}
	for _, t := range local {
		m.local[t] = true
	}
	for _, l := range slices.Sorted(mapKeys(labels)) {
		tag := labels[l]
		switch {
		case !strings.HasPrefix(l, `\`):
			return nil, fmt.Errorf("gmail label %q: only system labels (\\Inbox, \\Sent, ...) are paired; a user label is the tag of its name", l)
		case !usableTag(tag) || tag == GmailTrash || tag == GmailSpam || m.local[tag]:
			return nil, fmt.Errorf("gmail label %q: tag %q is not usable (empty, a control character, local, trash or spam)", l, tag)
		case m.toLabel[tag] != "":
			return nil, fmt.Errorf("tag %q: paired with two labels", tag)
		}
		m.toTag[strings.ToLower(l)] = tag
		m.toLabel[tag] = l
	}
	for _, l := range readOnly {
		m.readOnly[gmailKey(l)] = true
	}
	return m, nil
}

func gmailKey(label string) string {
	if strings.HasPrefix(label, `\`) {
		return strings.ToLower(label)
	}
	return label
}

// Tag returns the tag of a label; false for a label that is not synced:
// a system label without a pair (\Starred, \Draft, \Chats), or a user
// label whose name is a local tag, a paired tag, trash or spam, or
// not a usable tag.
func (m *GmailMap) Tag(label string) (string, bool) {
	if strings.HasPrefix(label, `\`) {
		t, ok := m.toTag[strings.ToLower(label)]
		return t, ok
	}
	if !usableTag(label) || len(label) > MaxTag || m.local[label] || m.toLabel[label] != "" || label == GmailTrash || label == GmailSpam {
		return "", false
	}
	return label, true
}

// Label returns the label of a tag; false for a local tag, trash and
// spam (mailboxes, not labels), and a tag that cannot be a label.
func (m *GmailMap) Label(tag string) (string, bool) {
	if l, ok := m.toLabel[tag]; ok {
		return l, true
	}
	if m.local[tag] || tag == GmailTrash || tag == GmailSpam || !usableTag(tag) || strings.HasPrefix(tag, `\`) {
		return "", false
	}
	return tag, true
}

// ReadOnly reports whether a label is read but never written.
func (m *GmailMap) ReadOnly(label string) bool { return m.readOnly[gmailKey(label)] }
