package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeys_RotateUnderLoad rotates the vault's key while a server keeps
// serving company pages and new callbacks: no request fails, every record
// ends up under the new key, and only then can the old key be retired.
func TestKeys_RotateUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app := start(t, nil, "-addr", "127.0.0.1:0", "-data-dir", dir, "-keys-reload", "100ms", "-connect-limit", "0", "-callback-limit", "0",
		"-demo-rate-limits", "0") // a load of page reads, past Finch's 20 a minute
	b := newBrowser(t)
	var ids []string
	for i := range 8 {
		_, loc, _ := b.do("GET", connectThroughSandbox(t, b, app.url, fmt.Sprintf("rot-%d", i)), nil)
		ids = append(ids, strings.TrimPrefix(loc, "/connections/"))
	}
	cmd := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(t.Context(), append([]string{"finchconnect"}, args...), func(string) string { return "" }, nil, &out, &errOut)
		return out.String() + errOut.String(), err
	}

	// Load: company pages of existing connections and brand-new callbacks.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, callbacks, failures atomic.Int64
	var firstFailure atomic.Value
	fail := func(msg string) {
		failures.Add(1)
		firstFailure.CompareAndSwap(nil, msg)
	}
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[(i+w)%len(ids)]
				status, _, body := b.do("GET", app.url+"/connections/"+id, nil)
				if status != http.StatusOK || !strings.Contains(body, `id="legal-name"`) {
					fail(fmt.Sprintf("GET /connections/%s = %d", id, status))
				}
				reads.Add(1)
			}
		})
	}
	wg.Go(func() {
		bb := newBrowser(t)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			status, loc, _ := bb.do("GET", connectThroughSandbox(t, bb, app.url, fmt.Sprintf("rot-load-%d", i)), nil)
			if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/connections/") {
				fail(fmt.Sprintf("callback during rotation = %d", status))
			}
			callbacks.Add(1)
		}
	})

	out, err := cmd("keys", "rotate", "-data-dir", dir, "-reload-wait", "500ms", "-rate", "200")
	time.Sleep(200 * time.Millisecond) // a little load after the re-seal too
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	if n := failures.Load(); n > 0 {
		t.Errorf("%d requests failed during the rotation; first: %v", n, firstFailure.Load())
	}
	if !regexpMatch(`(?m)^primary key\s+2$`, out) || !regexpMatch(`(?m)^records re-sealed\s+\d+$`, out) || strings.Contains(out, "{") {
		t.Errorf("keys rotate's summary:\n%s\nwant a table with the primary key and the records re-sealed", out)
	}
	if reads.Load() == 0 || callbacks.Load() == 0 {
		t.Fatalf("no load ran during the rotation (reads %d, callbacks %d)", reads.Load(), callbacks.Load())
	}
	t.Logf("during rotation: %d page reads, %d new callbacks", reads.Load(), callbacks.Load())

	status, err := cmd("keys", "status", "-data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !regexpMatch(`(?m)^2\s+primary\s+\d+\s+0$`, status) || !regexpMatch(`(?m)^1\s+read only\s+0\s+0$`, status) {
		t.Errorf("keys status after rotation:\n%s\nwant key 2 primary and no record under key 1", status)
	}
	if trail, err := cmd("audit", "-data-dir", dir); err != nil || !strings.Contains(trail, "token.rotated") || !strings.Contains(trail, "token.exchanged") {
		t.Errorf("audit trail after the rotation (err %v):\n%s\nwant token.exchanged and token.rotated records", err, trail)
	}
	if out, err := cmd("keys", "retire", "-yes", "-id", "1", "-data-dir", dir); err != nil {
		t.Errorf("keys retire -id 1: %v\n%s", err, out)
	}
	// The server keeps working on the rotated file.
	time.Sleep(300 * time.Millisecond)
	if status, _, _ := b.do("GET", app.url+"/connections/"+ids[0], nil); status != http.StatusOK {
		t.Errorf("after retiring the old key GET /connections = %d", status)
	}
}

// TestKeys_RetireRefusesKeyInUse checks the guard: a key that still seals a
// record cannot be retired.
func TestKeys_RetireRefusesKeyInUse(t *testing.T) {
	dir := t.TempDir()
	app := start(t, nil, "-addr", "127.0.0.1:0", "-data-dir", dir)
	b := newBrowser(t)
	b.do("GET", connectThroughSandbox(t, b, app.url, "ret-1"), nil)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "keys", "rotate", "-data-dir", dir, "-reload-wait", "0", "-rewrap-only"}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Add key 2 as read-only only: records stay under key 1.
	path := dir + "/keys"
	if _, err := addKey(path); err != nil {
		t.Fatal(err)
	}
	if err := promoteKey(path, 2); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"finchconnect", "keys", "retire", "-id", "1", "-data-dir", dir}, func(string) string { return "" }, nil, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "still sealed under key 1") {
		t.Errorf("retiring a key in use: err = %v, want a refusal", err)
	}
}
