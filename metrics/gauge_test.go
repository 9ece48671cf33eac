package metrics_test

import (
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/metrics"
)

// TestGaugeSet: one series per value, each computed at scrape time.
func TestGaugeSet(t *testing.T) {
	m := metrics.New()
	n := map[string]float64{"synced": 3}
	m.GaugeSet("finchconnect_test_states", "States.", "state", []string{"synced", "failed"}, func(v string) float64 { return n[v] })
	n["failed"] = 2 // after registration: read at scrape time
	out := scrape(t, m)
	for _, want := range []string{`finchconnect_test_states{state="synced"} 3`, `finchconnect_test_states{state="failed"} 2`} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q:\n%s", want, out)
		}
	}
}
