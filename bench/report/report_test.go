package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	phases := []phase{
		{Label: "floor", Role: "floor.callback", OK: 100000, RPS: 10000, P99: 6},
		{Label: "peer", Role: "peer.callback", OK: 20000, RPS: 2000, P99: 30, PeakRSS: 160},
		{Label: "fc redis", Role: "fc-redis.callback", OK: 85000, Distinct: 85000, Seconds: 10, RPS: 8500, P99: 9, PeakRSS: 30, CPU: 100, UpCPU: 20, StoreCPU: 30, LoadCPU: 50},
		{Label: "fc sqlite", Role: "fc-sqlite.callback", OK: 50000, WarmupOK: 9000, Distinct: 59000, RPS: 5000, P99: 20, PeakRSS: 38},
		{Label: "peer company", Role: "peer.read", OK: 30000, RPS: 3000, P99: 20, PeakRSS: 170},
		{Label: "fc page", Role: "fc-redis.page", OK: 90000, RPS: 9000, P99: 8, PeakRSS: 41},
	}
	stored := map[string]int{"peer.callback": 20000, "fc-redis.callback": 85000, "fc-sqlite.callback": 59000}
	got, err := render(phases, stored, "2 cores", "c=32", time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	for _, want := range []string{
		"# Load run 2026-11-28T21:00Z",
		"| callbacks on Redis ≥ 0.8 × the floor's | 8500 / 10000 = 0.85 | yes |",
		"| callbacks on Redis ≥ 4 × the peer's | 8500 / 2000 = 4.25 | yes |",
		"| callback p99 on Redis ≤ 1/3 of the peer's | 9 / 30 = 0.30 | yes |",
		"| callbacks on SQLite (durable) ≥ 3 × the peer's | 5000 / 2000 = 2.50 | **no** |",
		"| company page (Redis) ≥ 4 × the peer's company route | 9000 / 3000 = 3.00 | **no** |",
		"| /v1 proxy company (Redis) ≥ 4 × the peer's company route | not measured | — |",
		"| finchconnect's peak memory ≤ 1/4 of the peer's (highest of any phase) | 41 / 170 MiB = 0.24 | yes |",
		"| fc redis | 85000 | 0 | 8500 |",
		"| 100 | 30 | 20 | 30 | 50 | 1.70 |", // CPU columns, then 8500/s × 200 µs = 1.70 cores
		"85000 = ok |",
		"59000 = ok + 9000 warm-up |",
		"— (no store) |",
		"Stored connections equal successful callbacks",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

func TestRenderMismatch(t *testing.T) {
	tests := []struct {
		name   string
		phase  phase
		stored int
	}{
		{name: "more stored than ok", phase: phase{Role: "fc-redis.callback", OK: 10, Distinct: 10}, stored: 11},
		{name: "fewer stored than ok", phase: phase{Role: "peer.callback", OK: 10}, stored: 9},
		{name: "the same connection twice", phase: phase{Role: "fc-sqlite.callback", OK: 10, Distinct: 9}, stored: 10},
		{name: "the warm-up's callbacks not stored", phase: phase{Role: "fc-redis.callback", OK: 10, WarmupOK: 3, Distinct: 13}, stored: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render([]phase{tt.phase}, map[string]int{tt.phase.Role: tt.stored}, "m", "", time.Now())
			if !errors.Is(err, errMismatch) {
				t.Errorf("got error %v, want errMismatch", err)
			}
			if !strings.Contains(got, "**Stored connections differ") {
				t.Errorf("report does not say so:\n%s", got)
			}
		})
	}
}

func TestRun(t *testing.T) {
	in := strings.NewReader(`{"label":"peer","role":"peer.callback","ok":5,"rps":1}` + "\n\n" + `{"label":"floor","role":"floor.callback","ok":9,"rps":2}` + "\n")
	var out strings.Builder
	if err := run([]string{"-stored", "peer.callback=5"}, in, &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(out.String(), "| peer | 5 | 0 |") || !strings.Contains(out.String(), "cores") {
		t.Errorf("got:\n%s", out.String())
	}
	if err := run([]string{"-stored", "peer"}, strings.NewReader(""), new(strings.Builder)); err == nil {
		t.Error("got no error for -stored without =N")
	}
	if err := run(nil, strings.NewReader("not json\n"), new(strings.Builder)); err == nil {
		t.Error("got no error for a line that is not JSON")
	}
}

func TestCoresBusyCountsFailedRequests(t *testing.T) {
	// 900 ok and 100 errors in 1 s at 1,000 µs per request sent: one core.
	p := phase{OK: 900, Errors: 100, Seconds: 1, RPS: 900, CPU: 600, UpCPU: 100, StoreCPU: 100, LoadCPU: 200}
	if got := p.coresBusy(); got < 0.999 || got > 1.001 {
		t.Errorf("coresBusy() = %.3f, want 1.000", got)
	}
	got, err := render([]phase{{Role: "fc-redis.callback", OK: 10, WarmupOK: 3, WarmupErrs: 2, Distinct: 13, Seconds: 1}},
		map[string]int{"fc-redis.callback": 13}, "m", "", time.Now())
	if err != nil || !strings.Contains(got, "13 = ok + 3 warm-up (2 warm-up errors) |") {
		t.Errorf("render = %v; want the warm-up's errors in the stored cell:\n%s", err, got)
	}
}
