package sandbox_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// fixedNow is a wall clock that stands still: only Advance moves the
// sandbox's clock, so windows move exactly as far as a test says.
func fixedNow() func() time.Time {
	wall := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	return func() time.Time { return wall }
}

// want429 checks r is Finch's documented 429 with finchCode and the
// given Retry-After.
func want429(t *testing.T, what string, r resp, finchCode, retryAfter string) {
	t.Helper()
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("%s = %d %s, want 429", what, r.status, r.body)
	}
	m := r.json(t)
	for k, v := range map[string]any{"code": 429.0, "statusCode": 429.0, "status": 429.0, "name": "rate_limit_exceeded_error", "finch_code": finchCode, "message": "Too many requests for token"} {
		if m[k] != v {
			t.Errorf("%s: %s = %v, want %v (body %s)", what, k, m[k], v, r.body)
		}
	}
	if got := r.header.Get("Retry-After"); got != retryAfter {
		t.Errorf("%s: Retry-After = %q, want %q", what, got, retryAfter)
	}
}

func mustStatus(t *testing.T, what string, r resp, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s = %d %s, want %d", what, r.status, r.body, want)
	}
}

// TestRateLimit_SharedByEveryTokenOfTheClient: Finch limits an
// application (client id) per product over a sliding minute, whatever
// token it uses: the 21st directory read in a minute from a mix of three
// tokens (two Connect connections, one from the sandbox API) is refused
// with finch_application_rl, another product and unlimited routes still
// answer, and the window slides rather than resetting.
func TestRateLimit_SharedByEveryTokenOfTheClient(t *testing.T) {
	e := newEnv(t, sandbox.Options{RateLimitFactor: 1, Now: fixedNow()})
	sbTok, _ := e.sandboxToken()
	toks := []string{e.token("authorized_simple"), e.token("authorized_complex"), sbTok}
	dir := func(i int) resp {
		return e.call("GET", "/employer/directory?limit=1", "bearer:"+toks[i%len(toks)], nil)
	}

	for i := range 10 {
		mustStatus(t, "directory read "+strconv.Itoa(i+1), dir(i), http.StatusOK)
	}
	e.sb.Advance(30 * time.Second)
	for i := range 10 {
		mustStatus(t, "directory read "+strconv.Itoa(i+11), dir(i), http.StatusOK)
	}
	// The oldest of the 20 leaves the window 30 s from now.
	want429(t, "21st directory read", dir(1), "finch_application_rl", "30")
	want429(t, "a fourth token's directory read", e.call("GET", "/employer/directory", "bearer:"+e.token("authorized_simple"), nil), "finch_application_rl", "30")

	// Other buckets and unbucketed routes are unaffected.
	mustStatus(t, "company read", e.call("GET", "/employer/company", "bearer:"+toks[0], nil), http.StatusOK)
	mustStatus(t, "introspect", e.call("GET", "/introspect", "bearer:"+toks[0], nil), http.StatusOK)

	// 29 s later the first ten are still in the window.
	e.sb.Advance(29 * time.Second)
	want429(t, "directory read at 59 s", dir(2), "finch_application_rl", "1")
	// At 60 s the first ten leave: ten reads pass, the eleventh waits
	// for the second ten (a fixed window would have allowed twenty).
	e.sb.Advance(time.Second)
	for i := range 10 {
		mustStatus(t, "directory read after the slide "+strconv.Itoa(i+1), dir(i), http.StatusOK)
	}
	want429(t, "11th read after the slide", dir(0), "finch_application_rl", "30")

	st := e.call("GET", "/_sandbox/rate-limits", "", nil).json(t)
	if st["application_limited"] != 4.0 || st["enabled"] != true {
		t.Errorf("GET /_sandbox/rate-limits = %v, want 4 application 429s, enabled", st)
	}
}

// TestRateLimit_PaymentBucket: payment allows 12 a minute, fewer than the
// 20 of most products.
func TestRateLimit_PaymentBucket(t *testing.T) {
	e := newEnv(t, sandbox.Options{RateLimitFactor: 1, Now: fixedNow()})
	tok := e.token("authorized_simple")
	pay := "/employer/payment?start_date=2026-01-01&end_date=2026-03-01"
	for i := range 12 {
		mustStatus(t, "payment read "+strconv.Itoa(i+1), e.call("GET", pay, "bearer:"+tok, nil), http.StatusOK)
	}
	want429(t, "13th payment read", e.call("GET", pay, "bearer:"+tok, nil), "finch_application_rl", "60")
	mustStatus(t, "directory read", e.call("GET", "/employer/directory", "bearer:"+tok, nil), http.StatusOK)
}

// TestRateLimit_OffByDefaultAndScaled: the zero Options never throttle
// (the project's tests and load runs embed the sandbox); a factor scales
// the numbers; PUT /_sandbox/rate-limits changes the factor at run time.
func TestRateLimit_OffByDefaultAndScaled(t *testing.T) {
	e := newEnv(t, sandbox.Options{Now: fixedNow()})
	tok := e.token("authorized_simple")
	for i := range 60 {
		mustStatus(t, "directory read "+strconv.Itoa(i+1)+" without limits", e.call("GET", "/employer/directory", "bearer:"+tok, nil), http.StatusOK)
	}
	mustStatus(t, "PUT factor -1", e.call("PUT", "/_sandbox/rate-limits", "", `{"factor":-1}`), http.StatusBadRequest)
	r := e.call("PUT", "/_sandbox/rate-limits", "", `{"factor":0.5}`)
	mustStatus(t, "PUT factor 0.5", r, http.StatusOK)
	if p := r.json(t)["products"].(map[string]any); p["directory"] != 10.0 || p["payment"] != 6.0 {
		t.Errorf("limits at factor 0.5 = %v, want directory 10, payment 6", p)
	}
	for i := range 10 {
		mustStatus(t, "directory read "+strconv.Itoa(i+1)+" at half", e.call("GET", "/employer/directory", "bearer:"+tok, nil), http.StatusOK)
	}
	want429(t, "11th read at half", e.call("GET", "/employer/directory", "bearer:"+tok, nil), "finch_application_rl", "60")
	mustStatus(t, "DELETE (reset)", e.call("DELETE", "/_sandbox/rate-limits", "", nil), http.StatusOK)
	mustStatus(t, "read after a reset", e.call("GET", "/employer/directory", "bearer:"+tok, nil), http.StatusOK)
	mustStatus(t, "PUT factor 0", e.call("PUT", "/_sandbox/rate-limits", "", `{"factor":0}`), http.StatusOK)
	for i := range 30 {
		mustStatus(t, "read with limits off again "+strconv.Itoa(i+1), e.call("GET", "/employer/directory", "bearer:"+tok, nil), http.StatusOK)
	}
	if _, err := sandbox.New(sandbox.Options{RateLimitFactor: -2}); err == nil {
		t.Error("New accepted a negative RateLimitFactor")
	}
}

// TestRateLimit_IPLockout: 1000 API requests from one IP in 5 minutes
// are allowed; the next locks the IP out of every API route for an hour
// (finch_api_ip_rl), the admin API excepted; then it starts afresh.
func TestRateLimit_IPLockout(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	e := newEnv(t, sandbox.Options{RateLimitFactor: 1, Now: fixedNow()})
	for i := range 1000 {
		if r := e.call("GET", "/providers", "", nil); r.status != http.StatusOK {
			t.Fatalf("request %d = %d %s, want 200", i+1, r.status, r.body)
		}
	}
	want429(t, "request 1001", e.call("GET", "/providers", "", nil), "finch_api_ip_rl", "3600")
	want429(t, "a token exchange while locked out", e.exchange("nope", ""), "finch_api_ip_rl", "3600")
	mustStatus(t, "the admin API while locked out", e.call("GET", "/_sandbox/stats", "", nil), http.StatusOK)

	e.sb.Advance(59*time.Minute + 59*time.Second)
	want429(t, "a request a second before the end", e.call("GET", "/providers", "", nil), "finch_api_ip_rl", "1")
	e.sb.Advance(time.Second)
	mustStatus(t, "a request when the lockout ends", e.call("GET", "/providers", "", nil), http.StatusOK)
	st := e.call("GET", "/_sandbox/rate-limits", "", nil).json(t)
	if st["ip_lockouts"] != 1.0 || st["ip_limited"] != 3.0 {
		t.Errorf("GET /_sandbox/rate-limits = %v, want 1 lockout and 3 refused requests", st)
	}
}
