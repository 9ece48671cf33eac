package metrics_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/metrics"
	"github.com/finchconnect/finchconnect/tokenstore"
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
