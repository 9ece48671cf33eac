package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMeasure: only 200 company reads within [from, to) count towards the
// budget used; every 429 the sandbox answered counts, whatever the path.
func TestMeasure(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	from, to := t0.Add(20*time.Second), t0.Add(80*time.Second)
	rs := []seen{
		{"/employer/company", 200, t0},                        // warm-up
		{"/employer/company", 200, from},                      // counted
		{"/employer/company", 200, to.Add(-time.Millisecond)}, // counted
		{"/employer/company", 200, to},                        // after
		{"/employer/company", 429, from.Add(time.Second)},
		{"/introspect", 200, from},
		{"/introspect", 429, from},
	}
	var p phase
	p.measure(rs, from, to)
	if p.companyAdmitted != 2 || p.sb429 != 2 || p.introspects != 2 || p.introspect429 != 1 {
		t.Errorf("measure = admitted %d, 429s %d, introspects %d (429 %d); want 2, 2, 2 (1)", p.companyAdmitted, p.sb429, p.introspects, p.introspect429)
	}
}

// TestDrive: the offered load is open loop (a slow answer does not hold
// back the next request), every request is counted once with its status,
// and only 200s have latencies.
func TestDrive(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		time.Sleep(300 * time.Millisecond) // slower than the gap between requests
	}))
	defer srv.Close()
	start := time.Now()
	lat, statuses := drive(t.Context(), 20, 500*time.Millisecond, func(int) (*http.Request, error) {
		return http.NewRequest("GET", srv.URL, nil)
	})
	if len(statuses) != 10 {
		t.Fatalf("%d requests sent in 0.5 s at 20/s, want 10", len(statuses))
	}
	var ok, limited int
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 429:
			limited++
		}
	}
	if ok != 5 || limited != 5 || len(lat) != 5 {
		t.Errorf("statuses %v, %d latencies; want five 200s with latencies and five 429s", statuses, len(lat))
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("drive took %v: the slow answers held the offered load back", el)
	}
}

func TestMarkdownShare(t *testing.T) {
	s := settings{window: time.Minute, interactive: 0.5, background: 2.5, factor: 1, conns: 30, sweepPerMin: 60}
	md := s.markdown([]phase{{name: "x", limit: 20, companyAdmitted: 19, lanes: []lane{
		{name: "interactive", app: map[int]int{200: 10}},
		{name: "background", app: map[int]int{200: 9, 429: 41}},
	}}})
	if !strings.Contains(md, "19 of 20 (95%)") || !strings.Contains(md, "41×429") || !strings.Contains(md, "| x | interactive |") || !strings.Contains(md, "| x | background |") {
		t.Errorf("markdown:\n%s", md)
	}
}
