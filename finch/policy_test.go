package finch_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/sandbox"
)

// waits records the retry waits of a client instead of sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func (w *waits) get() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// recordingClient is a sandbox client whose waits are recorded.
func (e *env) recordingClient() (*finch.Client, *waits) {
	w := &waits{}
	c := e.newClient()
	c.Sleep = w.sleep
	return c, w
}

func statusOf(err error) int {
	var apiErr *finch.APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}

// TestClient_WriteRetries: sessions and disconnects are resent only when
// Finch certainly did not act on them (429), never after a 5xx.
func TestClient_WriteRetries(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	session := finch.SessionRequest{CustomerID: "c1", CustomerName: "Acme", Products: []string{"company"}}
	tests := []struct {
		name      string
		route     string
		fault     sandbox.Fault
		call      func(c *finch.Client, tok finchconnect.Secret) error
		wantSends int
		wantErr   int // the APIError status, 0 for success
	}{
		{"session after 429", "POST /connect/sessions", sandbox.Fault{Status: 429, RetryAfter: time.Second, Count: 1},
			func(c *finch.Client, _ finchconnect.Secret) error {
				_, err := c.NewConnectSession(ctx, session)
				return err
			}, 2, 0},
		{"session after 500", "POST /connect/sessions", sandbox.Fault{Status: 500, Count: 1},
			func(c *finch.Client, _ finchconnect.Secret) error {
				_, err := c.NewConnectSession(ctx, session)
				return err
			}, 1, 500},
		{"reauth session after 503", "POST /connect/sessions/reauthenticate", sandbox.Fault{Status: 503, Count: 1},
			func(c *finch.Client, _ finchconnect.Secret) error {
				_, err := c.ReauthenticateSession(ctx, finch.ReauthRequest{ConnectionID: "x"})
				return err
			}, 1, 503},
		{"disconnect after 502", "POST /disconnect", sandbox.Fault{Status: 502, Count: 1},
			func(c *finch.Client, tok finchconnect.Secret) error { return c.Disconnect(ctx, tok) }, 1, 502},
		{"disconnect entity after 500", "POST /disconnect-entity", sandbox.Fault{Status: 500, Count: 1},
			func(c *finch.Client, tok finchconnect.Secret) error {
				return c.DisconnectEntity(ctx, tok, []string{"e"})
			}, 1, 500},
		{"disconnect after 429", "POST /disconnect", sandbox.Fault{Status: 429, Count: 1},
			func(c *finch.Client, tok finchconnect.Secret) error { return c.Disconnect(ctx, tok) }, 2, 0},
		{"exchange after 429", "POST /auth/token", sandbox.Fault{Status: 429, RetryAfter: time.Second, Count: 1},
			func(c *finch.Client, _ finchconnect.Secret) error {
				_, err := c.ExchangeCode(ctx, "code", "")
				return err
			}, 1, 429},
		{"read after 500s", "GET /employer/company", sandbox.Fault{Status: 500, Count: 2},
			func(c *finch.Client, tok finchconnect.Secret) error { _, err := c.Company(ctx, tok); return err }, 3, 0},
		{"read gives up after MaxRetries", "GET /introspect", sandbox.Fault{Status: 503},
			func(c *finch.Client, tok finchconnect.Secret) error { _, err := c.Introspect(ctx, tok); return err }, 3, 503},
		{"batch read after 408", "POST /employer/employment", sandbox.Fault{Status: 408, Count: 1},
			func(c *finch.Client, tok finchconnect.Secret) error {
				_, err := c.Employments(ctx, tok, []string{"x"})
				return err
			}, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := e.connection("authorized_simple").AccessToken
			c, _ := e.recordingClient()
			tt.fault.Route = tt.route
			e.sb.InjectFault(tt.fault)
			defer e.sb.ClearFaults()
			method, path, _ := strings.Cut(tt.route, " ")
			before := e.rec.count(method, path)
			err := tt.call(c, tok)
			if got := e.rec.count(method, path) - before; got != tt.wantSends {
				t.Errorf("%s sent %d times, want %d", tt.route, got, tt.wantSends)
			}
			if tt.wantErr == 0 && statusOf(err) != 0 {
				t.Errorf("err = %v, want success after the retry", err)
			}
			if tt.wantErr != 0 && statusOf(err) != tt.wantErr {
				t.Errorf("err = %v, want the %d APIError", err, tt.wantErr)
			}
		})
	}
}

// TestClient_DialErrors: a request that could not even connect is resent
// for reads and writes alike, except the code exchange.
func TestClient_DialErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every dial is refused
	ctx := t.Context()
	tests := []struct {
		name      string
		call      func(c *finch.Client) error
		wantWaits int
	}{
		{"exchange", func(c *finch.Client) error { _, err := c.ExchangeCode(ctx, "code", ""); return err }, 0},
		{"session", func(c *finch.Client) error {
			_, err := c.NewConnectSession(ctx, finch.SessionRequest{CustomerID: "c", CustomerName: "n", Products: []string{"company"}})
			return err
		}, 2},
		{"disconnect", func(c *finch.Client) error { return c.Disconnect(ctx, finchconnect.NewSecret("tok")) }, 2},
		{"read", func(c *finch.Client) error { _, err := c.Company(ctx, finchconnect.NewSecret("tok")); return err }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &waits{}
			c := &finch.Client{BaseURL: "http://" + addr, ClientID: "id", ClientSecret: finchconnect.NewSecret("secret"), Sleep: w.sleep}
			err := tt.call(c)
			var opErr *net.OpError
			if !errors.As(err, &opErr) || opErr.Op != "dial" {
				t.Errorf("err = %v, want a dial error", err)
			}
			if got := len(w.get()); got != tt.wantWaits {
				t.Errorf("%d retries, want %d", got, tt.wantWaits)
			}
		})
	}
}

// TestClient_RetryWaits checks how long the client waits between tries.
func TestClient_RetryWaits(t *testing.T) {
	e := newEnv(t)
	tok := e.connection("authorized_simple").AccessToken

	t.Run("default backoff", func(t *testing.T) {
		c, w := e.recordingClient()
		e.sb.InjectFault(sandbox.Fault{Route: "GET /employer/company", Status: 500, Count: 2})
		if _, err := c.Company(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		got := w.get()
		if len(got) != 2 || got[0] < 375*time.Millisecond || got[0] > 500*time.Millisecond || got[1] < 750*time.Millisecond || got[1] > time.Second {
			t.Errorf("waits = %v, want ~0.5s then ~1s (less up to 25%% jitter)", got)
		}
	})

	t.Run("retry-after above a minute is not waited out", func(t *testing.T) {
		c, w := e.recordingClient()
		e.sb.InjectFault(sandbox.Fault{Route: "GET /employer/company", Status: 429, RetryAfter: 2 * time.Minute, Count: 1})
		defer e.sb.ClearFaults()
		_, err := c.Company(t.Context(), tok)
		var apiErr *finch.APIError
		if !errors.As(err, &apiErr) || !errors.Is(err, finchconnect.ErrRateLimited) || apiErr.RetryAfter != 2*time.Minute {
			t.Errorf("err = %#v, want a 429 APIError with RetryAfter 2m", err)
		}
		if got := w.get(); len(got) != 0 {
			t.Errorf("waits = %v, want none", got)
		}
	})

	t.Run("disabled", func(t *testing.T) {
		c, w := e.recordingClient()
		c.MaxRetries = -1
		e.sb.InjectFault(sandbox.Fault{Route: "GET /employer/company", Status: 503, Count: 1})
		defer e.sb.ClearFaults()
		if _, err := c.Company(t.Context(), tok); statusOf(err) != 503 {
			t.Errorf("err = %v, want the 503", err)
		}
		if got := w.get(); len(got) != 0 {
			t.Errorf("waits = %v, want none with MaxRetries -1", got)
		}
	})

	t.Run("no wait past the deadline", func(t *testing.T) {
		c, w := e.recordingClient()
		e.sb.InjectFault(sandbox.Fault{Route: "GET /employer/company", Status: 503, RetryAfter: 5 * time.Second})
		defer e.sb.ClearFaults()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := c.Company(ctx, tok)
		if statusOf(err) != 503 {
			t.Errorf("err = %v, want the last 503, not a context error", err)
		}
		if got := w.get(); len(got) != 0 {
			t.Errorf("waits = %v, want none: 5s does not fit in the 2s deadline", got)
		}
	})

	t.Run("cancelled while waiting", func(t *testing.T) {
		c := e.newClient()
		ctx, cancel := context.WithCancel(t.Context())
		c.Sleep = func(ctx context.Context, d time.Duration) error { cancel(); return context.Canceled }
		e.sb.InjectFault(sandbox.Fault{Route: "GET /employer/company", Status: 500})
		defer e.sb.ClearFaults()
		before := e.rec.count("GET", "/employer/company")
		if _, err := c.Company(ctx, tok); statusOf(err) != 500 {
			t.Errorf("err = %v, want the 500 seen before the cancel", err)
		}
		if n := e.rec.count("GET", "/employer/company") - before; n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

// TestClient_ShouldRetryHeader: x-should-retry overrides the status rule,
// in both directions, but never for the code exchange.
func TestClient_ShouldRetryHeader(t *testing.T) {
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Should-Retry", r.URL.Query().Get("retry"))
		w.Header().Set("Retry-After-Ms", "10")
		w.WriteHeader(map[string]int{"true": 400, "false": 503}[r.URL.Query().Get("retry")])
	}))
	defer ts.Close()
	w := &waits{}
	c := &finch.Client{BaseURL: ts.URL, ClientID: "id", ClientSecret: finchconnect.NewSecret("s"), Sleep: w.sleep}
	tests := []struct {
		name          string
		method, retry string
		wantHits      int32
	}{
		{"read told not to", "GET", "false", 1},
		{"read told to", "GET", "true", 3},
		{"write told to", "POST", "true", 3},
	}
	for _, tt := range tests {
		hits.Store(0)
		res, err := c.Do(t.Context(), finchconnect.NewSecret("tok"), tt.method, "/x", map[string][]string{"retry": {tt.retry}}, nil)
		if err != nil || res.Err() == nil {
			t.Errorf("%s: Do = %v, %v, want an error response", tt.name, res, err)
		}
		if got := hits.Load(); got != tt.wantHits {
			t.Errorf("%s: %d requests, want %d", tt.name, got, tt.wantHits)
		}
	}
	hits.Store(0)
	if _, err := c.Do(t.Context(), finchconnect.Secret{}, "POST", "/auth/token", map[string][]string{"retry": {"true"}}, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("/auth/token told to retry: %d requests, want 1", got)
	}
	for _, d := range w.get() {
		if d != 10*time.Millisecond {
			t.Errorf("wait %v, want retry-after-ms's 10ms", d)
		}
	}
}

// TestClient_Timeout: Timeout bounds each attempt; a read that times out is
// tried again, the code exchange is not.
func TestClient_Timeout(t *testing.T) {
	e := newEnv(t)
	tok := e.connection("authorized_simple").AccessToken

	c, _ := e.recordingClient()
	c.Timeout = 100 * time.Millisecond
	e.sb.InjectFault(sandbox.Fault{Route: "GET /employer/company", Latency: 2 * time.Second, Count: 1})
	before := e.rec.count("GET", "/employer/company")
	start := time.Now()
	if _, err := c.Company(t.Context(), tok); err != nil {
		t.Errorf("Company after one slow attempt = %v, want success on the retry", err)
	}
	if n := e.rec.count("GET", "/employer/company") - before; n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Company took %v; the 100ms attempt timeout did not cut the slow attempt", d)
	}

	code := e.code("authorized_simple")
	e.sb.InjectFault(sandbox.Fault{Route: "POST /auth/token", Latency: 2 * time.Second, Count: 1})
	before = e.rec.count("POST", "/auth/token")
	_, err := c.ExchangeCode(t.Context(), code, redirectURI)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "Client.Timeout") {
		t.Errorf("ExchangeCode with a slow Finch = %v, want a Client.Timeout error", err)
	}
	if strings.Contains(err.Error(), code) {
		t.Errorf("the error %q contains the code", err)
	}
	if n := e.rec.count("POST", "/auth/token") - before; n != 1 {
		t.Errorf("the code was sent %d times, want once", n)
	}
}

// TestClient_RetryAfterDate: an HTTP-date Retry-After is measured against
// Client.Now, and the default Sleep really waits.
func TestClient_RetryAfterDate(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			if r.URL.Path == "/date" {
				w.Header().Set("Retry-After", now.Add(2*time.Second).Format(http.TimeFormat))
			} else {
				w.Header().Set("Retry-After-Ms", "20")
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"id":"co"}`))
	}))
	defer ts.Close()

	w := &waits{}
	c := &finch.Client{BaseURL: ts.URL, Now: func() time.Time { return now }, Sleep: w.sleep}
	if _, err := c.Do(t.Context(), finchconnect.NewSecret("tok"), "GET", "/date", nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := w.get(); len(got) != 1 || got[0] != 2*time.Second {
		t.Errorf("waits = %v, want [2s] from the HTTP-date", got)
	}

	hits.Store(0)
	real := &finch.Client{BaseURL: ts.URL}
	start := time.Now()
	co, err := real.Company(t.Context(), finchconnect.NewSecret("tok"))
	if err != nil || co.ID != "co" {
		t.Fatalf("Company = %v, %v", co, err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("the retry came after %v, want at least retry-after-ms's 20ms", d)
	}
}
