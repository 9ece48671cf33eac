package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLeak_MarkerTokenAppearsNowhere runs the whole flow and the operator
// commands with debug logging, collecting every byte finchconnect emits —
// logs, HTTP responses and pages, metrics, command output, the store's
// files — and checks that the connection's token (the marker) appears only
// where `token get -reveal` prints it.
func TestLeak_MarkerTokenAppearsNowhere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app := start(t, nil, "-addr", "127.0.0.1:0", "-data-dir", dir, "-log-level", "debug", "-log-format", "json")
	var seen bytes.Buffer // everything finchconnect showed anyone
	b := newBrowser(t)
	get := func(path string) {
		status, loc, body := b.do("GET", app.url+path, nil)
		seen.WriteString(loc)
		seen.WriteString(body)
		if status >= 500 {
			t.Errorf("GET %s = %d", path, status)
		}
	}

	cb := connectThroughSandbox(t, b, app.url, "leak-1")
	status, loc, body := b.do("GET", cb, nil)
	seen.WriteString(loc + body)
	if status != http.StatusSeeOther {
		t.Fatalf("callback = %d; body:\n%s", status, body)
	}
	id := strings.TrimPrefix(loc, "/connections/")
	for _, p := range []string{"/", loc, loc + "?offset=10", "/healthz", "/readyz", "/metrics", "/connections/nope", "/callback?code=x&state=y"} {
		get(p)
	}
	// Refresh the callback: the duplicate path must not leak either.
	_, loc2, body2 := b.do("GET", cb, nil)
	seen.WriteString(loc2 + body2)

	env := func(string) string { return "" }
	for _, args := range [][]string{
		{"token", "list", "-data-dir", dir},
		{"token", "list", "-json", "-data-dir", dir},
		{"token", "get", id, "-data-dir", dir},
		{"token", "get", "-json", id, "-data-dir", dir},
		{"keys", "status", "-data-dir", dir},
	} {
		var out, errOut bytes.Buffer
		err := run(t.Context(), append([]string{"finchconnect"}, args...), env, nil, &out, &errOut)
		if err != nil {
			t.Errorf("finchconnect %v: %v", args, err)
		}
		seen.Write(out.Bytes())
		seen.Write(errOut.Bytes())
	}

	// The one sanctioned way out.
	var revealed, warn bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "token", "get", "-reveal", id, "-data-dir", dir}, env, nil, &revealed, &warn); err != nil {
		t.Fatal(err)
	}
	marker := strings.TrimSpace(revealed.String())
	if len(marker) < 32 {
		t.Fatalf("token get -reveal printed %q, want a token", marker)
	}
	seen.Write(warn.Bytes())

	if err := app.stop(); err != nil {
		t.Fatal(err)
	}
	seen.WriteString(app.stdout.String())
	seen.WriteString(app.stderr.String())
	if !strings.Contains(app.stderr.String(), `"path":"/callback"`) {
		t.Fatalf("the debug log has no callback line; the scan would prove nothing:\n%s", app.stderr.String())
	}
	if bytes.Contains(seen.Bytes(), []byte(marker)) {
		i := bytes.Index(seen.Bytes(), []byte(marker))
		lo := max(0, i-200)
		t.Errorf("the token appears in finchconnect's output, near:\n%s", seen.Bytes()[lo:i])
	}

	// Nor is it in the store's files (the sandbox's own state file is
	// Finch's side of the world and holds its tokens by design).
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || filepath.Base(path) == "sandbox.json" {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		raw, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, []byte(marker)) {
			t.Errorf("%s contains the plaintext token", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
