package finch

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestServerDelay(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"none", http.Header{}, -1},
		{"seconds", http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{"fractional seconds", http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{"http date", http.Header{"Retry-After": {now.Add(20 * time.Second).Format(http.TimeFormat)}}, 20 * time.Second},
		{"past date", http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0},
		{"ms wins", http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"9"}}, 250 * time.Millisecond},
		{"bad ms falls back", http.Header{"Retry-After-Ms": {"soon"}, "Retry-After": {"2"}}, 2 * time.Second},
		{"negative", http.Header{"Retry-After": {"-5"}}, -1},
		{"garbage", http.Header{"Retry-After": {"later"}}, -1},
		{"huge", http.Header{"Retry-After": {"1e300"}}, 1<<63 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serverDelay(tt.header, func() time.Time { return now }); got != tt.want {
				t.Errorf("serverDelay(%v) = %v, want %v", tt.header, got, tt.want)
			}
		})
	}
}

func TestClient_backoff(t *testing.T) {
	tests := []struct {
		n      int
		jitter float64
		want   time.Duration
	}{
		{0, 0, 500 * time.Millisecond},
		{1, 0, time.Second},
		{3, 0, 4 * time.Second},
		{4, 0, 8 * time.Second},
		{10, 0, 8 * time.Second}, // capped
		{0, 1, 375 * time.Millisecond},
		{4, 0.5, 7 * time.Second},
	}
	for _, tt := range tests {
		c := &Client{jitterFn: func() float64 { return tt.jitter }}
		if got := c.backoff(tt.n); got != tt.want {
			t.Errorf("backoff(%d) with jitter %v = %v, want %v", tt.n, tt.jitter, got, tt.want)
		}
	}
}

func TestRetryResponse(t *testing.T) {
	tests := []struct {
		status      int
		shouldRetry string
		never       bool
		unsent      bool
		read        bool
	}{
		{200, "", false, false, false},
		{400, "", false, false, false},
		{401, "", false, false, false},
		{408, "", false, false, true},
		{409, "", false, false, true},
		{429, "", false, true, true},
		{500, "", false, false, true},
		{503, "", false, false, true},
		{503, "false", false, false, false},
		{400, "true", false, true, true},
		{500, "TRUE", false, true, true},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
		if tt.shouldRetry != "" {
			resp.Header.Set("X-Should-Retry", tt.shouldRetry)
		}
		for _, p := range []struct {
			policy retryPolicy
			want   bool
		}{{retryNever, tt.never}, {retryUnsent, tt.unsent}, {retryRead, tt.read}} {
			if got := retryResponse(p.policy, resp); got != p.want {
				t.Errorf("retryResponse(policy %d, %d x-should-retry=%q) = %v, want %v", p.policy, tt.status, tt.shouldRetry, got, p.want)
			}
		}
	}
}

func TestRetryError(t *testing.T) {
	dial := fmt.Errorf("finch: POST /x: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})
	reset := fmt.Errorf("finch: POST /x: %w", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")})
	large := fmt.Errorf("finch: GET /x: %w", ErrResponseTooLarge)
	tests := []struct {
		name                string
		err                 error
		never, unsent, read bool
	}{
		{"dial", dial, false, true, true},
		{"reset after sending", reset, false, false, true},
		{"too large", large, false, false, false},
	}
	for _, tt := range tests {
		for _, p := range []struct {
			policy retryPolicy
			want   bool
		}{{retryNever, tt.never}, {retryUnsent, tt.unsent}, {retryRead, tt.read}} {
			if got := retryError(p.policy, tt.err); got != p.want {
				t.Errorf("retryError(policy %d, %s) = %v, want %v", p.policy, tt.name, got, p.want)
			}
		}
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"/employer/company", true},
		{"/employer/pay-statement-item/rule/abc", true},
		{"/", true},
		{"/a/...", true}, // three dots is a name, not a step up
		{"", false},
		{"employer/company", false},
		{"//evil.example/x", false},
		{"http://evil.example/", false},
		{"/employer/../auth/token", false},
		{"/employer/..", false},
		{"/./employer", false},
		{`/employer\..\x`, false},
		{"/employer/company?x=1", false},
		{"/employer/company#x", false},
		{"/employer/\r\nHost: evil", false},
	}
	for _, tt := range tests {
		if err := checkPath(tt.path); (err == nil) != tt.ok {
			t.Errorf("checkPath(%q) = %v, want ok %v", tt.path, err, tt.ok)
		}
	}
}
