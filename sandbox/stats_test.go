package sandbox_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestStats_RequestsByRoute: requests are counted by route pattern, and
// every unknown path shares one counter, so probing cannot grow the map.
func TestStats_RequestsByRoute(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple")
	before := e.sb.Stats()
	for _, p := range []string{"/nope/1", "/nope/2", "/employer/nope"} {
		if r := e.call("GET", p, "", nil); r.status != http.StatusNotFound || r.json(t)["name"] != "not_found_error" {
			t.Errorf("GET %s = %d %s, want 404 not_found_error", p, r.status, r.body)
		}
	}
	e.call("GET", "/employer/company", "bearer:"+tok, nil)
	e.call("GET", "/employer/company", "bearer:"+tok, nil)
	got := e.sb.Stats()
	if n := got.Requests["unmatched"] - before.Requests["unmatched"]; n != 3 {
		t.Errorf(`Requests["unmatched"] grew by %d, want 3`, n)
	}
	if n := got.Requests["GET /employer/company"] - before.Requests["GET /employer/company"]; n != 2 {
		t.Errorf(`Requests["GET /employer/company"] grew by %d, want 2`, n)
	}
	for k := range got.Requests {
		if strings.Contains(k, "nope") {
			t.Errorf("Requests has a key for an unknown path: %q", k)
		}
	}
}

// TestLimits_OversizedBody: a body over the limit is refused, not read.
func TestLimits_OversizedBody(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	e := newEnv(t, sandbox.Options{})
	big := url.Values{"code": {strings.Repeat("x", 9<<20)}, "client_id": {sandbox.DefaultClientID}, "client_secret": {sandbox.DefaultClientSecret}}
	// Were the body read whole, the code would be looked up and refused
	// as invalid_grant_error; refused unread, the request is bad_request.
	if r := e.call("POST", "/auth/token", "", big); r.status != http.StatusBadRequest || r.json(t)["name"] != "bad_request" {
		t.Errorf("9 MiB form body = %d %s, want 400 bad_request", r.status, r.body)
	}
}
