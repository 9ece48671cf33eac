package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// privateRedis runs a redis-server of the test's own on a free port, with
// every write fsynced to an append-only file, so the test can kill it and
// start it again without touching the shared Redis.
type privateRedis struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; .ci/run installs it")
		}
		t.Skip("redis-server is not installed; the store-outage test needs one of its own")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &privateRedis{t: t, bin: bin, dir: t.TempDir(), port: port}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatal("the private redis-server did not start")
}

func (r *privateRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// TestOutage_StoreDownDuringCallbacks stops the store in the middle of a
// burst of callbacks and starts it again: every token Finch exchanged ends
// up in the store (through the journal if need be), readyz reports the
// outage, and recovers.
func TestOutage_StoreDownDuringCallbacks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a private redis-server and a store outage; skipped with -short")
	}
	rds := startPrivateRedis(t)
	sb := start(t, nil, "sandbox", "-addr", "127.0.0.1:0")
	var key bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "keygen"}, nil, nil, &key, io.Discard); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FINCH_CLIENT_ID": "sandbox-client-id", "FINCH_CLIENT_SECRET": "sandbox-client-secret",
		"FINCH_BASE_URL": sb.url, "FINCHCONNECT_KEYS": strings.TrimSpace(key.String()),
		"FINCHCONNECT_STORE": rds.url(), "FINCHCONNECT_CONNECT_LIMIT": "0", "FINCHCONNECT_CALLBACK_LIMIT": "0",
		"FINCHCONNECT_RECOVER_AFTER": "2s",
	}
	app := start(t, env, "-addr", "127.0.0.1:0", "-data-dir", t.TempDir())

	const n = 40
	b := newBrowser(t)
	callbacks := make([]string, n)
	for i := range n {
		callbacks[i] = connectThroughSandbox(t, b, app.url, fmt.Sprintf("outage-%d", i))
	}

	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i, cb := range callbacks {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 25 * time.Millisecond) // spread over the outage
			status, _, _ := b.do("GET", cb, nil)
			statuses[i] = status
		})
	}
	time.Sleep(300 * time.Millisecond)
	rds.kill()
	sawOutage := false
	for range 20 {
		res, err := http.Get(app.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusServiceUnavailable {
				sawOutage = true
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	rds.start()
	wg.Wait()
	if !sawOutage {
		t.Error("readyz never reported the store outage")
	}

	// The journal is replayed and abandoned callbacks finished; readyz
	// comes back to 200.
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(app.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz did not recover after the store came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Give the recovery loop a pass over staged entries.
	time.Sleep(3 * time.Second)

	stats := getStats(t, sb.url)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "token", "list", "-json"}, func(k string) string { return env[k] }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	stored := strings.Count(out.String(), `"connection_id"`)
	if stored != stats.TokenExchanges {
		t.Errorf("Finch exchanged %d codes, the store holds %d connections after the outage", stats.TokenExchanges, stored)
	}
	if stats.TokenExchanges == 0 {
		t.Error("no callback reached Finch; the test proved nothing")
	}
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	t.Logf("callback answers during the outage: %v; exchanged %d, stored %d", counts, stats.TokenExchanges, stored)
}
