package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestMigrate_Command moves the demo's store to another SQLite file with
// `finchconnect migrate`, runs it again (nothing to copy), and opens the
// connection from the copy.
func TestMigrate_Command(t *testing.T) {
	dir := t.TempDir()
	app := start(t, nil, "-addr", "127.0.0.1:0", "-data-dir", dir)
	b := newBrowser(t)
	_, loc, _ := b.do("GET", connectThroughSandbox(t, b, app.url, "mig-1"), nil)
	id := strings.TrimPrefix(loc, "/connections/")
	if err := app.stop(); err != nil {
		t.Fatal(err)
	}
	from := "sqlite://" + filepath.Join(dir, "finchconnect.db")
	to := "sqlite://" + filepath.Join(t.TempDir(), "copy.db")
	for i, want := range []string{"RowsCopied:1", "RowsCopied:0"} {
		var out, errOut bytes.Buffer
		if err := run(t.Context(), []string{"finchconnect", "migrate", "-from", from, "-to", to}, func(string) string { return "" }, nil, &out, &errOut); err != nil {
			t.Fatalf("migrate #%d: %v\n%s", i+1, err, errOut.String())
		}
		if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "Verified:1") {
			t.Errorf("migrate #%d printed %q, want %s and Verified:1", i+1, out.String(), want)
		}
		if !strings.Contains(errOut.String(), "connections: 1/1") {
			t.Errorf("migrate #%d progress = %q, want a connections line", i+1, errOut.String())
		}
	}
	var tok bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "token", "get", "-reveal", "-store", to, "-data-dir", dir, id}, func(string) string { return "" }, nil, &tok, &bytes.Buffer{}); err != nil || len(strings.TrimSpace(tok.String())) < 32 {
		t.Errorf("the copied connection does not open with the vault's key: %v", err)
	}
}
