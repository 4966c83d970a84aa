package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// folder is a mailbox of a dataset and the share of its messages.
type folder struct {
	name  string
	share float64
}

// dataset is a set of mailboxes synced as one account (satchel) or one
// channel (mbsync).
type dataset struct {
	id      string // account and channel name
	title   string
	folders []folder
	count   int   // messages in all
	sizes   sizes // of each message
}

var (
	// mainSizes: most mail 2–30 KB, a few percent with an attachment of
	// 0.05–1.5 MB (before base64).
	mainSizes = sizes{textMin: 2 << 10, textMax: 30 << 10, bigShare: 0.03, bigMin: 50 << 10, bigMax: 1536 << 10}
	// smallSizes: short notifications and list mail, about 1–3.5 KB.
	smallSizes = sizes{textMin: 500, textMax: 3000}

	// mainFolders: where the main corpus lives. "Lists" is an empty
	// parent, as on a real server.
	mainFolders = []folder{
		{"INBOX", 0.30}, {"Archive", 0.20}, {"Archive/2024", 0.15}, {"Sent", 0.12},
		{"Lists", 0}, {"Lists/golang-dev", 0.10}, {"Lists/debian-devel", 0.08},
		{"Work", 0.04}, {"Drafts", 0.01},
	}
)

func datasets(o options) []dataset {
	ms := mainSizes
	ms.bigShare = o.bigShare
	sets := []dataset{
		{id: "main", title: fmt.Sprintf("%s msgs, %d folders", thousands(o.messages), len(mainFolders)), folders: mainFolders, count: o.messages, sizes: ms},
		{id: "small", title: thousands(o.small) + " small msgs, 1 folder", folders: []folder{{"Small", 1}}, count: o.small, sizes: smallSizes},
		{id: "large", title: thousands(o.large) + " small msgs, 1 folder", folders: []folder{{"Large", 1}}, count: o.large, sizes: smallSizes},
	}
	if o.compressMsgs > 0 {
		// Mail as the main corpus, with more attachments: about 90 KB a
		// message on average, some 55 MB for 600.
		cs := mainSizes
		cs.bigShare = 0.07
		sets = append(sets, dataset{id: "compress", title: fmt.Sprintf("%s msgs, 2 folders, %.0f%% attachments", thousands(o.compressMsgs), 100*cs.bigShare),
			folders: []folder{{"Mixed", 0.6}, {"Mixed/Reports", 0.4}}, count: o.compressMsgs, sizes: cs})
	}
	if o.hugeMB > 0 {
		// One message whose attachment makes it hugeMB MB in all: base64
		// turns 57 bytes into a 78-byte line.
		raw := o.hugeMB << 20 / 78 * 57
		sets = append(sets, dataset{id: "huge", title: fmt.Sprintf("one %d MB message", o.hugeMB),
			folders: []folder{{"Huge", 1}}, count: 1, sizes: sizes{textMin: 2 << 10, textMax: 2 << 10, bigShare: 1, bigMin: raw, bigMax: raw}})
	}
	return sets
}

func (d dataset) mailboxNames() []string {
	names := make([]string, len(d.folders))
	for i, f := range d.folders {
		names[i] = f.name
	}
	return names
}

// perFolder splits the dataset's messages over its folders by share; what
// rounding leaves goes to the first folder.
func (d dataset) perFolder() []int {
	n := make([]int, len(d.folders))
	sum := 0
	for i, f := range d.folders {
		n[i] = int(float64(d.count)*f.share + 0.5)
		sum += n[i]
	}
	n[0] += d.count - sum
	return n
}

func describeSets(sets []dataset) string {
	var s []string
	for _, d := range sets {
		s = append(s, d.id+": "+d.title)
	}
	return strings.Join(s, "; ")
}

// seed creates every mailbox and fills it, a mailbox per connection and
// two connections at a time (one imap process each). Each mailbox's mail
// is drawn from its own stream of the seed, so the corpus is the same
// whatever the order.
func seed(ctx context.Context, addr string, sets []dataset, seedValue uint64) (time.Duration, error) {
	start := time.Now()
	type job struct {
		box    string
		n      int
		sz     sizes
		stream uint64
	}
	var names []string
	var jobs []job
	for si, d := range sets {
		for fi, n := range d.perFolder() {
			names = append(names, d.folders[fi].name)
			if n > 0 {
				jobs = append(jobs, job{d.folders[fi].name, n, d.sizes, uint64(si*100 + fi)})
			}
		}
	}
	if err := createMailboxes(ctx, addr, names); err != nil {
		return 0, err
	}
	work := make(chan job)
	errs := make(chan error, len(jobs))
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				errs <- fill(ctx, addr, j.box, j.n, j.sz, newGen(seedValue, j.stream))
			}
		}()
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// fill appends n messages drawn from g to box, a batch at a time.
func fill(ctx context.Context, addr, box string, n int, sz sizes, g *gen) error {
	c, err := dialRaw(ctx, addr)
	if err != nil {
		return err
	}
	defer c.close()
	batch := make([]message, 0, appendBatchMessages)
	for done := 0; done < n; {
		batch = batch[:0]
		size := 0
		for done < n && len(batch) < appendBatchMessages && size < appendBatchBytes {
			m := g.next(sz)
			batch = append(batch, m)
			size += len(m.body)
			done++
		}
		if err := c.appendAll(box, batch); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// thousands renders n with commas: 100000 → "100,000".
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
