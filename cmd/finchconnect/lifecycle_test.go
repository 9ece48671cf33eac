package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/webhook"
)

// TestLifecycle_SandboxStatusChangeReachesApp: the sandbox puts a connection
// in reauth and sends Finch's signed webhook; finchconnect verifies it,
// marks the connection, and delivers a signed connection.reauth_required
// event to the app through the outbox — after the app's endpoint was down
// for a while. /metrics shows what happened.
func TestLifecycle_SandboxStatusChangeReachesApp(t *testing.T) {
	t.Parallel() // its own processes, ports and folder; mostly waiting
	const eventsSecret = "YXBwLWV2ZW50cy1zZWNyZXQtZm9yLXRoZS10ZXN0"
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var got []finchconnect.Event
	var refused atomic.Int64
	appEndpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if down.Load() {
			refused.Add(1)
			http.Error(w, "deploying", http.StatusServiceUnavailable)
			return
		}
		if err := webhook.Verify(r.Header, webhook.Finchconnect, []string{eventsSecret}, body, time.Now()); err != nil {
			t.Errorf("event does not verify: %v", err)
		}
		var e finchconnect.Event
		json.Unmarshal(body, &e)
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}))
	defer appEndpoint.Close()

	dir := t.TempDir()
	app := start(t, nil, "-addr", "127.0.0.1:0", "-data-dir", dir, "-events-url", appEndpoint.URL, "-events-secret", eventsSecret)
	b := newBrowser(t)
	_, loc, _ := b.do("GET", connectThroughSandbox(t, b, app.url, "life-1"), nil)
	id := strings.TrimPrefix(loc, "/connections/")

	var tok bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "token", "get", "-reveal", id, "-data-dir", dir}, func(string) string { return "" }, nil, &tok, io.Discard); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", app.url+"/finch/sandbox/connections/accounts", strings.NewReader(`{"connection_status":"reauth"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok.String()))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("PUT /sandbox/connections/accounts: %v %v", err, res.Status)
	}
	res.Body.Close()

	// The webhook updates the stored status.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out bytes.Buffer
		run(t.Context(), []string{"finchconnect", "token", "get", "-json", id, "-data-dir", dir}, func(string) string { return "" }, nil, &out, io.Discard)
		if strings.Contains(out.String(), `"status": "reauth"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stored status never became reauth:\n%s\nserver log:\n%s", out.String(), app.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The app is down for a while: the event waits in the outbox, and
	// is offered (and refused) before the app comes back.
	deadline = time.Now().Add(10 * time.Second)
	for refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no delivery was attempted while the app was down")
		}
		time.Sleep(20 * time.Millisecond) // polling for a condition
	}
	down.Store(false)
	deadline = time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, e := range got {
			if e.Type == finchconnect.EventConnectionReauthRequired && e.ConnectionID == id {
				n++
			}
		}
		mu.Unlock()
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("the app received the reauth event %d times (want once); events: %+v", n, got)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// And the metrics saw it all.
	_, _, metrics := b.do("GET", app.url+"/metrics", nil)
	for _, want := range []string{
		`finchconnect_callbacks_total{outcome="connected"} 1`,
		`finchconnect_finch_requests_total{route="POST /auth/token",status="200"} 1`,
		`finchconnect_events_delivered_total`,
		`finchconnect_events_dropped_total 0`,
		`finchconnect_store_operation_duration_seconds_count{op="claim"}`,
		`finchconnect_outbox_depth`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, strings.TrimSpace(tok.String())) {
		t.Error("/metrics contains the token")
	}
}
