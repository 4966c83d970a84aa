package sync_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/imapremote"
	"github.com/satchel-mail/satchel/sync/imaptest"
	"github.com/satchel-mail/satchel/sync/mail"
)

// What satchel's Gmail support and the Gmail emulation assume of Gmail,
// checked against a server in a few IMAP steps on a label of their own,
// removed afterwards. TestGmailAssumptionsEmulated runs them against the
// emulation in every test run; TestGmailAssumptionsReal against a real
// account, when one is given (see README, "Gmail"):
//
//	SATCHEL_GMAIL_USER=me@gmail.com
//	SATCHEL_GMAIL_PASSWORD=<app password>             # or:
//	SATCHEL_GMAIL_TOKEN_COMMAND="oama access me@gmail.com"
//
// It creates the labels satchel-test-N and satchel-test-N/Ünter, appends
// one message, moves it to the Trash and deletes it from there for good,
// and deletes the labels. The rest of the account is only read (LIST,
// STATUS, and the UIDs above the UIDNEXT of All Mail seen before).

func TestGmailAssumptionsEmulated(t *testing.T) {
	srv := imaptest.StartGmail(t, imaptest.GmailOptions{})
	srv.GmailAdd(imaptest.GmailMessage{Body: gmailBody("already-there"), Labels: []string{`\Inbox`}})
	checkGmailAssumptions(t, imapremote.Options{
		Host: srv.Host, Port: srv.Port, TLS: imapremote.TLSNone, User: srv.User, Auth: imapremote.AuthPlain,
		Password: func(context.Context) (string, error) { return srv.Password, nil },
	})
}

func TestGmailAssumptionsReal(t *testing.T) {
	user := os.Getenv("SATCHEL_GMAIL_USER")
	if user == "" {
		t.Skip("no Gmail account given: set SATCHEL_GMAIL_USER and SATCHEL_GMAIL_PASSWORD or SATCHEL_GMAIL_TOKEN_COMMAND (README, \"Gmail\")")
	}
	opts := imapremote.Options{Host: "imap.gmail.com", Port: 993, TLS: imapremote.TLSImplicit, User: user}
	if h := os.Getenv("SATCHEL_GMAIL_HOST"); h != "" {
		opts.Host = h
	}
	switch cmd := os.Getenv("SATCHEL_GMAIL_TOKEN_COMMAND"); {
	case cmd != "":
		opts.Auth = imapremote.AuthXOAuth2
		opts.Token = func(ctx context.Context) (string, error) {
			out, err := exec.CommandContext(ctx, "sh", "-c", cmd).Output()
			return strings.TrimSpace(string(out)), err
		}
	case os.Getenv("SATCHEL_GMAIL_PASSWORD") != "":
		opts.Auth = imapremote.AuthPlain
		opts.Password = func(context.Context) (string, error) { return os.Getenv("SATCHEL_GMAIL_PASSWORD"), nil }
	default:
		t.Fatal("SATCHEL_GMAIL_USER is set: set SATCHEL_GMAIL_PASSWORD (an app password) or SATCHEL_GMAIL_TOKEN_COMMAND too")
	}
	checkGmailAssumptions(t, opts)
}

func checkGmailAssumptions(t *testing.T, opts imapremote.Options) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := imapremote.Dial(ctx, opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close()

	// Capabilities: Gmail's extensions, CONDSTORE (and, as of writing, no
	// QRESYNC), MOVE and UIDPLUS.
	for _, capability := range []string{"X-GM-EXT-1", "CONDSTORE", "MOVE", "UIDPLUS"} {
		if !c.Has(capability) {
			t.Errorf("assumption: the server advertises %s; it does not (%v)", capability, c.Capabilities())
		}
	}
	t.Logf("QRESYNC advertised: %v (satchel assumes not; it uses it where it is)", c.Has("QRESYNC"))

	// The special-use mailboxes label mode syncs.
	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var all, trash string
	for _, m := range list {
		switch {
		case m.HasAttr(`\All`):
			all = m.Name
		case m.HasAttr(`\Trash`):
			trash = m.Name
		}
	}
	if all == "" || trash == "" {
		t.Fatalf("assumption: mailboxes with the special uses \\All and \\Trash; found %q and %q", all, trash)
	}

	label := fmt.Sprintf("satchel-test-%d", time.Now().UnixNano()%1e9)
	nested := label + "/Ünter"
	for _, name := range []string{label, nested} {
		if err := c.Create(ctx, name); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	defer func() {
		for _, name := range []string{nested, label} {
			if err := c.Delete(context.Background(), name); err != nil {
				t.Errorf("clean up: delete %s: %v", name, err)
			}
		}
	}()

	before, err := c.Status(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("From: satchel test <me@example.org>\r\nSubject: %s\r\nMessage-ID: <%s@satchel.test>\r\nDate: Mon, 2 Dec 2024 10:00:00 +0000\r\n\r\nA message of satchel's Gmail check.\r\n", label, label)
	out := mail.Outgoing{Size: int64(len(body)), Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
	app, err := c.AppendBatch(ctx, label, []mail.Outgoing{out})
	if err != nil || len(app) != 1 || !app[0].Done || app[0].UID == 0 {
		t.Fatalf("append to %s: %+v, %v", label, app, err)
	}
	inLabel := app[0].UID

	// In the label's mailbox: an X-GM-MSGID, and labels without the
	// mailbox's own.
	if _, err := c.Select(ctx, label); err != nil {
		t.Fatal(err)
	}
	ids, err := c.GmailIDs(ctx, []mail.UID{inLabel})
	if err != nil || ids[inLabel] == 0 {
		t.Fatalf("X-GM-MSGID of UID %d in %s: %v, %v", inLabel, label, ids, err)
	}
	msgID := ids[inLabel]
	got, err := c.GmailLabelsOf(ctx, []mail.UID{inLabel})
	if err != nil || len(got) != 1 {
		t.Fatalf("X-GM-LABELS in %s: %+v, %v", label, got, err)
	}
	if slices.Contains(got[0].Labels, label) {
		t.Errorf("assumption: FETCH X-GM-LABELS in a label's mailbox leaves that label out; got %q", got[0].Labels)
	}

	// In All Mail: the same X-GM-MSGID, with the label.
	if _, err := c.Select(ctx, all); err != nil {
		t.Fatal(err)
	}
	news, err := c.Since(ctx, before.UIDNext)
	if err != nil {
		t.Fatal(err)
	}
	var uids []mail.UID
	for _, m := range news {
		uids = append(uids, m.UID)
	}
	allIDs, err := c.GmailIDs(ctx, uids)
	if err != nil {
		t.Fatal(err)
	}
	var inAll mail.UID
	for u, id := range allIDs {
		if id == msgID {
			inAll = u
		}
	}
	if inAll == 0 {
		t.Fatalf("assumption: a message appended to a label's mailbox is in %s with the same X-GM-MSGID; not found among UIDs %v", all, uids)
	}
	labels, err := c.GmailLabelsOf(ctx, []mail.UID{inAll})
	if err != nil || len(labels) != 1 || !slices.Contains(labels[0].Labels, label) {
		t.Fatalf("assumption: in %s, X-GM-LABELS names %s; got %+v, %v", all, label, labels, err)
	}

	// A nested, non-ASCII label stored in All Mail: the message enters
	// its mailbox; the label reads back decoded. Whether MODSEQ rose is
	// reported: satchel reads labels by MODSEQ and checks every
	// gmail.label_scan_every syncs.
	meta, err := c.Meta(ctx, []mail.UID{inAll})
	if err != nil || len(meta) != 1 {
		t.Fatalf("MODSEQ of UID %d: %+v, %v", inAll, meta, err)
	}
	if _, err := c.StoreGmailLabels(ctx, []mail.UID{inAll}, []string{nested}, false); err != nil {
		t.Fatalf("STORE +X-GM-LABELS: %v", err)
	}
	labels, err = c.GmailLabelsOf(ctx, []mail.UID{inAll})
	if err != nil || len(labels) != 1 || !slices.Contains(labels[0].Labels, nested) {
		t.Fatalf("assumption: a label stored with STORE +X-GM-LABELS reads back; got %+v, %v", labels, err)
	}
	after, err := c.Meta(ctx, []mail.UID{inAll})
	if err != nil || len(after) != 1 {
		t.Fatal(err)
	}
	t.Logf("a label change raised the message's MODSEQ: %v (%d → %d)", after[0].ModSeq > meta[0].ModSeq, meta[0].ModSeq, after[0].ModSeq)
	if st, err := c.Status(ctx, nested); err != nil || st.Messages != 1 {
		t.Errorf("assumption: the message is in the label's mailbox %s: %+v, %v", nested, st, err)
	}

	// The same message appended again: Gmail keeps the one it has.
	if _, err := c.Select(ctx, label); err != nil {
		t.Fatal(err)
	}
	again, err := c.AppendBatch(ctx, label, []mail.Outgoing{out})
	if err != nil || len(again) != 1 || !again[0].Done {
		t.Fatalf("append again: %+v, %v", again, err)
	}
	if st, err := c.Status(ctx, label); err != nil || st.Messages != 1 {
		t.Errorf("assumption: an APPEND of a message the account has is dropped; %s now holds %+v (%v)", label, st, err)
	}
	if again[0].UID != 0 && again[0].UID != inLabel {
		t.Errorf("assumption: the dropped APPEND answers with the message's UID %d; got %d", inLabel, again[0].UID)
	}

	// Moved to the Trash: gone from All Mail; expunged there: gone for
	// good.
	if _, err := c.Select(ctx, all); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(ctx, []mail.UID{inAll}, trash); err != nil {
		t.Fatalf("MOVE to %s: %v", trash, err)
	}
	if m, err := c.Meta(ctx, []mail.UID{inAll}); err != nil || len(m) != 0 {
		t.Errorf("assumption: a message moved to %s leaves %s; %+v, %v", trash, all, m, err)
	}
	tst, err := c.Select(ctx, trash)
	if err != nil {
		t.Fatal(err)
	}
	inTrash, err := c.Since(ctx, max(tst.UIDNext, 2)-1)
	if err != nil {
		t.Fatal(err)
	}
	var trashUIDs []mail.UID
	for _, m := range inTrash {
		trashUIDs = append(trashUIDs, m.UID)
	}
	tids, err := c.GmailIDs(ctx, trashUIDs)
	if err != nil {
		t.Fatal(err)
	}
	var gone []mail.UID
	for u, id := range tids {
		if id == msgID {
			gone = append(gone, u)
		}
	}
	if len(gone) != 1 {
		t.Fatalf("assumption: the message moved is in %s with its X-GM-MSGID; found %v among %v", trash, gone, trashUIDs)
	}
	if err := c.Expunge(ctx, gone); err != nil {
		t.Fatalf("expunge from %s: %v", trash, err)
	}
	if _, err := c.Select(ctx, all); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Since(ctx, before.UIDNext); err == nil {
		var left []mail.UID
		for _, x := range m {
			left = append(left, x.UID)
		}
		if ids, err := c.GmailIDs(ctx, left); err == nil {
			for _, id := range ids {
				if id == msgID {
					t.Errorf("assumption: expunged from %s, a message is deleted for good; it is back in %s", trash, all)
				}
			}
		}
	}
}
