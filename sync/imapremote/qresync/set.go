package qresync

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Range is the UIDs First through Last, both included; First <= Last.
type Range struct{ First, Last uint32 }

// normalize sorts ranges and merges those that overlap or touch. It
// reuses rs.
func normalize(rs []Range) []Range {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b Range) int { return cmp.Compare(a.First, b.First) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if touches(*last, r) {
			last.Last = max(last.Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// touches reports whether b, which does not start before a, overlaps a or
// follows it directly.
func touches(a, b Range) bool {
	return a.Last == math.MaxUint32 || b.First <= a.Last+1
}

// parseSet parses a sequence-set of UIDs without "*" (RFC 9051 §9
// sequence-set; RFC 7162 §7 known-uids).
func parseSet(s []byte) ([]Range, error) {
	for _, b := range s {
		if (b < '0' || b > '9') && b != ':' && b != ',' {
			return nil, fmt.Errorf("%w: unexpected %q", errMalformed, b)
		}
	}
	v := vanishedParser{state: vFirst}
	if _, _, err := v.feed(s); err != nil {
		return nil, err
	}
	if _, done, err := v.feed([]byte{'\n'}); err != nil || !done {
		return nil, fmt.Errorf("%w: incomplete", errMalformed)
	}
	return v.ranges, nil
}

// vanishedParser parses what follows "VANISHED" in a VANISHED response
// (RFC 7162 §7):
//
//	expunged-resp = "VANISHED" [SP "(EARLIER)"] SP known-uids
//
// one byte at a time, so that a response of any length is never held
// whole: only its UIDs are kept, as ranges, adjacent ones merged. As
// go-imap does for every response, it accepts one SP and a missing CR
// before the final LF.
type vanishedParser struct {
	state    uint8
	i        int // bytes of "(EARLIER)" matched
	earlier  bool
	num      uint64
	start    uint32
	hasStart bool
	ranges   []Range
}

const (
	vSP        = iota // SP after "VANISHED"
	vArg              // "(EARLIER)" or the first UID
	vEarlier          // inside "(EARLIER)"
	vEarlierSP        // SP after "(EARLIER)"
	vFirst            // a number must start here
	vNum              // in a number
	vTrail            // SP after the set
	vCR               // CR before the final LF
)

const earlierArg = "(EARLIER)"

// feed parses buf and returns how much of it was used: all of it, or up to
// and including the LF that ends the response (done).
func (v *vanishedParser) feed(buf []byte) (n int, done bool, err error) {
	for i, b := range buf {
		done, err := v.byte(b)
		if err != nil {
			return i + 1, false, err
		}
		if done {
			return i + 1, true, nil
		}
	}
	return len(buf), false, nil
}

func (v *vanishedParser) byte(b byte) (done bool, err error) {
	isDigit := b >= '0' && b <= '9'
	switch v.state {
	case vSP:
		if b == ' ' {
			v.state = vArg
			return false, nil
		}
	case vArg:
		if b == '(' {
			v.state, v.i = vEarlier, 1
			return false, nil
		}
		if isDigit {
			v.state = vFirst
			return v.byte(b)
		}
	case vEarlier:
		if upper(b) == earlierArg[v.i] {
			v.i++
			if v.i == len(earlierArg) {
				v.state, v.earlier = vEarlierSP, true
			}
			return false, nil
		}
	case vEarlierSP:
		if b == ' ' {
			v.state = vFirst
			return false, nil
		}
	case vFirst:
		if isDigit {
			v.state, v.num = vNum, uint64(b-'0')
			return false, v.checkNum()
		}
	case vNum:
		switch {
		case isDigit:
			v.num = v.num*10 + uint64(b-'0')
			return false, v.checkNum()
		case b == ':' && !v.hasStart:
			if v.num == 0 {
				return false, fmt.Errorf("%w: UID 0", errMalformed)
			}
			v.start, v.hasStart = uint32(v.num), true
			v.state = vFirst
			return false, nil
		case b == ',', b == ' ', b == '\r', b == '\n':
			if err := v.commit(); err != nil {
				return false, err
			}
			switch b {
			case ',':
				v.state = vFirst
			case ' ':
				v.state = vTrail
			case '\r':
				v.state = vCR
			default:
				return true, nil
			}
			return false, nil
		}
	case vTrail:
		switch b {
		case '\r':
			v.state = vCR
			return false, nil
		case '\n':
			return true, nil
		}
	case vCR:
		if b == '\n' {
			return true, nil
		}
	}
	return false, fmt.Errorf("%w: unexpected %q", errMalformed, b)
}

// checkNum rejects a number past the largest UID before it can overflow.
func (v *vanishedParser) checkNum() error {
	if v.num > math.MaxUint32 {
		return fmt.Errorf("%w: UID out of range", errMalformed)
	}
	return nil
}

// commit ends a number: a UID, or the end of a range ("9:7" is 7 to 9).
func (v *vanishedParser) commit() error {
	if v.num == 0 {
		return fmt.Errorf("%w: UID 0", errMalformed)
	}
	r := Range{First: uint32(v.num), Last: uint32(v.num)}
	if v.hasStart {
		r.First, r.Last = min(v.start, r.Last), max(v.start, r.Last)
	}
	v.num, v.hasStart = 0, false
	// Servers list UIDs in ascending order: merging into the previous
	// range keeps a long run of single UIDs to one entry.
	if n := len(v.ranges); n > 0 && r.First >= v.ranges[n-1].First && touches(v.ranges[n-1], r) {
		v.ranges[n-1].Last = max(v.ranges[n-1].Last, r.Last)
		return nil
	}
	v.ranges = append(v.ranges, r)
	return nil
}

func upper(b byte) byte {
	if b >= 'a' && b <= 'z' {
		return b - 'a' + 'A'
	}
	return b
}
