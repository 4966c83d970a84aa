package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The parsers below turn the text of one value into its Go form. Their
// errors are the message to show after the key path.

const sizeFormat = "must be a size such as 20MB, 512KB or 1GB, or a number of bytes (0 for no limit)"

var sizeRE = regexp.MustCompile(`^([0-9]+) *([A-Za-z]*)$`)

// sizeUnits are binary multiples, as mail tools count message sizes.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
}

// parseSize reads "20MB", "512 KiB", "1g" or "1048576" as bytes.
func parseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, errors.New(sizeFormat)
	}
	unit, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q; use B, KB, MB or GB (counted in 1024s)", m[2])
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, errors.New("is too large")
	}
	return n * unit, nil
}

const sinceFormat = "must be a date (YYYY-MM-DD) or a number of days such as 90d; leave it empty for no limit"

// maxSinceDays is a century: enough for any mailbox, and small enough that
// "now minus Days" cannot overflow.
const maxSinceDays = 36500

// parseSince reads "2024-01-31" or "90d"; "" is no limit.
func parseSince(s string) (Since, error) {
	if s == "" {
		return Since{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || strings.HasPrefix(days, "+") {
			return Since{}, errors.New(sinceFormat)
		}
		if n < 1 || n > maxSinceDays {
			return Since{}, fmt.Errorf("must be from 1d to %dd", maxSinceDays)
		}
		return Since{Days: n}, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Since{}, errors.New(sinceFormat)
	}
	return Since{Date: t}, nil
}

const maxDeleteFormat = "must be a share such as 25%, a share and a minimum count such as 25%,10, or a count such as 50"

var (
	shareRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)% *(?:, *([0-9]+))?$`)
	countRE = regexp.MustCompile(`^[0-9]+$`)
)

// defaultMaxDelete is 25% of a mailbox, or 10 messages if that is more.
var defaultMaxDelete = MaxDelete{Percent: 25, Count: 10}

// parseMaxDelete reads "25%", "25%,10" or "50".
func parseMaxDelete(s string) (MaxDelete, error) {
	if countRE.MatchString(s) {
		n, err := strconv.Atoi(s)
		if err != nil || n > maxCount {
			return MaxDelete{}, errors.New("count is too large")
		}
		return MaxDelete{Count: n}, nil
	}
	m := shareRE.FindStringSubmatch(s)
	if m == nil {
		return MaxDelete{}, errors.New(maxDeleteFormat)
	}
	md := MaxDelete{Count: defaultMaxDelete.Count}
	var err error
	md.Percent, err = strconv.ParseFloat(m[1], 64)
	if err != nil || md.Percent > 100 {
		return MaxDelete{}, errors.New("share must be from 0% to 100%")
	}
	if m[2] != "" {
		md.Count, err = strconv.Atoi(m[2])
		if err != nil || md.Count > maxCount {
			return MaxDelete{}, errors.New("count is too large")
		}
	}
	return md, nil
}

// parseDuration reads a Go duration such as "15m" or "1h30m"; it must be
// positive.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New("must be a positive duration such as 15m, 1h or 90s")
	}
	return d, nil
}

// parseFingerprint reads a SHA-256 digest in hex, with or without colons
// between the bytes; "" is no pin.
func parseFingerprint(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil || len(b) != 32 {
		return nil, errors.New("must be the SHA-256 of the server certificate's SubjectPublicKeyInfo: 64 hex digits, colons allowed")
	}
	return b, nil
}

// checkHost returns what is wrong with an IMAP host name, or "".
func checkHost(h string) string {
	switch {
	case strings.Contains(h, "://"):
		return "must be a host name such as imap.example.org, not a URL"
	case strings.ContainsAny(h, " \t\r\n/"):
		return "must be a host name or IP address, without spaces or slashes"
	case strings.HasPrefix(h, "["):
		return "must be written without brackets (they are only for IPv6 addresses in URLs)"
	}
	if _, _, err := net.SplitHostPort(h); err == nil {
		return "must be a host name without a port; put the port in imap.port"
	}
	return ""
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// checkName returns what is wrong with an account name, or "". The name
// becomes a file name (the default index is <name>.db), so it is kept to
// characters that are safe in one, and a leading dot would hide the file.
func checkName(s string) string {
	if !nameRE.MatchString(s) || strings.HasPrefix(s, ".") {
		return fmt.Sprintf("%q is not a safe file name; use letters, digits, '.', '_' and '-', not starting with '.'", s)
	}
	return ""
}

// checkPattern returns what is wrong with a mailbox glob, or "".
func checkPattern(p string) string {
	// path.Match checks the whole pattern's syntax even when the name does
	// not match, so matching against "" is a syntax check.
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Sprintf("%q is not a valid pattern; use * for any characters, ? for one, [abc] for a set, and \\ to escape", p)
	}
	return ""
}

// specialUse are the mailbox attributes of RFC 6154 §2, which mailboxes.map
// may use instead of a remote name.
var specialUse = []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`}

// canonicalSpecialUse returns attr as RFC 6154 spells it; IMAP attributes
// are case-insensitive (RFC 9051 §7.3.1). ok is false for an unknown one.
func canonicalSpecialUse(attr string) (string, bool) {
	for _, s := range specialUse {
		if strings.EqualFold(s, attr) {
			return s, true
		}
	}
	return "", false
}

// expandPath expands a leading ~ and $VARS in p and makes it absolute
// (relative to the working directory). An unset or empty variable is an
// error: expanding it to nothing would quietly point somewhere else.
func expandPath(p string) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot expand ~: %v; write the full path", err)
		}
		p = home + p[1:]
	} else if strings.HasPrefix(p, "~") {
		return "", errors.New("~user is not supported; write the full path")
	}
	var unset []string
	p = os.Expand(p, func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			unset = append(unset, "$"+name)
		}
		return v
	})
	if len(unset) > 0 {
		return "", fmt.Errorf("%s is not set (or empty); set it or write the path out", strings.Join(unset, ", "))
	}
	if p == "" {
		return "", errors.New("must not be empty")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("cannot make the path absolute: %v", err)
	}
	return abs, nil
}

// defaultIndex is $XDG_DATA_HOME/satchel/<name>.db, where $XDG_DATA_HOME
// defaults to ~/.local/share and is ignored when relative (XDG Base
// Directory specification).
func defaultIndex(name string) (string, error) {
	dir := os.Getenv("XDG_DATA_HOME")
	if !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot find the default location: %v; set index explicitly", err)
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "satchel", name+".db"), nil
}
