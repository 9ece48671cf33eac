package sandbox_test

import (
	"net/http"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestHeaders_RequestIDAndAPIVersion: every response — JSON, HTML, an
// error, an unknown route, an injected fault, the admin API — carries a
// Finch-Request-Id of its own and the Finch-API-Version the sandbox speaks.
func TestHeaders_RequestIDAndAPIVersion(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	code, _ := e.connect(cb, "authorized_simple", "letmein")
	e.sb.InjectFault(sandbox.Fault{Route: "GET /providers", Status: http.StatusServiceUnavailable, Count: 1})
	tests := []struct {
		name, method, path string
		body               any
		wantStatus         int
	}{
		{"fault", "GET", "/providers", nil, http.StatusServiceUnavailable},
		{"json", "GET", "/providers", nil, http.StatusOK},
		{"html", "GET", "/authorize?session=nope", nil, http.StatusBadRequest},
		{"error", "POST", "/auth/token", map[string]any{"client_id": "x", "client_secret": "y", "code": code}, http.StatusUnauthorized},
		{"unknown route", "GET", "/employer/nope", nil, http.StatusNotFound},
		{"admin", "GET", "/_sandbox/stats", nil, http.StatusOK},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(tt.method, tt.path, "", tt.body) // call fails the test without Finch-Request-Id
			if r.status != tt.wantStatus {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, r.status, tt.wantStatus)
			}
			if got := r.header.Get("Finch-API-Version"); got != sandbox.APIVersion {
				t.Errorf("Finch-API-Version = %q, want %q", got, sandbox.APIVersion)
			}
			id := r.header.Get("Finch-Request-Id")
			if prev, dup := seen[id]; dup {
				t.Errorf("Finch-Request-Id %q was also %s's", id, prev)
			}
			seen[id] = tt.name
		})
	}
}
