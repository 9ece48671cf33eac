package sandbox_test

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestSandboxAccounts_Create: POST /sandbox/connections/accounts adds an
// account with its own token to the connection of company_id and
// provider_id, whose products grow by the account's; at most three
// accounts a connection.
func TestSandboxAccounts_Create(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	conn := e.call("POST", "/sandbox/connections", "basic", map[string]any{"provider_id": "justworks", "employee_size": 3}).json(t)
	old := "bearer:" + conn["access_token"].(string)
	if r := e.call("GET", "/employer/payment?start_date=2000-01-01&end_date=2999-01-01", old, nil); r.status != http.StatusForbidden {
		t.Fatalf("payments before the account = %d, want 403", r.status)
	}
	r := e.call("POST", "/sandbox/connections/accounts", "basic", map[string]any{"company_id": conn["company_id"], "provider_id": "justworks", "products": []string{"payment", "company"}, "authentication_type": "oauth"})
	if r.status != http.StatusOK {
		t.Fatalf("POST /sandbox/connections/accounts = %d %s", r.status, r.body)
	}
	acct := r.json(t)
	for k, want := range map[string]any{"connection_id": conn["connection_id"], "company_id": conn["company_id"], "entity_id": conn["entity_id"], "provider_id": "justworks", "authentication_type": "oauth"} {
		if acct[k] != want {
			t.Errorf("%s = %v, want %v", k, acct[k], want)
		}
	}
	if acct["account_id"] == conn["account_id"] || acct["access_token"] == conn["access_token"] || len(strOf(acct["access_token"])) < 64 {
		t.Errorf("account = %s, want a new account_id and a new 256-bit token", r.body)
	}
	if p := acct["products"].([]any); len(p) != 2 || p[0] != "payment" || p[1] != "company" {
		t.Errorf("products = %v, want the account's", p)
	}
	tok := "bearer:" + acct["access_token"].(string)
	in := e.call("GET", "/introspect", tok, nil).json(t)
	if in["connection_id"] != conn["connection_id"] {
		t.Errorf("the new token introspects as %v", in["connection_id"])
	}
	var products []string
	for _, p := range in["products"].([]any) {
		products = append(products, p.(string))
	}
	for _, p := range []string{"company", "directory", "individual", "employment", "payment"} {
		if !slices.Contains(products, p) {
			t.Errorf("connection products %v lack %s", products, p)
		}
	}
	if len(products) != 5 {
		t.Errorf("connection products %v, want each once", products)
	}
	methods := in["authentication_methods"].([]any)
	if len(methods) != 2 {
		t.Fatalf("authentication_methods = %v, want the first account's and the new one's", methods)
	}
	if m := methods[1].(map[string]any); m["type"] != "oauth" || len(m["products"].([]any)) != 2 {
		t.Errorf("the new account's method = %v, want oauth with its two products", m)
	}
	for _, auth := range []string{old, tok} {
		if r := e.call("GET", "/employer/payment?start_date=2000-01-01&end_date=2999-01-01", auth, nil); r.status != http.StatusOK {
			t.Errorf("payments after the account = %d, want 200", r.status)
		}
	}
	// Defaults: Organization products, credential.
	r = e.call("POST", "/sandbox/connections/accounts", "basic", map[string]any{"company_id": conn["company_id"], "provider_id": "justworks"})
	if m := r.json(t); r.status != http.StatusOK || m["authentication_type"] != "credential" || len(m["products"].([]any)) != 4 {
		t.Errorf("a default account = %d %s", r.status, r.body)
	}
	r = e.call("POST", "/sandbox/connections/accounts", "basic", map[string]any{"company_id": conn["company_id"], "provider_id": "justworks"})
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "at most 3") {
		t.Errorf("a fourth account = %d %s, want 400", r.status, r.body)
	}
}

func TestSandboxAccounts_Refusals(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	conn := e.call("POST", "/sandbox/connections", "basic", map[string]any{"provider_id": "gusto", "employee_size": 2}).json(t)
	co := conn["company_id"]
	tests := []struct {
		name   string
		body   any
		status int
		want   string
	}{
		{"not JSON", `[`, 400, "JSON object"},
		{"no company_id", map[string]any{"provider_id": "gusto"}, 400, "company_id is required"},
		{"no provider_id", map[string]any{"company_id": co}, 400, "provider_id is required"},
		{"unknown provider", map[string]any{"company_id": co, "provider_id": "acme_payroll"}, 400, "GET /providers"},
		{"unknown products", map[string]any{"company_id": co, "provider_id": "gusto", "products": []string{"company", "payroll", "hr"}}, 400, "payroll, hr"},
		{"deduction and benefits", map[string]any{"company_id": co, "provider_id": "gusto", "products": []string{"deduction", "benefits"}}, 400, "alias"},
		{"authentication_type", map[string]any{"company_id": co, "provider_id": "gusto", "authentication_type": "password"}, 400, "authentication_type"},
		{"unknown company", map[string]any{"company_id": "00000000-0000-4000-8000-000000000000", "provider_id": "gusto"}, 404, "No connection"},
		{"other provider", map[string]any{"company_id": co, "provider_id": "rippling"}, 404, "No connection"},
	}
	for _, tc := range tests {
		r := e.call("POST", "/sandbox/connections/accounts", "basic", tc.body)
		if r.status != tc.status || !strings.Contains(r.json(t)["message"].(string), tc.want) {
			t.Errorf("%s: %d %s, want %d mentioning %q", tc.name, r.status, r.body, tc.status, tc.want)
		}
	}
	if r := e.call("POST", "/sandbox/connections/accounts", "", map[string]any{"company_id": co, "provider_id": "gusto"}); r.status != http.StatusUnauthorized || r.json(t)["name"] != "invalid_client_error" {
		t.Errorf("without client credentials = %d %s, want 401 invalid_client_error", r.status, r.body)
	}
	if r := e.call("POST", "/sandbox/connections/accounts", "bearer:"+conn["access_token"].(string), map[string]any{"company_id": co, "provider_id": "gusto"}); r.status != http.StatusUnauthorized {
		t.Errorf("with a bearer token instead of Basic = %d, want 401", r.status)
	}
	e.call("POST", "/disconnect", "bearer:"+conn["access_token"].(string), nil)
	if r := e.call("POST", "/sandbox/connections/accounts", "basic", map[string]any{"company_id": co, "provider_id": "gusto"}); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "disconnected") {
		t.Errorf("an account on a disconnected connection = %d %s, want 400", r.status, r.body)
	}
}

func TestSandboxAccounts_Persist(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sandbox.json")
	e := newEnv(t, sandbox.Options{DataFile: file})
	conn := e.call("POST", "/sandbox/connections", "basic", map[string]any{"provider_id": "gusto", "employee_size": 2}).json(t)
	e.call("POST", "/sandbox/connections/accounts", "basic", map[string]any{"company_id": conn["company_id"], "provider_id": "gusto", "products": []string{"payment"}})
	e.call("POST", "/sandbox/connections/accounts", "basic", map[string]any{"company_id": conn["company_id"], "provider_id": "gusto"})
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, sandbox.Options{DataFile: file})
	if r := e2.call("POST", "/sandbox/connections/accounts", "basic", map[string]any{"company_id": conn["company_id"], "provider_id": "gusto"}); r.status != http.StatusBadRequest {
		t.Errorf("a fourth account after a restart = %d %s, want 400: the accounts were forgotten", r.status, r.body)
	}
	if r := e2.call("GET", "/employer/payment?start_date=2000-01-01&end_date=2999-01-01", "bearer:"+conn["access_token"].(string), nil); r.status != http.StatusOK {
		t.Errorf("the account's product after a restart = %d, want 200", r.status)
	}
}

// TestSandboxConnections_ProductValidation: POST /sandbox/connections
// refuses unknown products, naming every one, and a bad
// authentication_type; it creates nothing then.
func TestSandboxConnections_ProductValidation(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tests := []struct {
		name string
		body map[string]any
		want []string
	}{
		{"unknown products", map[string]any{"provider_id": "gusto", "products": []string{"company", "payroll", "w2"}}, []string{"payroll", "w2"}},
		{"deduction with benefits", map[string]any{"provider_id": "gusto", "products": []string{"deduction", "benefits"}}, []string{"alias"}},
		{"authentication_type", map[string]any{"provider_id": "gusto", "authentication_type": "magic"}, []string{"authentication_type"}},
	}
	for _, tc := range tests {
		r := e.call("POST", "/sandbox/connections", "basic", tc.body)
		if r.status != http.StatusBadRequest || r.json(t)["finch_code"] != "invalid_request" {
			t.Errorf("%s: %d %s, want 400 invalid_request", tc.name, r.status, r.body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.json(t)["message"].(string), w) {
				t.Errorf("%s: message %q does not name %q", tc.name, r.json(t)["message"], w)
			}
		}
	}
	if n := e.sb.Stats().CodesIssued; n != 0 {
		t.Errorf("refused connections issued %d codes, want none: nothing is created", n)
	}
	r := e.call("POST", "/sandbox/connections", "basic", map[string]any{"provider_id": "gusto", "products": []string{"company", "documents", "ssn", "benefits", "pay_statement"}, "authentication_type": "api_token"})
	if r.status != http.StatusOK {
		t.Errorf("Finch's products = %d %s, want 200", r.status, r.body)
	}
}
