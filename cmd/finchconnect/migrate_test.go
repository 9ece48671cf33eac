package main

import (
	"bytes"
	"encoding/json"
	"io"
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
	for i, want := range []int{1, 0} {
		var out, errOut bytes.Buffer
		args := []string{"finchconnect", "migrate", "-json", "-from", from, "-to", to}
		if i > 0 {
			// The second pass copies into a store that holds connections:
			// without a terminal it needs -yes, and changes nothing without.
			if err := run(t.Context(), args, func(string) string { return "" }, nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "-yes") {
				t.Fatalf("a second pass without -yes = %v, want a refusal naming -yes", err)
			}
			args = append(args, "-yes")
		}
		if err := run(t.Context(), args, func(string) string { return "" }, nil, &out, &errOut); err != nil {
			t.Fatalf("migrate #%d: %v\n%s", i+1, err, errOut.String())
		}
		var sum migrateSummary
		if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum.Connections != 1 || sum.ConnectionsCopied != want || sum.ConnectionsChecked != 1 {
			t.Errorf("migrate -json #%d printed %q (%v), want 1 connection, %d copied, 1 verified", i+1, out.String(), err, want)
		}
		if !strings.Contains(errOut.String(), "connections: 1/1") {
			t.Errorf("migrate #%d progress = %q, want a connections line", i+1, errOut.String())
		}
	}
	var table bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "migrate", "-from", from, "-to", to}, func(string) string { return "" }, fakeTTY{strings.NewReader("overwrite\n")}, &table, io.Discard); err != nil ||
		!regexpMatch(`(?m)^connections\s+1\s+0\s+1\s+1$`, table.String()) || strings.Contains(table.String(), "{") {
		t.Errorf("migrate's summary = %v\n%s; want a table: 1 connection in the source, 0 copied, 1 already there, 1 verified", err, table.String())
	}
	var tok bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "token", "get", "-reveal", "-store", to, "-data-dir", dir, id}, func(string) string { return "" }, nil, &tok, &bytes.Buffer{}); err != nil || len(strings.TrimSpace(tok.String())) < 32 {
		t.Errorf("the copied connection does not open with the vault's key: %v", err)
	}
}
