package sandbox_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// sdkTestDir returns sandbox/sdktest once its npm packages are installed
// (.ci/run runs `npm ci` there); without them the test skips locally and
// fails under CI.
func sdkTestDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("sdktest")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@tryfinch", "finch-api")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sandbox/sdktest/node_modules is missing; .ci/run runs `npm ci` there")
		}
		t.Skip("run `npm ci` in sandbox/sdktest to drive the official Finch TypeScript SDK against the sandbox")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	return dir
}

// TestOfficialSDK runs the official Finch TypeScript SDK (@tryfinch/finch-api,
// pinned in sdktest/package-lock.json) against a running sandbox:
// sandbox.test.mjs runs the whole flow (sessions, the Connect page over
// HTTP, the code exchange, introspection, company, directory
// auto-pagination, individuals, disconnect and the AuthenticationError
// after it), and each sandbox-*.test.mjs one area of the API. Then it
// checks that together they called every HTTP method the SDK has.
func TestOfficialSDK(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	dir := sdkTestDir(t)
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ts := httptest.NewServer(sb)
	defer ts.Close()

	files, err := filepath.Glob(filepath.Join(dir, "sandbox-*.test.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--test", "sandbox.test.mjs"}
	for _, f := range files {
		args = append(args, filepath.Base(f))
	}
	coverage := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"FINCH_BASE_URL="+ts.URL,
		"FINCH_CLIENT_ID="+sandbox.DefaultClientID,
		"FINCH_CLIENT_SECRET="+sandbox.DefaultClientSecret,
		"SDK_COVERAGE_DIR="+coverage,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	stats := sb.Stats()
	if n := stats.Requests[http.MethodGet+" /employer/directory"]; n < 3 {
		t.Errorf("the SDK fetched the directory %d times, want at least 3 pages", n)
	}
	t.Logf("%s", out)

	// Every request of the SDK reached one of the sandbox's routes: none
	// was answered 404 "No such route" (or 405) for want of one, and each
	// HTTP method's own route (verb and path, as the SDK writes them)
	// was requested at least once.
	routes := sdkRoutes(t, dir) // method → "VERB /path", from the SDK's code
	t.Run("no method answers 404", func(t *testing.T) {
		if n := stats.Requests["unmatched"]; n > 0 {
			t.Errorf("%d requests of the SDK matched no route of the sandbox", n)
		}
		served := map[string]int{}
		param := regexp.MustCompile(`\{[^}]*\}`)
		for pattern, n := range stats.Requests {
			served[param.ReplaceAllString(pattern, "{}")] += n
		}
		sdkParam := regexp.MustCompile(`\$\{[^}]*\}`)
		if len(routes) < 48 {
			t.Fatalf("found %d HTTP methods in the SDK, want the 48 of 10.7.0", len(routes))
		}
		for method, route := range routes {
			if served[sdkParam.ReplaceAllString(route, "{}")] == 0 {
				t.Errorf("%s (%s): no request reached a sandbox route for it", method, route)
			}
		}
	})

	t.Run("every SDK method", func(t *testing.T) {
		all := slices.Sorted(maps.Keys(routes))
		if len(all) < 48 {
			t.Fatalf("found %d HTTP methods in the SDK, want the 48 of 10.7.0: %v", len(all), all)
		}
		called := map[string]bool{}
		reports, _ := filepath.Glob(filepath.Join(coverage, "called-*.json"))
		for _, f := range reports {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			if err := json.Unmarshal(b, &names); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, n := range names {
				called[n] = true
			}
		}
		var missing []string
		for _, m := range all {
			if !called[m] {
				missing = append(missing, m)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%d of the SDK's %d HTTP methods were never called by sdktest/*.test.mjs: %s", len(missing), len(all), strings.Join(missing, ", "))
		}
	})
}

// sdkRoutes maps each of the SDK's HTTP methods to its request as a
// ServeMux pattern would name it, "GET /employer/benefits/${benefitID}"
// (sdktest/methods.mjs --routes).
func sdkRoutes(t *testing.T, dir string) map[string]string {
	t.Helper()
	cmd := exec.Command("node", "methods.mjs", "--routes")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node methods.mjs --routes: %v", err)
	}
	routes := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("methods.mjs --routes: line %q is not method, verb, path", line)
		}
		routes[f[0]] = f[1] + " " + f[2]
	}
	return routes
}
