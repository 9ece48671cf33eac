package server

import (
	"encoding/json"
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
