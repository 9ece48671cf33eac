package main

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestRunSandbox_RateLimits: finchconnect sandbox has Finch's rate limits
// by default; -rate-limits (or its variable) scales or disables them.
func TestRunSandbox_RateLimits(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		enabled bool
		factor  float64
	}{
		{"default", nil, nil, true, 1},
		{"flag off", nil, []string{"-rate-limits", "0"}, false, 0},
		{"variable", map[string]string{"FINCHCONNECT_SANDBOX_RATE_LIMITS": "2.5"}, nil, true, 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := start(t, tt.env, append([]string{"sandbox", "-addr", "127.0.0.1:0"}, tt.args...)...)
			res, err := http.Get(sb.url + "/_sandbox/rate-limits")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var got struct {
				Enabled bool    `json:"enabled"`
				Factor  float64 `json:"factor"`
			}
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got.Enabled != tt.enabled || got.Factor != tt.factor {
				t.Errorf("GET /_sandbox/rate-limits = %+v, want enabled %v, factor %v", got, tt.enabled, tt.factor)
			}
		})
	}
}
