package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/satchel-mail/satchel/sync/mail"
	"github.com/satchel-mail/satchel/sync/tagmap"
)

// TagDifference is a message whose tags and keywords disagree: labels
// only its tags carry (OnlyTags, spelled as tags) or only the keywords of
// its copy UID in Mailbox (OnlyKeywords, spelled as keywords). Labels the
// mailbox refused, which stay local by design, are not differences.
type TagDifference struct {
	Mailbox      string
	UID          mail.UID
	ID           string
	OnlyTags     []string
	OnlyKeywords []string
}

func (d TagDifference) String() string {
	return fmt.Sprintf("%s UID %d (id:%s): only in notmuch %q, only on the server %q", d.Mailbox, d.UID, d.ID, d.OnlyTags, d.OnlyKeywords)
}

// VerifyTags compares every message of the account in the tag database
// with the keywords of its copies, changing nothing: what satchel verify
// reports about tags. keywords gives a copy's keywords as the server has
// them now; nil reads those the index recorded at the last sync.
// mailboxes are the index's mailboxes.
//
// With gmail (label mode), the labels the index recorded at the last sync
// stand for the keywords, and keywords is not used: OnlyKeywords then
// holds labels.
func VerifyTags(ctx context.Context, o TagOptions, gmail *GmailLabelOptions, db TagDB, ix TagIndex, mailboxes []mail.Mailbox, keywords func(mailbox string, uid mail.UID) (mail.Flags, bool)) ([]TagDifference, error) {
	m, err := tagmap.New(o.Keywords, o.Local)
	if err != nil {
		return nil, err
	}
	t := &tagRun{r: &runner{log: slog.New(slog.DiscardHandler)}, db: db, ix: ix, m: m, maild: o.Maildir, res: &TagResult{},
		boxes: map[string]mail.Mailbox{}, byID: map[int64]mail.Mailbox{}, refused: map[int64]map[string]bool{}}
	if gmail != nil {
		mix, ok := ix.(metaReader)
		if !ok {
			return nil, errors.New("gmail labels: the index has no meta")
		}
		if t.gl, err = labelModeOf(ctx, mix, ix, gmail); err != nil {
			return nil, err
		}
		keywords = nil
	}
	for _, mb := range mailboxes {
		t.boxes[mb.LocalPath] = mb
		t.byID[mb.ID] = mb
	}
	if t.root, err = db.Root(ctx); err != nil {
		return nil, err
	}
	if t.dir, err = t.scopeDir(); err != nil {
		return nil, err
	}
	msgs, err := db.Changed(ctx, t.dir, 0)
	if err != nil {
		return nil, err
	}
	units, err := t.units(ctx, msgs, nil, nil)
	if err != nil {
		return nil, err
	}
	var out []TagDifference
	for _, u := range units {
		tags := t.tagLabels(u.msg.Tags)
		if t.gl != nil {
			tags = t.gl.tagKeys(u.msg.Tags)
		}
		for _, c := range u.copies {
			kw := c.keyword
			if keywords != nil {
				f, ok := keywords(c.mb.Name, c.row.UID)
				if !ok {
					continue
				}
				kw = f.Keywords()
			}
			var server map[string][]string
			if t.gl != nil {
				server = t.gl.labelsOf(c)
			} else {
				server = t.serverLabels(kw)
			}
			d := TagDifference{Mailbox: c.mb.Name, UID: c.row.UID, ID: u.msg.ID}
			for _, l := range slices.Sorted(mapKeys(tags)) {
				if _, ok := server[l]; !ok && !t.refused[c.mb.ID][l] {
					d.OnlyTags = append(d.OnlyTags, tags[l]...)
				}
			}
			for _, l := range slices.Sorted(mapKeys(server)) {
				if _, ok := tags[l]; !ok {
					d.OnlyKeywords = append(d.OnlyKeywords, server[l]...)
				}
			}
			if len(d.OnlyTags)+len(d.OnlyKeywords) > 0 {
				out = append(out, d)
			}
		}
	}
	return out, nil
}
