package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServe_Sync: serve (SQLite, its built-in sandbox) syncs a newly
// connected employer at once: its change feed lists the employer's
// people as added, /metrics counts the connection as synced, and
// `sync status` shows its last complete sync; disconnecting it shreds the
// records, so its feed is empty again.
func TestServe_Sync(t *testing.T) {
	t.Parallel() // its own processes, ports and folder
	dir := t.TempDir()
	app := start(t, nil, "-addr", "127.0.0.1:0", "-data-dir", dir)
	b := newBrowser(t)
	_, loc, _ := b.do("GET", connectThroughSandbox(t, b, app.url, "sync-1"), nil)
	id := strings.TrimPrefix(loc, "/connections/")
	var key bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "apikey", "create", "-scope", "write", "-name", "sync test", "-data-dir", dir},
		func(string) string { return "" }, nil, &key, io.Discard); err != nil {
		t.Fatal(err)
	}
	call := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, app.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(key.String()))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	type feed struct {
		Data []struct {
			Kind, Op string
		} `json:"data"`
	}
	var f feed
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) { // polling for the backfill, not a TTL
		status, body := call("GET", "/v1/connections/"+id+"/changes?limit=500")
		if status != http.StatusOK {
			t.Fatalf("GET changes = %d %s", status, body)
		}
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			t.Fatal(err)
		}
		if len(f.Data) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new connection was not synced within 30 s; log:\n%s", app.stderr.String())
		}
	}
	added := map[string]int{}
	for _, c := range f.Data {
		if c.Op != "added" {
			t.Errorf("a first sync reported %s %s, want only additions", c.Op, c.Kind)
		}
		added[c.Kind]++
	}
	if added["company"] != 1 || added["directory"] == 0 {
		t.Errorf("the first sync added %v, want the company and the directory", added)
	}

	// The run's status is recorded just after its commit made the feed
	// visible: poll for it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polling for a condition, not a TTL
		_, _, metrics := b.do("GET", app.url+"/metrics", nil)
		if strings.Contains(metrics, `finchconnect_sync_connections{state="synced"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics does not count the connection as synced:\n%s", grepLines(metrics, "finchconnect_sync"))
		}
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "sync", "status", "-data-dir", dir}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if line := grepLines(out.String(), id); !strings.Contains(line, "sync-1") || strings.Contains(line, "never") {
		t.Errorf("sync status for the synced connection: %q\n%s", line, out.String())
	}

	if status, body := call("DELETE", "/v1/connections/"+id); status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", status, body)
	}
	if status, _ := call("GET", "/v1/connections/"+id+"/changes"); status != http.StatusNotFound {
		t.Errorf("the feed of a disconnected connection = %d, want 404", status)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
