package sync

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func set(s string) map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Fields(s) {
		m[l] = true
	}
	return m
}

func setString(m map[string]bool) string { return strings.Join(slices.Sorted(maps.Keys(m)), " ") }

func TestMergeLabels(t *testing.T) {
	none := map[string]bool(nil)
	for _, c := range []struct {
		name   string
		tags   string
		copies []labelCopy
		want   string
	}{
		{"added in notmuch", "work", []labelCopy{{server: set(""), base: set("")}}, "work"},
		{"added on the server", "", []labelCopy{{server: set("work"), base: set("")}}, "work"},
		{"removed in notmuch", "", []labelCopy{{server: set("work"), base: set("work")}}, ""},
		{"removed on the server", "work", []labelCopy{{server: set(""), base: set("work")}}, ""},
		{"both added", "a", []labelCopy{{server: set("b"), base: set("")}}, "a b"},
		{"first sync: union", "a", []labelCopy{{server: set("b"), base: none}}, "a b"},
		{"refused stays local", "big", []labelCopy{{server: set(""), base: set("big"), refused: set("big")}}, "big"},
		{"refused, removed in notmuch", "", []labelCopy{{server: set(""), base: set("big"), refused: set("big")}}, ""},
		{"copies: union", "", []labelCopy{{server: set("a"), base: set("")}, {server: set("b"), base: set("")}}, "a b"},
		{"copies: a removal on one copy removes from all", "x", []labelCopy{{server: set("x"), base: set("x")}, {server: set(""), base: set("x")}}, ""},
		{"copies: a new copy takes the labels", "x", []labelCopy{{server: set("x"), base: set("x")}, {server: set(""), base: none}}, "x"},
		{"copies: removed in notmuch, kept nowhere", "", []labelCopy{{server: set("x"), base: set("x")}, {server: set("x"), base: none}}, ""},
	} {
		if got := setString(mergeLabels(set(c.tags), c.copies)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestMergeLabelsProperties: with one copy and a base both sides agreed
// on, a side that did not change takes the other's labels exactly; a
// merge of agreeing sides is what they agree on; merging again after
// the result is written changes nothing.
func TestMergeLabelsProperties(t *testing.T) {
	labels := rapid.SliceOfDistinct(rapid.SampledFrom([]string{"a", "b", "c", "d", "e"}), rapid.ID[string])
	asSet := func(l []string) map[string]bool { return set(strings.Join(l, " ")) }
	rapid.Check(t, func(t *rapid.T) {
		base := asSet(labels.Draw(t, "base"))
		changed := asSet(labels.Draw(t, "changed"))
		if got := mergeLabels(changed, []labelCopy{{server: base, base: base}}); !maps.Equal(got, changed) {
			t.Fatalf("notmuch changed %q from %q: merged %q", setString(changed), setString(base), setString(got))
		}
		if got := mergeLabels(base, []labelCopy{{server: changed, base: base}}); !maps.Equal(got, changed) {
			t.Fatalf("server changed %q from %q: merged %q", setString(changed), setString(base), setString(got))
		}
		tags := asSet(labels.Draw(t, "tags"))
		n := rapid.IntRange(1, 3).Draw(t, "copies")
		var copies []labelCopy
		for i := range n {
			c := labelCopy{server: asSet(labels.Draw(t, "server"))}
			if rapid.Bool().Draw(t, "hasBase") {
				c.base = asSet(labels.Draw(t, "base"))
			}
			_ = i
			copies = append(copies, c)
		}
		got := mergeLabels(tags, copies)
		for i := range copies {
			copies[i] = labelCopy{server: got, base: got}
		}
		if again := mergeLabels(got, copies); !maps.Equal(again, got) {
			t.Fatalf("merge not settled: %q then %q", setString(got), setString(again))
		}
	})
}
