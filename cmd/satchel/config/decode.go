package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// parseYAML returns the root node of the file's single document, or nil when
// the file holds no document at all.
//
// The file is decoded into a yaml.Node and not into structs so that every
// value keeps its line, duplicate keys can be caught (yaml.v3 lets them
// through into a Node), and messages can name the key path.
func parseYAML(path string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(path, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(path, data, err)
		}
		return nil, &Error{File: path, Line: extra.Line,
			Msg: "a second YAML document (after ---); put every account in the one accounts: list"}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 error ("yaml: line 3: ...") into an *Error on
// that line.
func syntaxError(path string, data []byte, err error) *Error {
	e := &Error{File: path, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "invalid YAML: " + m[2]
	}
	if bytes.Contains(data, []byte("\t")) && strings.Contains(e.Msg, "cannot start any token") {
		e.Msg += " (YAML does not allow tabs for indentation; use spaces)"
	}
	return e
}

// decoder walks the node tree against the schema. It keeps the first
// problem it meets and turns every later call into a no-op, so that the
// schema code reads as a list of keys rather than a chain of error checks.
type decoder struct {
	file string
	err  *Error
	// lines maps the key path of every value read to the line of its key,
	// for the checks that run after decoding.
	lines map[string]int
}

func (d *decoder) fail(line int, key, format string, args ...any) {
	if d.err == nil {
		d.err = &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
}

// line is where key was set, or fallback when the file does not set it.
func (d *decoder) line(key string, fallback int) int {
	if l, ok := d.lines[key]; ok {
		return l
	}
	return fallback
}

// entry is one key of a mapping and its value, as written.
type entry struct{ key, val *yaml.Node }

// mapping is a YAML mapping whose keys have been checked against the schema:
// no unknown keys, no duplicates, merge keys (<<) applied.
type mapping struct {
	d     *decoder
	path  string   // key path of the mapping; "" at the top level
	line  int      // where the mapping is introduced, for missing keys
	known []string // allowed keys; nil allows any key
	vals  map[string]entry
	order []string // keys in the order they were met
	// state tracks the mappings merged in, so that a merge cycle is an
	// error and a mapping merged twice is walked once.
	state map[*yaml.Node]int
}

// Values of mapping.state; the zero value is "not met yet".
const (
	collecting = 1
	collected  = 2
)

// mapping checks n against the keys known at path. A missing or null n is
// an empty mapping; line is then where missing keys get reported.
func (d *decoder) mapping(n *yaml.Node, path string, line int, known []string) *mapping {
	m := &mapping{d: d, path: path, line: line, known: known,
		vals: map[string]entry{}, state: map[*yaml.Node]int{}}
	n = resolve(n)
	if d.err != nil || n == nil || isNull(n) {
		return m
	}
	if n.Kind != yaml.MappingNode {
		what := "must be"
		if path == "" {
			what = "the file must be"
		}
		d.fail(n.Line, path, "%s a mapping with the keys %s, not %s", what, m.knownList(), describe(n))
		return m
	}
	m.collect(n)
	return m
}

// collect adds the keys of n that are not set yet. Keys written in a
// mapping win over keys it merges in, and earlier merges win over later
// ones, as the YAML merge key type (yaml.org/type/merge.html) says.
func (m *mapping) collect(n *yaml.Node) {
	switch m.state[n] {
	case collecting:
		m.d.fail(n.Line, m.path, "merge key (<<) makes a mapping include itself")
		return
	case collected:
		return // merging the same mapping again adds nothing
	}
	m.state[n] = collecting
	defer func() { m.state[n] = collected }()

	firstLine := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			m.d.fail(k.Line, m.path, "keys must be plain names, not %s", describe(k))
			return
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		name := k.Value
		if first, dup := firstLine[name]; dup {
			m.d.fail(k.Line, m.child(name), "duplicate key %q (first set on line %d); keep only one", name, first)
			return
		}
		firstLine[name] = k.Line
		if m.known != nil && !slices.Contains(m.known, name) {
			m.unknown(k)
			return
		}
		if _, set := m.vals[name]; !set {
			m.vals[name] = entry{k, v}
			m.order = append(m.order, name)
		}
	}
	for _, v := range merges {
		v = resolve(v)
		switch {
		case v != nil && v.Kind == yaml.MappingNode:
			m.collect(v)
		case v != nil && v.Kind == yaml.SequenceNode:
			for _, item := range v.Content {
				if item = resolve(item); item == nil || item.Kind != yaml.MappingNode {
					m.d.fail(v.Line, m.path, "merge key (<<) must list mappings, such as [*defaults]")
					return
				}
				m.collect(item)
			}
		default:
			line := n.Line
			if v != nil {
				line = v.Line
			}
			m.d.fail(line, m.path, "merge key (<<) must name a mapping, such as <<: *defaults")
			return
		}
	}
}

func (m *mapping) unknown(k *yaml.Node) {
	where := "in " + m.path
	if m.path == "" {
		where = "at the top level"
	}
	msg := fmt.Sprintf("unknown key %q %s (known keys: %s)", k.Value, where, m.knownList())
	if s := closest(k.Value, m.known); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	m.d.fail(k.Line, m.child(k.Value), "%s", msg)
}

func (m *mapping) knownList() string { return strings.Join(m.known, ", ") }

func (m *mapping) child(key string) string {
	if m.path == "" {
		return key
	}
	return m.path + "." + key
}

// get returns key's value with aliases followed, or nil when the key is
// absent or null: a key left empty takes its default.
func (m *mapping) get(key string) *yaml.Node {
	e, ok := m.vals[key]
	if m.d.err != nil || !ok {
		return nil
	}
	m.d.lines[m.child(key)] = e.key.Line
	v := resolve(e.val)
	if v == nil || isNull(v) {
		return nil
	}
	return v
}

// fail reports a problem with key's value, on the line of the key.
func (m *mapping) fail(key, format string, args ...any) {
	line := m.line
	if e, ok := m.vals[key]; ok {
		line = e.key.Line
	}
	m.d.fail(line, m.child(key), format, args...)
}

// sub returns key's value as a nested mapping with the known keys.
func (m *mapping) sub(key string, known []string) *mapping {
	line := m.line
	if e, ok := m.vals[key]; ok {
		line = e.key.Line
	}
	return m.d.mapping(m.get(key), m.child(key), line, known)
}

// scalar returns key's value as written, and false when it is absent or
// null or not a single value (then reported as not being want).
func (m *mapping) scalar(key, want string) (string, bool) {
	v := m.get(key)
	if v == nil {
		return "", false
	}
	if v.Kind != yaml.ScalarNode {
		m.fail(key, "must be %s, not %s", want, describe(v))
		return "", false
	}
	return v.Value, true
}

func (m *mapping) str(key string, dst *string) {
	if s, ok := m.scalar(key, "a string"); ok {
		*dst = s
	}
}

func (m *mapping) enum(key string, dst *string, allowed ...string) {
	want := "one of " + strings.Join(allowed, ", ")
	s, ok := m.scalar(key, want)
	if !ok {
		return
	}
	if !slices.Contains(allowed, s) {
		m.fail(key, "must be %s (not %q)", want, s)
		return
	}
	*dst = s
}

// parsed sets *dst to parse's reading of key's value. want names the kind
// of value, for a key set to a list or mapping; parse's error is the
// message for a malformed one.
func parsed[T any](m *mapping, key string, dst *T, want string, parse func(string) (T, error)) {
	s, ok := m.scalar(key, want)
	if !ok {
		return
	}
	v, err := parse(s)
	if err != nil {
		m.fail(key, "%v", err)
		return
	}
	*dst = v
}

// integer sets *dst and reports true when key holds a whole number from min
// to max. Quoted numbers are strings in YAML and do not count.
func (m *mapping) integer(key string, dst *int, min, max int64) bool {
	v := m.get(key)
	if v == nil {
		return false
	}
	var n int64
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&n) != nil || n < min || n > max {
		if max == maxCount {
			m.fail(key, "must be a whole number, %d or more", min)
		} else {
			m.fail(key, "must be a whole number from %d to %d", min, max)
		}
		return false
	}
	*dst = int(n)
	return true
}

// maxCount bounds counts that have no natural limit; it fits an int on
// every platform Go supports.
const maxCount = 1<<31 - 1

func (m *mapping) boolean(key string, dst *bool) {
	v := m.get(key)
	if v == nil {
		return
	}
	var b bool
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&b) != nil {
		m.fail(key, "must be true or false")
		return
	}
	*dst = b
}

// list sets *dst to key's list of non-empty strings, nil for []. check,
// if not nil, returns what is wrong with one item, or "".
func (m *mapping) list(key string, dst *[]string, example string, check func(string) string) {
	v := m.get(key)
	if v == nil {
		return
	}
	if v.Kind != yaml.SequenceNode {
		m.fail(key, "must be a list of strings, such as %s", example)
		return
	}
	out := make([]string, 0, len(v.Content))
	for i, item := range v.Content {
		path := fmt.Sprintf("%s[%d]", m.child(key), i)
		line := item.Line
		item = resolve(item)
		switch {
		case item == nil || item.Kind != yaml.ScalarNode || isNull(item):
			m.d.fail(line, path, "must be a string, not %s", describe(item))
			return
		case item.Value == "":
			m.d.fail(line, path, "must not be empty")
			return
		}
		if check != nil {
			if msg := check(item.Value); msg != "" {
				m.d.fail(line, path, "%s", msg)
				return
			}
		}
		out = append(out, item.Value)
	}
	*dst = nil
	if len(out) > 0 {
		*dst = out
	}
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	// The parser never anchors an alias, so one step is enough; the bound
	// only guards against a malformed tree.
	for i := 0; i < 4 && n != nil && n.Kind == yaml.AliasNode; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of a value for "must be X, not Y" messages.
func describe(n *yaml.Node) string {
	switch {
	case n == nil || isNull(n):
		return "empty"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "a YAML document"
}

// closest returns the known key within two edits of key, for "did you
// mean" hints; "" when there is none or the best is a tie.
func closest(key string, known []string) string {
	best, bestDist, tie := "", 3, false
	for _, k := range known {
		switch d := editDistance(strings.ToLower(key), k); {
		case d < bestDist:
			best, bestDist, tie = k, d, false
		case d == bestDist:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 {
		return len(a) // far from every key; spares the quadratic table
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
