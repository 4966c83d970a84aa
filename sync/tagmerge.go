package sync

// labelCopy is one copy of a message (one mailbox's UID) in a label
// merge: the labels its keywords carry on the server now, and those it
// and the tag database last agreed on.
type labelCopy struct {
	server map[string]bool
	// base is nil for a copy never synced with the tag database (new
	// mail, a message moved to another mailbox, a first sync).
	base map[string]bool
	// refused are labels the copy's mailbox cannot store: the server's
	// lack of them is no removal.
	refused map[string]bool
}

// mergeLabels merges, label by label, a message's tags (tags, as labels)
// with the keywords of its copies, against each copy's base. A label is
// kept when either side has it, unless one side removed it since the last
// sync: the tags (a label in some copy's base that the tags lack) or any
// copy (a label in its base that its server lacks, unless its mailbox
// refused it). For one copy the two sides never conflict: against one
// base a label can only have been added, or only removed. For several
// copies (one Message-ID in several mailboxes, or several bodies under
// one id), a label is the union over them and a removal from any copy
// removes it from all.
func mergeLabels(tags map[string]bool, copies []labelCopy) map[string]bool {
	removed := map[string]bool{}
	present := map[string]bool{}
	for l := range tags {
		present[l] = true
	}
	for _, c := range copies {
		for l := range c.server {
			present[l] = true
		}
		for l := range c.base {
			if !tags[l] {
				removed[l] = true
			}
			if !c.server[l] && !c.refused[l] {
				removed[l] = true
			}
		}
	}
	for l := range removed {
		delete(present, l)
	}
	return present
}
