package satchel

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The layers of the module, and which way their imports point:
//
//	commands → engines → (the interfaces they declare, which) adapters (satisfy) → shared types
//
// Each package of the module is in exactly one layer; a new package must
// be added here, which is the moment to decide where it belongs.
type layer int

const (
	// shared value types (UID, flags, mailbox state): they import
	// nothing of the module.
	shared layer = iota + 1
	// adapters: the IMAP client, the SQLite index, the Maildir, the
	// notmuch command. They satisfy the engines' interfaces and never
	// import an engine.
	adapter
	// engines decide and act through interfaces they declare: they
	// import no adapter (and so no go-imap).
	engine
	// commands wire configuration, adapters and engines together; only
	// they know the command line and exit codes.
	command
	// testSupport packages serve tests: only _test.go files import them.
	// A program among them (sync/imaptest/gmailserve) is run, never
	// imported: the bench starts it to serve an emulation it may not
	// link.
	testSupport
	// tools are programs beside satchel (benchmarks).
	tool
	// data is the module root: the files the binary embeds.
	data
)

func (l layer) String() string {
	return [...]string{"unclassified", "shared type", "adapter", "engine", "command", "test support", "tool", "data"}[l]
}

// layers places each package, by its directory below the module root.
var layers = map[string]layer{
	"":                          data,
	"sync/mail":                 shared,
	"store":                     adapter,
	"maildir":                   adapter,
	"sync/imapremote":           adapter,
	"sync/imapremote/qresync":   adapter,
	"sync/imapremote/wiretrace": adapter,
	"sync/notmuch":              adapter,
	"sync":                      engine,
	"conflict":                  engine,
	"sync/tagmap":               engine,
	"sync/verify":               engine,
	"sync/restore":              engine,
	"sync/watch":                engine,
	"cmd/satchel":               command,
	"cmd/satchel/config":        command,
	"sync/imaptest":             testSupport,
	"sync/imaptest/gmailserve":  testSupport,
	"maildir/maildirtest":       testSupport,
	"sync/synctest":             testSupport,
	"sync/crashtest":            testSupport,
	"sync/bench":                tool,
}

// leaves list, for a package that must stay a leaf, the only imports
// from outside the standard library it may have.
var leaves = map[string][]string{
	// The configuration loader: the YAML parser, never the engine or
	// go-imap.
	"cmd/satchel/config": {"gopkg.in/yaml.v3"},
}

// pending are breaks known to be there, each with what fixes it. The test
// fails on any other break, and on a pending one that is gone: remove it
// here then, so that it cannot come back.
var pending = map[string]string{}

// TestLayers reads the imports of every non-test Go file of the module
// and fails on each one that points the wrong way.
func TestLayers(t *testing.T) {
	const module = "github.com/satchel-mail/satchel"
	if got := modulePath(t, "go.mod"); got != module {
		t.Fatalf("go.mod names module %q, this test %q", got, module)
	}
	problems, err := checkLayers(".", module, layers, leaves)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if fix, ok := pending[p]; ok {
			t.Logf("pending: %s (fix: %s)", p, fix)
			continue
		}
		t.Error(p)
	}
	for p := range pending {
		if !slices.Contains(problems, p) {
			t.Errorf("no longer broken, remove it from pending: %s", p)
		}
	}
}

// TestLayersFixture runs the same check over testdata/layers, a tree of
// tiny packages laid out as the module is, in which each file breaks one
// rule, and expects every break reported, and nothing else: the check
// above would see a broken import graph.
func TestLayersFixture(t *testing.T) {
	got, err := checkLayers(filepath.Join("testdata", "layers"), "example.com/m", layers, leaves)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`cmd/satchel/config/config.go: package cmd/satchel/config imports github.com/other/lib: it may import the standard library and gopkg.in/yaml.v3 only`,
		`maildir/maildir.go: package maildir (adapter) imports cmd/satchel: nothing outside cmd/ imports a command`,
		`newpkg/new.go: package newpkg is in no layer: add it to layers in layers_test.go`,
		`store/store.go: package store (adapter) imports sync, an engine: adapters satisfy the engines' interfaces and never import them`,
		`sync/imapremote/client.go: package sync/imapremote (adapter) imports sync/verify, an engine: adapters satisfy the engines' interfaces and never import them`,
		`sync/mail/mail.go: package sync/mail (shared type) imports conflict: shared types import nothing of the module`,
		`sync/sync.go: package sync (engine) imports github.com/emersion/go-imap/v2: engines reach the server through the interfaces they declare`,
		`sync/sync.go: package sync (engine) imports store, an adapter: engines take interfaces they declare, which adapters satisfy`,
		`sync/verify/verify.go: package sync/verify (engine) imports sync/imaptest, which is test support: only _test.go files may import it`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("the fixture's breaks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// checkLayers reads the imports of every non-test .go file below root
// (testdata, hidden and _ directories skipped, as the go command skips
// them), the module whose path is module, and returns one line for each
// import that breaks the layering, sorted.
func checkLayers(root, module string, layers map[string]layer, leaves map[string][]string) ([]string, error) {
	var problems []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := path.Dir(rel)
		if pkg == "." {
			pkg = ""
		}
		from, ok := layers[pkg]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: package %s is in no layer: add it to layers in layers_test.go", rel, pkg))
			return nil
		}
		for _, imp := range f.Imports {
			ip, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if msg := checkImport(pkg, from, ip, module, layers, leaves); msg != "" {
				problems = append(problems, rel+": "+msg)
			}
		}
		return nil
	})
	slices.Sort(problems)
	return slices.Compact(problems), err
}

// checkImport says what is wrong with package pkg, of layer from,
// importing ip; "" when nothing is.
func checkImport(pkg string, from layer, ip, module string, layers map[string]layer, leaves map[string][]string) string {
	name := pkg
	if name == "" {
		name = path.Base(module)
	}
	who := fmt.Sprintf("package %s (%s) imports", name, from)
	if allowed, ok := leaves[pkg]; ok {
		first, _, _ := strings.Cut(ip, "/")
		if strings.Contains(first, ".") && !slices.Contains(allowed, ip) {
			return fmt.Sprintf("package %s imports %s: it may import the standard library and %s only", pkg, ip, strings.Join(allowed, ", "))
		}
	}
	if ip != module && !strings.HasPrefix(ip, module+"/") {
		if from == engine && strings.HasPrefix(ip, "github.com/emersion/go-imap") {
			return fmt.Sprintf("%s %s: engines reach the server through the interfaces they declare", who, ip)
		}
		return ""
	}
	dep := strings.TrimPrefix(strings.TrimPrefix(ip, module), "/")
	to := layers[dep]
	switch {
	case (dep == "cmd" || strings.HasPrefix(dep, "cmd/")) && !(pkg == "cmd" || strings.HasPrefix(pkg, "cmd/")):
		return fmt.Sprintf("%s %s: nothing outside cmd/ imports a command", who, dep)
	case to == testSupport && from != testSupport:
		return fmt.Sprintf("%s %s, which is test support: only _test.go files may import it", who, dep)
	case from == shared:
		return fmt.Sprintf("%s %s: shared types import nothing of the module", who, dep)
	case from == adapter && to == engine:
		return fmt.Sprintf("%s %s, an engine: adapters satisfy the engines' interfaces and never import them", who, dep)
	case from == engine && to == adapter:
		return fmt.Sprintf("%s %s, an adapter: engines take interfaces they declare, which adapters satisfy", who, dep)
	case from != command && from != tool && to == tool:
		return fmt.Sprintf("%s %s, a tool", who, dep)
	}
	return ""
}

// modulePath reads the module path from a go.mod file.
func modulePath(t *testing.T, gomod string) string {
	t.Helper()
	data, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("%s names no module", gomod)
	return ""
}
