package sandbox_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestProducts_EveryRouteEnforcesItsScope: for every route of the scope
// table (products.go), a token without the route's product gets
// 403 insufficient_scope_error and a token with only that product does
// not; a route that needs no product takes any valid token. Every route
// of the table must be served.
func TestProducts_EveryRouteEnforcesItsScope(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	all := sandbox.ProductNames()
	param := regexp.MustCompile(`\{[a-z_]+\}`)
	served := 0
	for pattern, product := range sandbox.RouteProducts() {
		method, path, _ := strings.Cut(pattern, " ")
		path = param.ReplaceAllString(path, "11111111-1111-4111-8111-111111111111")
		var body any
		if method != "GET" {
			body = "{}"
		}
		t.Run(pattern, func(t *testing.T) {
			e := e.on(t)
			only := []string{product}
			if product == "" {
				only = []string{"company"}
			}
			auth, _ := e.conn("gusto", "", only...)
			r := e.call(method, path, auth, body)
			if r.status == http.StatusNotFound && strings.HasPrefix(r.json(t)["message"].(string), "No such route") {
				t.Fatalf("%s is in the scope table but not served", pattern)
			}
			served++
			if r.status == http.StatusForbidden {
				t.Fatalf("a token with %v: %d %s, want no 403", only, r.status, r.body)
			}
			if product == "" {
				return
			}
			var others []string
			for _, p := range all {
				// deduction grants what benefits grants; it is never given
				// with benefits (Finch refuses the two together).
				if p != product && p != "deduction" && !(product == "individual" && p == "ssn") {
					others = append(others, p)
				}
			}
			auth, _ = e.conn("gusto", "", others...)
			r = e.call(method, path, auth, body)
			if m := want(t, "a token without "+product, r, http.StatusForbidden, ""); m["name"] != "insufficient_scope_error" {
				t.Fatalf("a token without %s: %s, want insufficient_scope_error", product, r.body)
			}
		})
	}
	if n := len(sandbox.RouteProducts()); served != n || n < 32 {
		t.Errorf("%d of the scope table's %d routes served; the SDK's token routes are at least 32", served, n)
	}
}

// TestProducts_DeductionAlias: deduction, the deprecated alias, grants
// the deductions routes as benefits does.
func TestProducts_DeductionAlias(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	auth, _ := e.conn("gusto", "", "deduction")
	want(t, "GET /employer/benefits with deduction", e.call("GET", "/employer/benefits", auth, nil), http.StatusOK, "")
	m := want(t, "create with deduction", e.call("POST", "/employer/benefits", auth, map[string]any{"type": "401k_roth", "description": "Roth"}), http.StatusCreated, "")
	want(t, "job with deduction", e.call("GET", "/jobs/manual/"+m["job_id"].(string), auth, nil), http.StatusOK, "")
}

// TestProducts_SessionsAcceptEveryScope: POST /connect/sessions accepts
// each product of the SDK's list, and refuses one Finch does not have.
func TestProducts_SessionsAcceptEveryScope(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	sdk := []string{"benefits", "company", "deduction", "directory", "documents", "employment", "individual", "payment", "pay_statement", "plans", "plans_dependents", "plans_enrollments", "recordkeeping", "ssn"}
	for _, p := range sdk {
		r := e.call("POST", "/connect/sessions", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{p}, "redirect_uri": cb})
		if r.status != http.StatusCreated {
			t.Errorf("a session for %s = %d %s", p, r.status, r.body)
		}
	}
	if names := sandbox.ProductNames(); len(names) != len(sdk) || !slices.Equal(slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(sdk))) {
		t.Errorf("product names %v, want the SDK's %v", names, sdk)
	}
	want(t, "a session for an unknown product", e.call("POST", "/connect/sessions", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"payroll"}, "redirect_uri": cb}), http.StatusBadRequest, "invalid_request")
}

// TestProducts_SSN: /employer/individual gives an SSN only with the ssn
// product and options.include ["ssn"], as Finch documents; ssn alone does
// not grant /employer/individual.
func TestProducts_SSN(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ssn := func(auth string, include bool) (bool, string) {
		t.Helper()
		id := e.people(auth)[0]
		body := map[string]any{"requests": []any{map[string]any{"individual_id": id}}}
		if include {
			body["options"] = map[string]any{"include": []string{"ssn"}}
		}
		r := e.call("POST", "/employer/individual", auth, body)
		if r.status != http.StatusOK {
			t.Fatalf("individual = %d %s", r.status, r.body)
		}
		ind := r.json(t)["responses"].([]any)[0].(map[string]any)["body"].(map[string]any)
		v, ok := ind["ssn"].(string)
		return ok && v != "", v
	}
	with, _ := e.conn("gusto", "", "directory", "individual", "ssn")
	without, _ := e.conn("gusto", "", "directory", "individual")
	if ok, _ := ssn(with, true); !ok {
		t.Error("no SSN with the ssn product and options.include [ssn]")
	}
	if ok, _ := ssn(with, false); ok {
		t.Error("an SSN without options.include [ssn]")
	}
	if ok, _ := ssn(without, true); ok {
		t.Error("an SSN without the ssn product")
	}
	only, _ := e.conn("gusto", "", "directory", "ssn")
	id := e.people(only)[0]
	r := e.call("POST", "/employer/individual", only, map[string]any{"requests": []any{map[string]any{"individual_id": id}}, "options": map[string]any{"include": []string{"ssn"}}})
	want(t, "individual with ssn but not individual", r, http.StatusForbidden, "")
}
