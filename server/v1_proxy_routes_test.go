package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/finchconnect/finchconnect/server"
)

// finchShape is finchconnect's error body as an official Finch SDK reads
// it.
type finchShape struct {
	Code      int    `json:"code"`
	Name      string `json:"name"`
	FinchCode string `json:"finch_code"`
	Message   string `json:"message"`
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

// wantFinchError checks that r is finchconnect's own refusal in Finch's
// error shape, with status, name and finchconnect's code.
func wantFinchError(t *testing.T, what string, r response, status int, name, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s = %d %s, want %d", what, r.status, r.body, status)
		return
	}
	var e finchShape
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Errorf("%s: body %q: %v", what, r.body, err)
		return
	}
	if e.Code != status || e.Name != name || e.FinchCode != code || e.Error != code || e.Message == "" {
		t.Errorf("%s: error %+v, want code %d, name %q, finch_code and error %q and a message", what, e, status, name, code)
	}
	if e.RequestID == "" || e.RequestID != r.header.Get("X-Request-Id") {
		t.Errorf("%s: request_id %q, X-Request-Id %q: want the same, set", what, e.RequestID, r.header.Get("X-Request-Id"))
	}
}

// TestAPI_ProxyRoutesAndScopes checks that every Finch route family an SDK
// calls passes the proxy, that writes need a write key (refused to a read
// key in Finch's error shape, before Finch sees them) and that the batch
// reads stay reads.
func TestAPI_ProxyRoutesAndScopes(t *testing.T) {
	f := newProxyFixture(t, nil)
	base := f.base()

	// Reads pass with a read key: they reach Finch, whatever Finch answers.
	reads := []struct{ method, path, body string }{
		{"GET", "employer/company", ""},
		{"GET", "employer/directory", ""},
		{"POST", "employer/individual", `{"requests":[]}`},
		{"POST", "employer/employment", `{"requests":[]}`},
		{"POST", "employer/pay-statement", `{"requests":[]}`},
		{"GET", "employer/payment?start_date=2026-01-01&end_date=2026-02-01", ""},
		{"GET", "employer/pay-groups", ""},
		{"GET", "employer/pay-groups/pg-1", ""},
		{"GET", "employer/benefits", ""},
		{"GET", "employer/benefits/meta", ""},
		{"GET", "employer/benefits/b-1", ""},
		{"GET", "employer/benefits/b-1/enrolled", ""},
		{"GET", "employer/benefits/b-1/individuals", ""},
		{"GET", "employer/documents", ""},
		{"GET", "employer/documents/d-1", ""},
		{"GET", "employer/pay-statement-item?start_date=2026-01-01", ""},
		{"GET", "employer/pay-statement-item/rule", ""},
		{"GET", "jobs/automated", ""},
		{"GET", "jobs/automated/j-1", ""},
		{"GET", "jobs/manual/j-1", ""},
		{"GET", "introspect", ""},
		{"GET", "providers", ""},
	}
	for _, rd := range reads {
		f.up.reset()
		r := f.read.call(rd.method, base+rd.path, rd.body)
		if len(f.up.seen("")) != 1 {
			t.Errorf("read key: %s %s = %d %s, did not reach Finch", rd.method, rd.path, r.status, r.body)
		}
	}

	// Writes are refused to a read key, in Finch's shape, and never sent.
	writes := []struct{ method, path string }{
		{"POST", "employer/benefits"},
		{"POST", "employer/benefits/register"},
		{"POST", "employer/benefits/b-1"},
		{"POST", "employer/benefits/b-1/individuals"},
		{"DELETE", "employer/benefits/b-1/individuals"},
		{"POST", "employer/pay-statement-item/rule"},
		{"PUT", "employer/pay-statement-item/rule/r-1"},
		{"DELETE", "employer/pay-statement-item/rule/r-1"},
		{"POST", "jobs/automated"},
	}
	f.up.reset()
	for _, wr := range writes {
		r := f.read.call(wr.method, base+wr.path, `{}`)
		wantFinchError(t, "read key: "+wr.method+" "+wr.path, r, http.StatusForbidden, "insufficient_scope_error", "forbidden")
	}
	if got := f.up.seen(""); len(got) != 0 {
		t.Errorf("writes refused to a read key reached Finch: %+v", got)
	}

	// The same writes pass with a write key (and with a forward key, which
	// covers write).
	for _, c := range []*apiClient{f.write, f.forward} {
		for _, wr := range writes {
			f.up.reset()
			r := c.call(wr.method, base+wr.path, `{}`)
			if len(f.up.seen("")) != 1 {
				t.Errorf("write key: %s %s = %d %s, did not reach Finch", wr.method, wr.path, r.status, r.body)
			}
		}
	}
	// A real benefit is created.
	r := f.write.call("POST", base+"employer/benefits", `{"type":"401k","description":"Proxy 401k","frequency":"every_paycheck"}`)
	var created struct {
		BenefitID string `json:"benefit_id"`
	}
	if err := json.Unmarshal([]byte(r.body), &created); r.status/100 != 2 || err != nil || created.BenefitID == "" {
		t.Fatalf("write key: create benefit = %d %s", r.status, r.body)
	}
	// A path the proxy does not pass is permission_denied; a missing or
	// unknown key is Finch's 401 names.
	wantFinchError(t, "POST connect/sessions", f.write.call("POST", base+"connect/sessions", `{}`), http.StatusForbidden, "permission_denied", "path_not_allowed")
	anon := &apiClient{h: f.read.h, doc: f.read.doc}
	wantFinchError(t, "no key", anon.call("GET", base+"employer/company", ""), http.StatusUnauthorized, "unauthorized_request_error", "unauthorized")
	bad := &apiClient{h: f.read.h, doc: f.read.doc, key: "fck_000000000000_nope"}
	wantFinchError(t, "unknown key", bad.call("GET", base+"employer/company", ""), http.StatusUnauthorized, "invalid_token_error", "unauthorized")
	wantFinchError(t, "no such connection", f.read.call("GET", "/v1/connections/nope/finch/employer/company", ""), http.StatusNotFound, "not_found_error", "not_found")
	// And the same shape off the proxy.
	wantFinchError(t, "read key: POST /v1/connect/sessions", f.read.call("POST", "/v1/connect/sessions", `{}`), http.StatusForbidden, "insufficient_scope_error", "forbidden")
	wantFinchError(t, "GET /v1/connections/nope", f.read.call("GET", "/v1/connections/nope", ""), http.StatusNotFound, "not_found_error", "not_found")
}

// TestAPI_ProxyForward checks that request forwarding is off unless the
// server enables it, and then takes a key of scope forward only.
func TestAPI_ProxyForward(t *testing.T) {
	const body = `{"method":"GET","route":"/v1/companies"}`
	off := newProxyFixture(t, nil)
	for name, c := range map[string]*apiClient{"read": off.read, "write": off.write, "forward": off.forward} {
		r := c.call("POST", off.base()+"forward", body)
		if name == "read" || name == "write" {
			// Off is said before the scope: either is a 403 in Finch's shape.
			if r.status != http.StatusForbidden {
				t.Errorf("forwarding off, %s key: %d %s, want 403", name, r.status, r.body)
			}
			continue
		}
		wantFinchError(t, "forwarding off, forward key", r, http.StatusForbidden, "permission_denied", "forward_disabled")
	}
	if got := off.up.seen(""); len(got) != 0 {
		t.Errorf("forwarding is off, yet Finch got %+v", got)
	}

	on := newProxyFixtureConfig(t, nil, func(c *server.Config) { c.ProxyForward = true })
	wantFinchError(t, "forwarding on, read key", on.read.call("POST", on.base()+"forward", body), http.StatusForbidden, "insufficient_scope_error", "forbidden")
	wantFinchError(t, "forwarding on, write key", on.write.call("POST", on.base()+"forward", body), http.StatusForbidden, "insufficient_scope_error", "forbidden")
	wantFinchError(t, "forwarding on, GET", on.forward.call("GET", on.base()+"forward", ""), http.StatusForbidden, "permission_denied", "path_not_allowed")
	if got := on.up.seen(""); len(got) != 0 {
		t.Errorf("refused forwards reached Finch: %+v", got)
	}
	// The sandbox forwards only for provider sandbox connections: this
	// one's answer is Finch's own 501, passed back as Finch sent it.
	r := on.forward.call("POST", on.base()+"forward", body)
	var e finchShape
	if err := json.Unmarshal([]byte(r.body), &e); r.status != http.StatusNotImplemented || err != nil || e.Name != "not_implemented" || e.RequestID != "" {
		t.Errorf("forwarding on, forward key: %d %s, want Finch's own 501", r.status, r.body)
	}
	if seen := on.up.seen("/forward"); len(seen) != 1 || seen[0].method != "POST" || seen[0].header.Get("Authorization") != "Bearer "+on.token.Reveal() {
		t.Errorf("Finch got %d forwards, want 1 POST with the stored token", len(seen))
	}
}

// TestAPI_ProxyPassesClientHeaders checks that the response headers Finch's
// SDKs read reach the app: the API version, the request id, and the retry
// advice (x-should-retry, retry-after-ms, retry-after).
func TestAPI_ProxyPassesClientHeaders(t *testing.T) {
	f := newProxyFixture(t, nil)
	f.up.mu.Lock()
	f.up.extra = http.Header{"X-Should-Retry": {"false"}, "Retry-After-Ms": {"1500"}, "Retry-After": {"2"}}
	f.up.mu.Unlock()
	r := f.read.call("GET", f.base()+"employer/company", "")
	if r.status != http.StatusOK {
		t.Fatalf("company = %d %s", r.status, r.body)
	}
	want := map[string]string{
		"Finch-Api-Version": sandbox.APIVersion,
		"X-Should-Retry":    "false",
		"Retry-After-Ms":    "1500",
		"Retry-After":       "2",
	}
	for h, v := range want {
		if g := r.header.Get(h); g != v {
			t.Errorf("response %s = %q, want %q from Finch", h, g, v)
		}
	}
	if r.header.Get("Finch-Request-Id") == "" {
		t.Error("no Finch-Request-Id")
	}
}
