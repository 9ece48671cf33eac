package sandbox_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// on returns a copy of e that reports to t, for use inside subtests.
func (e *env) on(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// TestSandboxDirectory_NonObjectElements: POST /sandbox/directory refuses
// an array whose elements are not all objects with 400 bad_request, and
// the sandbox keeps answering afterwards (a null element once panicked
// while the sandbox's lock was held, hanging every later request).
func TestSandboxDirectory_NonObjectElements(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok, _ := e.sandboxToken()
	tests := []struct {
		name string
		body string
	}{
		{"number", `[1]`},
		{"string", `["x"]`},
		{"nested array", `[[]]`},
		{"not an array", `{"first_name":"A"}`},
		{"null body", `null`},
		{"null after an object", `[{"first_name":"A","last_name":"B"}, null]`},
		{"null element", `[null]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.on(t)
			r := e.call("POST", "/sandbox/directory", "bearer:"+tok, tt.body)
			if r.status != http.StatusBadRequest || r.json(t)["name"] != "bad_request" {
				t.Errorf("POST /sandbox/directory %s = %d %s, want 400 bad_request", tt.body, r.status, r.body)
			}
		})
	}
	// Nothing was added, and the sandbox still answers.
	done := make(chan resp, 1)
	go func() { done <- e.call("GET", "/employer/directory", "bearer:"+tok, nil) }()
	select {
	case r := <-done:
		if got := r.json(t)["paging"].(map[string]any)["count"]; got != float64(3) {
			t.Errorf("directory count after the refused posts = %v, want 3", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sandbox stopped answering after a refused POST /sandbox/directory")
	}
}

// TestClock_Overflow: advancing the clock can never wrap it around; an
// advance that would overflow is refused with 400 and the clock stays put.
func TestClock_Overflow(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	first := e.call("POST", "/_sandbox/clock", "", `{"advance":"2000000h"}`)
	if first.status != http.StatusOK {
		t.Fatalf("first advance = %d %s, want 200", first.status, first.body)
	}
	r := e.call("POST", "/_sandbox/clock", "", `{"advance":"2000000h"}`)
	if r.status != http.StatusBadRequest || r.json(t)["name"] != "bad_request" {
		t.Errorf("second advance = %d %s, want 400 bad_request", r.status, r.body)
	}
	after := e.call("POST", "/_sandbox/clock", "", `{"advance":"0s"}`)
	if got, want := after.json(t)["now"], first.json(t)["now"]; got != want {
		t.Errorf("clock after the refused advance = %v, want %v", got, want)
	}
	// The Go API saturates instead.
	e.sb.Advance(time.Duration(1<<63 - 1))
	e.sb.Advance(time.Duration(1<<63 - 1))
	if got := e.call("POST", "/_sandbox/clock", "", `{"advance":"0s"}`).json(t)["now"].(string); got < first.json(t)["now"].(string) {
		t.Errorf("clock after two maximal Advance calls = %v, went back from %v", got, first.json(t)["now"])
	}
}

// TestFaults_Validation: POST /_sandbox/faults refuses faults the sandbox
// cannot honour (a status that is no HTTP error status, negative counts or
// durations) instead of failing every matching request later.
func TestFaults_Validation(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tests := []struct {
		body string
		want int
	}{
		{`{"route":"GET /providers","status":1000}`, 400},
		{`{"route":"GET /providers","status":99}`, 400},
		{`{"route":"GET /providers","status":200}`, 400},
		{`{"route":"GET /providers","status":429,"count":-1}`, 400},
		{`{"route":"GET /providers","status":429,"retry_after":"-1s"}`, 400},
		{`{"route":"GET /providers","latency":"-1s"}`, 400},
		{`{"route":"GET /providers","status":503,"retry_after":"2562047h47m16.854775807s","count":1}`, 201},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			if r := e.on(t).call("POST", "/_sandbox/faults", "", tt.body); r.status != tt.want {
				t.Errorf("POST /_sandbox/faults = %d %s, want %d", r.status, r.body, tt.want)
			}
		})
	}
	r := e.call("GET", "/providers", "", nil)
	if ra, err := strconv.ParseInt(r.header.Get("Retry-After"), 10, 64); r.status != 503 || err != nil || ra <= 0 {
		t.Errorf("GET /providers under a maximal retry_after = %d, Retry-After %q; want 503 and a positive number", r.status, r.header.Get("Retry-After"))
	}
	e.call("DELETE", "/_sandbox/faults", "", nil)
	if r := e.call("GET", "/providers", "", nil); r.status != http.StatusOK {
		t.Errorf("GET /providers after the refused faults = %d, want 200", r.status)
	}
}

// TestWebhooks_SignedWithWallClock: POST /_sandbox/clock moves the
// sandbox's clock, not the receiver's, so webhooks keep the real time in
// Finch-Timestamp; Finch's SDKs reject one more than 300 s away.
func TestWebhooks_SignedWithWallClock(t *testing.T) {
	const secret = "5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"
	wall := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type hook struct {
		header http.Header
		body   []byte
	}
	got := make(chan hook, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 1<<16)
		n, _ := r.Body.Read(b)
		got <- hook{r.Header.Clone(), b[:n]}
	}))
	t.Cleanup(recv.Close)
	e := newEnv(t, sandbox.Options{WebhookURL: recv.URL, WebhookSecret: secret, Now: func() time.Time { return wall }})
	tok, _ := e.sandboxToken()
	if r := e.call("POST", "/_sandbox/clock", "", `{"advance":"11m"}`); r.status != http.StatusOK {
		t.Fatalf("advance = %d %s", r.status, r.body)
	}
	e.call("PUT", "/sandbox/company", "bearer:"+tok, map[string]any{"legal_name": "Renamed LLC"})
	select {
	case h := <-got:
		ts := h.header.Get("Finch-Timestamp")
		if want := strconv.FormatInt(wall.Unix(), 10); ts != want {
			t.Errorf("Finch-Timestamp = %s, want %s (the wall clock, not the advanced sandbox clock)", ts, want)
		}
		key, _ := base64.StdEncoding.DecodeString(secret)
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(h.header.Get("Finch-Event-Id") + "." + ts + "."))
		mac.Write(h.body)
		if sig, want := h.header.Get("Finch-Signature"), "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)); sig != want {
			t.Errorf("Finch-Signature = %s, want %s", sig, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook arrived")
	}
}
