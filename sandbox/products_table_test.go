package sandbox

import (
	"os"
	"regexp"
	"testing"
)

// TestRouteProducts_CoversEveryDataRoute: every route routes.go
// registers with s.data(product, …) directly (not through scoped) is in
// routeProducts with the same product, its path parameters named as they
// may be, so that TestProducts_EveryRouteEnforcesItsScope, which walks the
// table, tests its scope too.
func TestRouteProducts_CoversEveryDataRoute(t *testing.T) {
	src, err := os.ReadFile("routes.go")
	if err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]*\}`)
	table := map[string]string{}
	for pattern, product := range routeProducts {
		table[param.ReplaceAllString(pattern, "{}")] = product
	}
	direct := regexp.MustCompile(`HandleFunc\("([A-Z]+ [^"]+)", s\.data\("([a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(direct) < 10 {
		t.Fatalf("found %d s.data routes in routes.go; is the pattern broken?", len(direct))
	}
	for _, m := range direct {
		got, ok := table[param.ReplaceAllString(m[1], "{}")]
		switch {
		case !ok:
			t.Errorf("%s (product %s) is not in routeProducts, so no test checks its scope", m[1], m[2])
		case got != m[2]:
			t.Errorf("%s is registered with product %s but routeProducts says %s", m[1], m[2], got)
		}
	}
}
