package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// addFault adds a fault to the sandbox at sandboxURL (its admin API).
func addFault(t *testing.T, sandboxURL, fault string) {
	t.Helper()
	res, err := http.Post(sandboxURL+"/_sandbox/faults", "application/json", strings.NewReader(fault))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /_sandbox/faults %s = %d", fault, res.StatusCode)
	}
}

// waitForExchange waits until the sandbox has received a POST /auth/token
// (it counts a request when it arrives, before any latency fault).
func waitForExchange(t *testing.T, sandboxURL string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(sandboxURL + "/_sandbox/stats")
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Requests map[string]int `json:"requests"`
		}
		if err := decodeJSON(res, &s); err != nil {
			t.Fatal(err)
		}
		if s.Requests["POST /auth/token"] > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the callback never reached the sandbox's POST /auth/token")
}

// TestServe_ShutdownWaitsForSlowExchange stops the server (as SIGTERM does)
// while a callback's exchange at Finch takes longer than -shutdown-timeout:
// when run returns, the token Finch issued must be in the vault and the
// exchange in the audit trail.
func TestServe_ShutdownWaitsForSlowExchange(t *testing.T) {
	t.Parallel()
	sb := start(t, nil, "sandbox", "-addr", "127.0.0.1:0")
	env := finchEnv(t, sb.url, nil)
	getenv := func(k string) string { return env[k] }
	dir := t.TempDir()
	app := start(t, env, "-addr", "127.0.0.1:0", "-data-dir", dir, "-shutdown-timeout", "200ms")

	b := newBrowser(t)
	cb := connectThroughSandbox(t, b, app.url, "slow-1")
	addFault(t, sb.url, `{"route":"POST /auth/token","latency":"1500ms"}`)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		if res, err := b.c.Get(cb); err == nil {
			res.Body.Close()
		}
	}()
	waitForExchange(t, sb.url)

	err := app.stop()
	if err != nil {
		t.Errorf("run returned %v, want nil: the exchange finished and was stored", err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "token", "list", "-json", "-data-dir", dir}, getenv, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), `"connection_id"`); n != 1 {
		t.Errorf("when run returned, the vault held %d connections, want 1: the token Finch issued was lost\nserver log:\n%s", n, app.stderr.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"finchconnect", "audit", "-json", "-data-dir", dir}, getenv, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"token.exchanged"`) {
		t.Errorf("the audit trail lacks the exchange (the audit queue closed under the callback):\n%s", out.String())
	}
	if !strings.Contains(app.stderr.String(), "waiting for callbacks") {
		t.Errorf("the log does not say what shutdown waits for:\n%s", app.stderr.String())
	}
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Error("the callback never got an answer")
	}
	if s := getStats(t, sb.url); s.TokenExchanges != 1 {
		t.Errorf("the sandbox exchanged %d codes, want 1", s.TokenExchanges)
	}
}

// TestMain_SecondSignalForcesExit runs the real binary, interrupts it while
// a callback's exchange is slow (so the graceful shutdown waits), then
// interrupts it again: the second signal must end the process at once.
func TestMain_SecondSignalForcesExit(t *testing.T) {
	t.Parallel() // its own processes, ports and folders; mostly waiting
	if testing.Short() {
		t.Skip("builds a binary and runs a real process; skipped with -short")
	}
	// The crash test's binary: with FINCHCONNECT_FAILPOINT unset its
	// failpoints are off, and one build serves the package.
	bin := buildBinary(t, "failpoints")
	sb := start(t, nil, "sandbox", "-addr", "127.0.0.1:0")
	env := finchEnv(t, sb.url, nil)
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	app := startProc(t, bin, envList, "-addr", "127.0.0.1:0", "-data-dir", t.TempDir())
	b := newBrowser(t)
	cb := connectThroughSandbox(t, b, app.url, "sig-1")
	addFault(t, sb.url, `{"route":"POST /auth/token","latency":"20s","count":1}`)
	go func() {
		if res, err := b.c.Get(cb); err == nil {
			res.Body.Close()
		}
	}()
	waitForExchange(t, sb.url)

	if err := app.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the graceful shutdown is now waiting for the exchange
	select {
	case err := <-app.done:
		app.done <- err
		t.Fatalf("the first interrupt ended the process (%v) although a callback was in flight", err)
	default:
	}
	if err := app.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-app.done:
		app.done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Errorf("after the second interrupt the process exited with %v, want a forced exit", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the process still runs 5 s after the second interrupt\nstderr:\n%s", app.stderr.String())
	}
	if !strings.Contains(app.stderr.String(), "again to force") {
		t.Errorf("the first interrupt did not say how to force the exit; stderr:\n%s", app.stderr.String())
	}
}

// runBriefly runs finchconnect once: a command runs to its end, and a
// server that gets past its checks is stopped as soon as it listens.
func runBriefly(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &stopWriter{onListen: cancel}
	var errOut bytes.Buffer
	err = run(ctx, append([]string{"finchconnect"}, args...), func(k string) string { return env[k] }, nil, out, &errOut)
	return out.buf.String(), errOut.String(), err
}

// stopWriter calls onListen once a "listening on" line has been written.
type stopWriter struct {
	buf      bytes.Buffer
	onListen func()
}

func (w *stopWriter) Write(p []byte) (int, error) {
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), "listening on") {
		w.onListen()
	}
	return n, err
}
