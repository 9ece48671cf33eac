package metrics_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/metrics"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/google/go-cmp/cmp"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestMetrics(t *testing.T) {
	m := metrics.New()
	m.Callback("connected", 20*time.Millisecond)
	m.Callback("duplicate", time.Millisecond)
	m.Callback("duplicate", time.Millisecond)

	finch := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/employer/company" {
			w.Write([]byte("{}"))
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer finch.Close()
	c := &http.Client{Transport: m.Transport(nil)}
	for _, p := range []string{"/employer/company", "/employer/company", "/jobs/automated/4ab7f2c9-1d2e-4f3a-9b8c-7d6e5f4a3b2c"} {
		res, err := c.Get(finch.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}

	b := m.Backend(tokenstore.NewMemory())
	if _, err := b.GetRow(t.Context(), "missing"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Fatal(err)
	}
	b.Claim(t.Context(), "k", []byte("v"), 0)
	m.Gauge("finchconnect_outbox_depth", "Events waiting.", func() float64 { return 7 })
	m.Sweep(3, 1, true)

	out := scrape(t, m)
	for _, want := range []string{
		`finchconnect_callbacks_total{outcome="connected"} 1`,
		`finchconnect_callbacks_total{outcome="duplicate"} 2`,
		`finchconnect_finch_requests_total{route="GET /employer/company",status="200"} 2`,
		`finchconnect_finch_requests_total{route="GET /jobs/automated/:id",status="401"} 1`,
		`finchconnect_store_operation_duration_seconds_count{op="get_row"} 1`,
		`finchconnect_store_operation_duration_seconds_count{op="claim"} 1`,
		`finchconnect_outbox_depth 7`,
		`finchconnect_sweep_checked_total 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(out, `finchconnect_store_errors_total{op="get_row"}`) {
		t.Error("a not-found read was counted as a store error")
	}
}

func TestRoute(t *testing.T) {
	const id = "4ab7f2c9-1d2e-4f3a-9b8c-7d6e5f4a3b2c"
	tests := []struct {
		method, path, want string
	}{
		{"POST", "/auth/token", "POST /auth/token"},
		{"GET", "/introspect", "GET /introspect"},
		{"POST", "/disconnect", "POST /disconnect"},
		{"POST", "/disconnect-entity", "POST /disconnect-entity"},
		{"POST", "/connect/sessions", "POST /connect/sessions"},
		{"POST", "/connect/sessions/reauthenticate", "POST /connect/sessions/reauthenticate"},
		{"GET", "/providers", "GET /providers"},
		{"GET", "/employer/company", "GET /employer/company"},
		{"HEAD", "/employer/company", "HEAD /employer/company"},
		{"GET", "/employer/directory", "GET /employer/directory"},
		{"POST", "/employer/individual", "POST /employer/individual"},
		{"POST", "/employer/employment", "POST /employer/employment"},
		{"GET", "/employer/payment", "GET /employer/payment"},
		{"POST", "/employer/pay-statement", "POST /employer/pay-statement"},
		{"GET", "/employer/pay-groups/" + id, "GET /employer/pay-groups/:id"},
		{"GET", "/employer/documents/" + id, "GET /employer/documents/:id"},
		{"PUT", "/employer/pay-statement-item/rule/" + id, "PUT /employer/pay-statement-item/rule/:id"},
		{"GET", "/employer/benefits", "GET /employer/benefits"},
		{"GET", "/employer/benefits/meta", "GET /employer/benefits/meta"},
		{"POST", "/employer/benefits/register", "POST /employer/benefits/register"},
		{"GET", "/employer/benefits/" + id, "GET /employer/benefits/:id"},
		{"GET", "/employer/benefits/short", "GET /employer/benefits/:id"},
		{"POST", "/employer/benefits/" + id + "/individuals", "POST /employer/benefits/:id/individuals"},
		{"GET", "/employer/benefits/" + id + "/enrolled", "GET /employer/benefits/:id/enrolled"},
		{"DELETE", "/employer/benefits/" + id + "/individuals", "DELETE /employer/benefits/:id/individuals"},
		{"POST", "/jobs/automated", "POST /jobs/automated"},
		{"GET", "/jobs/automated/" + id, "GET /jobs/automated/:id"},
		{"GET", "/jobs/manual/" + id, "GET /jobs/manual/:id"},
		{"POST", "/forward", "POST /forward"},
		{"POST", "/sandbox/connections", "POST /sandbox/connections"},
		{"PUT", "/sandbox/connections/accounts", "PUT /sandbox/connections/accounts"},
		{"PUT", "/sandbox/individual/" + id, "PUT /sandbox/individual/:id"},
		{"GET", "/sandbox/jobs/configuration", "GET /sandbox/jobs/configuration"},
		// A BaseURL path (the demo mounts its sandbox at /finch) is not
		// part of the route.
		{"POST", "/finch/auth/token", "POST /auth/token"},
		{"GET", "/api/v2/finch/jobs/automated/" + id, "GET /jobs/automated/:id"},
		// Everything else is one route per method.
		{"GET", "/employer/aaaaaaaa", "GET other"},
		{"GET", "/employer/0123456789abcdefTAIL", "GET other"},
		{"GET", "/employer/company/extra", "GET other"},
		{"GET", "/employer/company/", "GET other"},
		{"GET", "/employer//company", "GET other"},
		{"GET", "/employer/benefits/" + id + "/anything", "GET other"},
		{"GET", "/jobs/automated/" + id + "/" + id, "GET other"},
		{"GET", "/employer/aaaa/employer/company", "GET other"},
		{"GET", "/nothing/known", "GET other"},
		{"GET", "/", "GET other"},
		{"GET", "", "GET other"},
		{"PATCH", "/employer/" + id, "PATCH other"},
		{"BREW", "/employer/company", "OTHER /employer/company"},
		{"get", "/employer/company", "OTHER /employer/company"},
	}
	for _, tt := range tests {
		if got := metrics.Route(tt.method, tt.path); got != tt.want {
			t.Errorf("Route(%q, %q) = %q; want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

// routeLabel finds the route label values of the Finch request metrics in
// an exposition.
var routeLabel = regexp.MustCompile(`finchconnect_finch_request[a-z_]*\{[^}]*route="([^"]*)"`)

// TestTransport_BoundedRoutes sends a thousand distinct paths that are no
// Finch route (what any read-only key can ask the /v1 proxy for) and
// checks that they add one route label, not a thousand.
func TestTransport_BoundedRoutes(t *testing.T) {
	m := metrics.New()
	finch := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	defer finch.Close()
	c := &http.Client{Transport: m.Transport(nil)}
	get := func(p string) {
		t.Helper()
		res, err := c.Get(finch.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	get("/employer/company")
	get("/jobs/automated/4ab7f2c9-1d2e-4f3a-9b8c-7d6e5f4a3b2c")
	for i := range 1000 {
		// Letters only, short, and long hex with a tail: each escaped the
		// old id pattern.
		get(fmt.Sprintf("/employer/%c%c%c%c", 'a'+i/676%26, 'a'+i/26%26, 'a'+i%26, 'a'+i/17576%26))
		if i%100 == 0 {
			get(fmt.Sprintf("/employer/0123456789abcdef%d/x", i))
			get(fmt.Sprintf("/jobs/automated/%dTAIL/more", i))
		}
	}

	out := scrape(t, m)
	routes := map[string]bool{}
	for _, sm := range routeLabel.FindAllStringSubmatch(out, -1) {
		routes[sm[1]] = true
	}
	want := map[string]bool{"GET /employer/company": true, "GET /jobs/automated/:id": true, "GET other": true}
	if len(routes) > len(want) {
		t.Fatalf("got %d distinct route labels from 1,022 requests; want %d", len(routes), len(want))
	}
	if diff := cmp.Diff(want, routes); diff != "" {
		t.Errorf("route labels (-want +got):\n%s", diff)
	}
	if want := `finchconnect_finch_requests_total{route="GET other",status="404"} 1020`; !strings.Contains(out, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

func TestEventCounters(t *testing.T) {
	m := metrics.New()
	m.EventDelivered()
	m.EventDropped()
	m.EventDropped()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"finchconnect_events_delivered_total 1", "finchconnect_events_dropped_total 2"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
