package finchconnect_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocListsEveryPackage keeps the root package comment's list of
// packages complete: every folder with Go code outside bench/ is named in
// doc.go (bench's commands are named together).
func TestDocListsEveryPackage(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata" || path == "bench") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if dir == "." || seen[dir] {
			return nil
		}
		seen[dir] = true
		if !strings.Contains(string(doc), "//   - "+dir+":") && !strings.Contains(string(doc), " "+dir+",") && !strings.Contains(string(doc), " "+dir+":") {
			t.Errorf("doc.go does not list package %s", dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 10 {
		t.Fatalf("found only %d packages; is the walk broken?", len(seen))
	}
}
