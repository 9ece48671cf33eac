package sandbox_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// providerToken connects a provider-mode connection (a Connect session
// without "sandbox": "finch") to provider and returns its token and the
// exchange's answer.
func (e *env) providerToken(provider string) (string, map[string]any) {
	e.t.Helper()
	r := e.call("POST", "/connect/sessions", "basic", map[string]any{"customer_id": "c-" + provider, "customer_name": "C", "products": []string{"company", "directory"}, "redirect_uri": cb, "integration": map[string]any{"provider": provider}})
	if r.status != http.StatusCreated {
		e.t.Fatalf("session = %d %s", r.status, r.body)
	}
	u, _ := url.Parse(r.json(e.t)["connect_url"].(string))
	code := e.signIn(u.Query(), "authorized_simple")
	m := e.exchange(code, cb).json(e.t)
	return m["access_token"].(string), m
}

func forwardBody(t *testing.T, r resp) (map[string]any, any) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("POST /forward = %d %s", r.status, r.body)
	}
	m := r.json(t)
	data, ok := m["data"].(string)
	if !ok {
		t.Fatalf("data is not a string: %s", r.body)
	}
	var up any
	if err := json.Unmarshal([]byte(data), &up); err != nil {
		t.Fatalf("data %q is not JSON: %v", data, err)
	}
	return m, up
}

// TestForward_EmulatedProvider: the company and employees routes answer
// the connection's employer and people; other routes and methods give the
// provider's 404 and 405 inside a 200; the request is echoed.
func TestForward_EmulatedProvider(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok, conn := e.providerToken("gusto")
	auth := "bearer:" + tok
	company := e.call("GET", "/employer/company", auth, nil).json(t)

	m, up := forwardBody(t, e.call("POST", "/forward", auth, map[string]any{"method": "GET", "route": "/v1/companies"}))
	if m["statusCode"] != 200.0 {
		t.Errorf("statusCode = %v, want 200", m["statusCode"])
	}
	co := up.(map[string]any)
	if co["id"] != conn["company_id"] || co["legal_name"] != company["legal_name"] || co["ein"] != company["ein"] {
		t.Errorf("upstream company = %v, want the connection's (%v, %v)", co, company["legal_name"], company["ein"])
	}
	if h, _ := m["headers"].(map[string]any); !strings.HasPrefix(strOf(h["content-type"]), "application/json") {
		t.Errorf("upstream headers = %v", m["headers"])
	}

	_, up = forwardBody(t, e.call("POST", "/forward", auth, map[string]any{"method": "get", "route": "/v1/employees/"}))
	dir := arrayOf(t, e.call("GET", "/employer/directory", auth, nil), "individuals")
	emps := up.([]any)
	if len(emps) != min(len(dir), 25) {
		t.Errorf("upstream employees: %d, want %d", len(emps), min(len(dir), 25))
	}
	for i, x := range emps {
		p := x.(map[string]any)
		if p["id"] != dir[i]["id"] || p["first_name"] != dir[i]["first_name"] || p["last_name"] != dir[i]["last_name"] {
			t.Errorf("upstream employee %d = %v, want %v", i, p, dir[i])
		}
	}

	for _, tc := range []struct {
		method, route string
		status        float64
	}{{"GET", "/v1/payrolls", 404}, {"POST", "/v1/employees", 405}, {"DELETE", "/v1/companies", 405}} {
		m, _ := forwardBody(t, e.call("POST", "/forward", auth, map[string]any{"method": tc.method, "route": tc.route}))
		if m["statusCode"] != tc.status {
			t.Errorf("%s %s: statusCode %v, want %v", tc.method, tc.route, m["statusCode"], tc.status)
		}
	}

	// The request is echoed as sent; the 2024 name "headers" is accepted.
	for _, tc := range []struct {
		name string
		body map[string]any
		want map[string]any
	}{
		{"all fields", map[string]any{"method": "POST", "route": "/v1/companies", "data": `{"name":"x"}`, "params": map[string]any{"page": 2.0}, "request_headers": map[string]any{"X-Api": "v1"}},
			map[string]any{"method": "POST", "route": "/v1/companies", "data": `{"name":"x"}`, "params": map[string]any{"page": 2.0}, "headers": map[string]any{"X-Api": "v1"}}},
		{"object data, legacy headers", map[string]any{"method": "PUT", "route": "/v1/companies", "data": map[string]any{"name": "x"}, "headers": map[string]any{"X-Old": "1"}},
			map[string]any{"method": "PUT", "route": "/v1/companies", "data": map[string]any{"name": "x"}, "params": nil, "headers": map[string]any{"X-Old": "1"}}},
		{"nulls", map[string]any{"method": "GET", "route": "/v1/companies", "data": nil, "params": nil, "request_headers": nil},
			map[string]any{"method": "GET", "route": "/v1/companies", "data": nil, "params": nil, "headers": nil}},
	} {
		m, _ := forwardBody(t, e.call("POST", "/forward", auth, tc.body))
		if !reflect.DeepEqual(m["request"], tc.want) {
			t.Errorf("%s: request = %v, want %v", tc.name, m["request"], tc.want)
		}
	}
}

// TestForward_EveryProvider: each provider's emulated API answers its own
// company route with the employer.
func TestForward_EveryProvider(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	routes := map[string]string{
		"gusto": "/v1/companies", "adp_workforce_now": "/core/v1/organization", "bamboo_hr": "/v1/company_information",
		"paychex_flex": "/companies", "rippling": "/platform/api/companies/current", "justworks": "/v1/company",
		"paylocity": "/api/v2/companies", "workday": "/ccx/api/v1/organizations",
	}
	for provider, route := range routes {
		tok, conn := e.providerToken(provider)
		m, up := forwardBody(t, e.call("POST", "/forward", "bearer:"+tok, map[string]any{"method": "GET", "route": route}))
		if m["statusCode"] != 200.0 || up.(map[string]any)["id"] != conn["company_id"] {
			t.Errorf("%s GET %s = %v %v, want 200 and the company", provider, route, m["statusCode"], up)
		}
		if m, _ := forwardBody(t, e.call("POST", "/forward", "bearer:"+tok, map[string]any{"method": "GET", "route": "/nothing/here"})); m["statusCode"] != 404.0 {
			t.Errorf("%s: an unknown route = %v, want 404", provider, m["statusCode"])
		}
	}
}

func TestForward_Validation(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok, _ := e.providerToken("gusto")
	auth := "bearer:" + tok
	tests := []struct {
		name string
		body any
		want string
	}{
		{"not JSON", `{"method":`, "JSON object"},
		{"no method", map[string]any{"route": "/v1/companies"}, "method is required"},
		{"bad method", map[string]any{"method": "TRACE", "route": "/v1/companies"}, "method must be"},
		{"no route", map[string]any{"method": "GET"}, "route is required"},
		{"relative route", map[string]any{"method": "GET", "route": "v1/companies"}, "route must"},
		{"query in route", map[string]any{"method": "GET", "route": "/v1/companies?page=2"}, "params"},
		{"dots in route", map[string]any{"method": "GET", "route": "/../admin"}, "route must"},
		{"params not an object", map[string]any{"method": "GET", "route": "/v1/companies", "params": "page=2"}, "params must be"},
		{"data a number", map[string]any{"method": "POST", "route": "/v1/companies", "data": 5}, "data must be"},
		{"headers an array", map[string]any{"method": "GET", "route": "/v1/companies", "request_headers": []string{"X: 1"}}, "request_headers must be"},
	}
	for _, tc := range tests {
		r := e.call("POST", "/forward", auth, tc.body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.json(t)["message"].(string), tc.want) {
			t.Errorf("%s: %d %s, want 400 mentioning %q", tc.name, r.status, r.body, tc.want)
		}
	}
	if r := e.call("POST", "/forward", "", map[string]any{"method": "GET", "route": "/v1/companies"}); r.status != http.StatusUnauthorized {
		t.Errorf("without a token = %d, want 401", r.status)
	}
}

// TestForward_RefusedInFinchSandbox: a connection with Finch-generated
// data has no provider: 501 not_implemented, before the body is read.
func TestForward_RefusedInFinchSandbox(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok, _ := e.sandboxToken()
	for _, body := range []any{map[string]any{"method": "GET", "route": "/v1/companies"}, map[string]any{}} {
		r := e.call("POST", "/forward", "bearer:"+tok, body)
		if r.status != http.StatusNotImplemented || r.json(t)["name"] != "not_implemented" {
			t.Errorf("POST /forward on a Finch Sandbox connection = %d %s, want 501 not_implemented", r.status, r.body)
		}
	}
	// So is a Connect session in "finch" sandbox mode.
	r := e.call("POST", "/connect/sessions", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"company"}, "redirect_uri": cb, "sandbox": "finch"})
	u, _ := url.Parse(r.json(t)["connect_url"].(string))
	ftok := e.exchange(e.signIn(u.Query(), "authorized_simple"), cb).json(t)["access_token"].(string)
	if r := e.call("POST", "/forward", "bearer:"+ftok, map[string]any{"method": "GET", "route": "/v1/companies"}); r.status != http.StatusNotImplemented {
		t.Errorf("POST /forward on a sandbox-finch Connect connection = %d, want 501", r.status)
	}
}

// TestForward_ConnectionStatus: forwarding needs the provider's
// credentials, so a connection that lost them answers like a data route.
func TestForward_ConnectionStatus(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok, conn := e.providerToken("gusto")
	if err := e.sb.SetConnectionStatus(conn["connection_id"].(string), "reauth"); err != nil {
		t.Fatal(err)
	}
	r := e.call("POST", "/forward", "bearer:"+tok, map[string]any{"method": "GET", "route": "/v1/companies"})
	if r.status != http.StatusUnauthorized || r.json(t)["finch_code"] != "reauthenticate_user" {
		t.Errorf("POST /forward in reauth = %d %s, want 401 reauthenticate_user", r.status, r.body)
	}
}

func strOf(v any) string { s, _ := v.(string); return s }
