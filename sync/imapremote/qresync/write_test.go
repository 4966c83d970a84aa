package qresync

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// enabledConn is a Conn over a scriptConn with QRESYNC taken as enabled.
func enabledConn() (*Conn, *scriptConn) {
	sc := &scriptConn{}
	c := Wrap(sc)
	c.enabled = true
	return c, sc
}

func TestWriteRewritesArmedSelect(t *testing.T) {
	const param = " (QRESYNC (7 42 1:10))"
	tests := []struct {
		name  string
		armed bool
		in    string // as go-imap writes it
		want  string // as the server gets it
		tag   string // of the rewritten SELECT
	}{
		{
			name:  "CONDSTORE replaced",
			armed: true,
			in:    "T1 SELECT INBOX (CONDSTORE)\r\n",
			want:  "T1 SELECT INBOX" + param + "\r\n",
			tag:   "T1",
		},
		{
			name:  "no parameter",
			armed: true,
			in:    "T2 SELECT \"Entw&APw-rfe\"\r\n",
			want:  "T2 SELECT \"Entw&APw-rfe\"" + param + "\r\n",
			tag:   "T2",
		},
		{
			name:  "EXAMINE, a quoted name that ends like the parameter",
			armed: true,
			in:    "T3 EXAMINE \"a \\\"b\\\" (CONDSTORE)\"\r\n",
			want:  "T3 EXAMINE \"a \\\"b\\\" (CONDSTORE)\"" + param + "\r\n",
			tag:   "T3",
		},
		{
			name:  "synchronizing literal name",
			armed: true,
			in:    "T4 SELECT {5}\r\nab\r\nc (CONDSTORE)\r\n",
			want:  "T4 SELECT {5}\r\nab\r\nc" + param + "\r\n",
			tag:   "T4",
		},
		{
			name:  "non-synchronizing literal name, any case",
			armed: true,
			in:    "T5 select {3+}\r\nabc (condstore)\r\n",
			want:  "T5 select {3+}\r\nabc" + param + "\r\n",
			tag:   "T5",
		},
		{
			name:  "other commands first, a literal that looks like SELECT",
			armed: true,
			in:    "T6 NOOP\r\nT7 APPEND INBOX {17+}\r\nT9 SELECT INBOX\r\n\r\nT8 SELECT INBOX\r\n",
			want:  "T6 NOOP\r\nT7 APPEND INBOX {17+}\r\nT9 SELECT INBOX\r\n\r\nT8 SELECT INBOX" + param + "\r\n",
			tag:   "T8",
		},
		{
			name:  "armed once",
			armed: true,
			in:    "T9 SELECT A\r\nT10 SELECT B (CONDSTORE)\r\n",
			want:  "T9 SELECT A" + param + "\r\nT10 SELECT B (CONDSTORE)\r\n",
			tag:   "T9",
		},
		{
			name: "not armed",
			in:   "T11 SELECT INBOX (CONDSTORE)\r\nT12 LOGOUT\r\n",
			want: "T11 SELECT INBOX (CONDSTORE)\r\nT12 LOGOUT\r\n",
		},
		{
			name:  "SELECT only as a later word",
			armed: true,
			in:    "T13 UID SELECT x\r\nSELECT\r\n",
			want:  "T13 UID SELECT x\r\nSELECT\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, pieces := range splits(tt.in) {
				c, sc := enabledConn()
				if tt.armed {
					if err := c.ArmSelect(7, 42, "1:10"); err != nil {
						t.Fatal(err)
					}
				}
				for _, p := range pieces {
					if n, err := c.Write(p); n != len(p) || err != nil {
						t.Fatalf("Write(%q) = %d, %v", p, n, err)
					}
				}
				if got := sc.out.String(); got != tt.want {
					t.Fatalf("pieces %q: server gets\n%q\nwant\n%q", pieces, got, tt.want)
				}
				if !c.w.atBoundary() {
					t.Fatalf("pieces %q: not between commands after the last one", pieces)
				}
				if c.selectTag != tt.tag {
					t.Fatalf("pieces %q: SELECT tag %q, want %q", pieces, c.selectTag, tt.tag)
				}
			}
		})
	}
}

func TestWriteHoldsOnlyUntilTheLineEnds(t *testing.T) {
	// go-imap waits for "+" after a synchronizing literal's announcement:
	// that line must reach the server within the same Write.
	c, sc := enabledConn()
	if err := c.ArmSelect(1, 1, ""); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("T1 SELECT {3}\r\n"))
	if got := sc.out.String(); got != "T1 SELECT {3}\r\n" {
		t.Fatalf("server has %q before the continuation", got)
	}
	c.Write([]byte("abc (CONDSTORE)"))
	if got := sc.out.String(); got != "T1 SELECT {3}\r\nabc" {
		t.Fatalf("server has %q before the line ends", got)
	}
	c.Write([]byte("\r\n"))
	if got := sc.out.String(); got != "T1 SELECT {3}\r\nabc (QRESYNC (1 1))\r\n" {
		t.Fatalf("server has %q", got)
	}
}

func TestArmSelectRefuses(t *testing.T) {
	c, _ := enabledConn()
	tests := []struct {
		uidValidity uint32
		modSeq      uint64
		known       string
	}{
		{0, 1, ""},
		{1, 0, ""},
		{1, 1 << 63, ""},
		{1, 1, "1:*"},
		{1, 1, "0"},
		{1, 1, "1,"},
		{1, 1, "1:3 4"},
		{1, 1, "1))\r\nX LOGOUT"},
	}
	for _, tt := range tests {
		if err := c.ArmSelect(tt.uidValidity, tt.modSeq, tt.known); err == nil {
			t.Errorf("ArmSelect(%d, %d, %q) accepted", tt.uidValidity, tt.modSeq, tt.known)
		}
	}
	if c.w.armed != "" {
		t.Errorf("armed %q after refusals", c.w.armed)
	}

	off := Wrap(&scriptConn{})
	if err := off.ArmSelect(1, 1, "1:3"); !errors.Is(err, ErrNotEnabled) {
		t.Errorf("ArmSelect before Enable: %v, want ErrNotEnabled", err)
	}
}

func TestEnableBusy(t *testing.T) {
	sc := &scriptConn{}
	c := Wrap(sc)
	c.Write([]byte("T1 NOO"))
	if err := c.Enable(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("Enable in the middle of a command: %v, want ErrBusy", err)
	}
	c.Write([]byte("P\r\n"))
	if got := sc.out.String(); strings.Contains(got, "ENABLE") || got != "T1 NOOP\r\n" {
		t.Fatalf("server got %q", got)
	}
}
