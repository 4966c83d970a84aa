package verify_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestVerifyImports keeps the package on the engine's side of the
// adapters: it reads through its interfaces and never imports go-imap,
// the index or the Maildir package itself.
func TestVerifyImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		for _, banned := range []string{"github.com/emersion/", "/store", "/maildir", "/imapremote"} {
			if strings.Contains(imp, banned) {
				t.Errorf("package verify imports %s", imp)
			}
		}
	}
}
