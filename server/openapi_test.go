package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// TestOpenAPI_MatchesRoutes checks that the OpenAPI document and the real
// routes describe the same API: every routed pattern is documented, and
// every documented operation is routed.
func TestOpenAPI_MatchesRoutes(t *testing.T) {
	key, _ := keyring.Generate(1)
	kr, _ := keyring.New(key)
	s, err := New(Config{PublicURL: "http://app.test"}, &finch.Client{}, tokenstore.New(tokenstore.NewMemory(), kr))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" {
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}
	routed := map[string]bool{"GET /v1/openapi.json": true}
	for _, rt := range s.v1Routes() {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			method, path = "", rt.pattern
		}
		path = strings.ReplaceAll(path, "{path...}", "{path}")
		if method == "" {
			// Any method: the document must list at least GET.
			if !documented["GET "+path] {
				t.Errorf("route %q is not documented (no GET %s)", rt.pattern, path)
			}
			for d := range documented {
				if strings.HasSuffix(d, " "+path) {
					routed[d] = true
				}
			}
			continue
		}
		routed[method+" "+path] = true
		if !documented[method+" "+path] {
			t.Errorf("route %q is not in openapi.json", rt.pattern)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("openapi.json documents %s, which no route serves", d)
		}
	}
	if n := len(slices.Collect(func(yield func(string) bool) {
		for d := range documented {
			if !yield(d) {
				return
			}
		}
	})); n < 9 {
		t.Errorf("openapi.json documents %d operations, want at least 9", n)
	}
}

// TestOpenAPI_OperationsAreRouted sends every documented operation to the
// real handler: each must reach its route (not the API's 404 or 405
// catch-all), and, without an API key, be refused with 401 by that route
// (the document itself needs none).
func TestOpenAPI_OperationsAreRouted(t *testing.T) {
	key, _ := keyring.Generate(1)
	kr, _ := keyring.New(key)
	s, err := New(Config{PublicURL: "http://app.test"}, &finch.Client{}, tokenstore.New(tokenstore.NewMemory(), kr))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.addRoutes(mux)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	fill := strings.NewReplacer("{id}", "conn-1", "{path}", "employer/company")
	n := 0
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			n++
			method := strings.ToUpper(m)
			req := httptest.NewRequest(method, fill.Replace(p), nil)
			if _, pattern := mux.Handler(req); pattern == "" || pattern == "/" || pattern == "/v1/" {
				t.Errorf("%s %s: routed to %q, want its own route", method, p, pattern)
				continue
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			want := http.StatusUnauthorized
			if p == "/v1/openapi.json" {
				want = http.StatusOK
			}
			if rec.Code != want {
				t.Errorf("%s %s without a key = %d %s, want %d", method, p, rec.Code, rec.Body, want)
			}
		}
	}
	if n == 0 {
		t.Fatal("openapi.json documents no operation")
	}
	// And the catch-all answers JSON: 405 with Allow for a routed path,
	// 404 for any other.
	for _, tt := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{"PUT", "/v1/connections", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", "/v1/connect/sessions", http.StatusMethodNotAllowed, "POST"},
		{"PATCH", "/v1/connections/conn-1", http.StatusMethodNotAllowed, "DELETE, GET, HEAD"},
		{"GET", "/v1/nothing", http.StatusNotFound, ""},
		{"GET", "/v1/connections/conn-1/finchx/employer/company", http.StatusNotFound, ""},
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		var e struct{ Error string }
		if rec.Code != tt.want || rec.Header().Get("Allow") != tt.allow || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
			t.Errorf("%s %s = %d (Allow %q) %s, want %d (Allow %q) with a JSON error", tt.method, tt.path, rec.Code, rec.Header().Get("Allow"), rec.Body, tt.want, tt.allow)
		}
	}
}
