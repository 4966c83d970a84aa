package main

import (
	"slices"
	"testing"
)

// TestRestoreFlagsAfterArguments: flags after the account ("restore old
// --to new") are read as flags, as restore and verify document them.
func TestRestoreFlagsAfterArguments(t *testing.T) {
	cases := []struct {
		args     []string
		wantArgs []string
		to       string
		boxes    []string
		force    bool
		err      bool
	}{
		{args: []string{"old"}, wantArgs: []string{"old"}},
		{args: []string{"old", "--to", "new", "--force"}, wantArgs: []string{"old"}, to: "new", force: true},
		{args: []string{"old", "--to=new", "--mailbox", "A", "-mailbox=B"}, wantArgs: []string{"old"}, to: "new", boxes: []string{"A", "B"}},
		{args: []string{"old", "--force=false", "--", "--to"}, wantArgs: []string{"old", "--to"}},
		{args: []string{"old", "--to"}, err: true},
		{args: []string{"old", "--nope"}, err: true},
		{args: []string{"old", "--force=maybe"}, err: true},
	}
	for _, tc := range cases {
		var to string
		var boxes []string
		var force bool
		got, err := tailFlags{
			strs:  map[string]*string{"to": &to},
			lists: map[string]*[]string{"mailbox": &boxes},
			bools: map[string]*bool{"force": &force},
		}.parse(tc.args)
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.args)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.wantArgs) || to != tc.to || !slices.Equal(boxes, tc.boxes) || force != tc.force {
			t.Errorf("%q: args %q to %q boxes %q force %v err %v", tc.args, got, to, boxes, force, err)
		}
	}
}
