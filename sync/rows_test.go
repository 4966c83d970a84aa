package sync

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchel-mail/satchel/sync/mail"
)

// TestRowsRoundTrip: rows give back every row as it was added, by UID,
// across chunks, whatever the order they came in, the last of a UID
// added twice, and rows whose key and Message-ID are too long for a
// chunk's text.
func TestRowsRoundTrip(t *testing.T) {
	date := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	states := []mail.State{mail.StateSynced, mail.StateLocalOnly, mail.StateRemoteOnly, mail.StateSkipped, mail.StateHeld}
	var in []mail.Message
	for i := range 3*chunkRows + 7 {
		m := mail.Message{UIDValidity: 9, UID: mail.UID(10 + 3*i), Key: fmt.Sprintf("key%d", i),
			Flags: mail.NewFlags(mail.FlagSeen), ModSeq: mail.ModSeq(i), Size: int64(100 + i), State: states[i%len(states)]}
		if i%2 == 0 {
			m.InternalDate = date.Add(time.Duration(i) * time.Second)
			m.MessageID = fmt.Sprintf("<%d@example.org>", i)
			m.LocalOnlyFlags = mail.NewFlags("$Label")
		}
		if i%1000 == 5 {
			m.MessageID = "<" + strings.Repeat("x", longText) + ">"
		}
		in = append(in, m)
	}
	want := slices.Clone(in)
	// Out of order, and UID 10 twice: the later one counts.
	shuffled := append(slices.Clone(in[chunkRows:]), in[:chunkRows]...)
	stale := in[0]
	stale.Key = "stale"
	shuffled = append([]mail.Message{stale}, shuffled...)

	for name, rs := range map[string]*rows{"in order": rowsOf(9, in...), "shuffled": rowsOf(9, shuffled...)} {
		t.Run(name, func(t *testing.T) {
			if rs.len() != len(want) {
				t.Fatalf("len %d, want %d", rs.len(), len(want))
			}
			got := slices.Collect(rs.all())
			for i := range want {
				if !messagesEqual(got[i], want[i]) {
					t.Fatalf("row %d: got %+v, want %+v", i, got[i], want[i])
				}
			}
			for _, m := range []mail.Message{want[0], want[chunkRows], want[len(want)-1], want[1005]} {
				if r, ok := rs.get(m.UID); !ok || !messagesEqual(r, m) {
					t.Fatalf("get(%d) = %+v, %v", m.UID, r, ok)
				}
				if !rs.hasKey(m.Key) || rs.sameKey(m.Key) != m.Key {
					t.Fatalf("key %q not found", m.Key)
				}
			}
			if rs.has(11) || rs.has(9) || rs.has(want[len(want)-1].UID+1) || rs.hasKey("stale") || rs.hasKey("key") {
				t.Fatal("found a row that is not there")
			}
			from := want[len(want)-3].UID - 1
			if got := rs.uidsFrom(from); len(got) != 3 || !got[want[len(want)-1].UID] {
				t.Fatalf("uidsFrom(%d) = %v", from, got)
			}
		})
	}
}

func messagesEqual(a, b mail.Message) bool {
	return a.UIDValidity == b.UIDValidity && a.UID == b.UID && a.Key == b.Key && a.Flags.Equal(b.Flags) &&
		a.ModSeq == b.ModSeq && a.Size == b.Size && a.InternalDate.Equal(b.InternalDate) && a.MessageID == b.MessageID &&
		a.State == b.State && a.LocalOnlyFlags.Equal(b.LocalOnlyFlags)
}

// TestNilRows: a mailbox without rows answers as empty.
func TestNilRows(t *testing.T) {
	var rs *rows
	if rs.len() != 0 || rs.has(1) || rs.hasKey("k") || rs.sameKey("k") != "k" || len(rs.uidsFrom(1)) != 0 {
		t.Fatal("nil rows are not empty")
	}
	for range rs.all() {
		t.Fatal("nil rows yield a row")
	}
}
