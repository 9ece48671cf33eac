package sandbox_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestFaults_ErrorNames: an injected status answers with the Finch error
// name clients branch on, not a generic server_error.
func TestFaults_ErrorNames(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tests := []struct {
		status          int
		name, finchCode string
	}{
		{400, "bad_request", "invalid_request"},
		{401, "invalid_token_error", ""},
		{403, "insufficient_scope_error", ""},
		{404, "not_found_error", "item_not_found"},
		{429, "rate_limit_exceeded_error", "finch_rate_limit_exceeded"},
		{500, "server_error", ""},
		{501, "not_implemented", ""},
		{503, "server_error", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			e.sb.InjectFault(sandbox.Fault{Route: "GET /providers", Status: tt.status, Count: 1})
			r := e.call("GET", "/providers", "", nil)
			m := r.json(t)
			if r.status != tt.status || m["name"] != tt.name || m["code"] != float64(tt.status) {
				t.Errorf("fault %d = %d %s, want name %q", tt.status, r.status, r.body, tt.name)
			}
			if got, _ := m["finch_code"].(string); got != tt.finchCode {
				t.Errorf("fault %d finch_code = %q, want %q", tt.status, got, tt.finchCode)
			}
		})
	}
	if r := e.call("GET", "/providers", "", nil); r.status != http.StatusOK {
		t.Errorf("after every one-shot fault, providers = %d, want 200", r.status)
	}
}

// TestSessions_StateInBody: a state given when the session is created
// comes back on the redirect when the Connect URL carries none.
func TestSessions_StateInBody(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	r := e.call("POST", "/connect/sessions", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"company"}, "redirect_uri": cb, "state": "from-body"})
	u, _ := url.Parse(r.json(t)["connect_url"].(string))
	_, vals := hidden(string(e.call("GET", "/authorize?"+u.RawQuery, "", nil).body))
	vals.Set("provider", "gusto")
	_, vals = hidden(string(e.call("POST", "/authorize", "", vals).body))
	vals.Set("username", "authorized_simple")
	vals.Set("password", "letmein")
	done := e.call("POST", "/authorize", "", vals)
	loc, _ := url.Parse(done.header.Get("Location"))
	if loc == nil || loc.Query().Get("state") != "from-body" || loc.Query().Get("code") == "" {
		t.Errorf("redirect = %q, want code and state=from-body", done.header.Get("Location"))
	}
}

// TestSessions_DeductionWithBenefits: deduction is a deprecated alias of
// benefits and the two must not be asked for together.
func TestSessions_DeductionWithBenefits(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	for _, tt := range []struct {
		products []string
		want     int
	}{
		{[]string{"deduction", "benefits"}, 400},
		{[]string{"deduction"}, 201},
		{[]string{"benefits"}, 201},
	} {
		r := e.call("POST", "/connect/sessions", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": tt.products})
		if r.status != tt.want {
			t.Errorf("products %v = %d %s, want %d", tt.products, r.status, r.body, tt.want)
		}
	}
}
