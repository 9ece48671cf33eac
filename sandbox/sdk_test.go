package sandbox_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
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
// pinned in sdktest/package-lock.json) against a running sandbox: sessions,
// the Connect page over HTTP, the code exchange, introspection, company,
// directory auto-pagination over several pages, individuals, disconnect and
// the AuthenticationError after it.
func TestOfficialSDK(t *testing.T) {
	dir := sdkTestDir(t)
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ts := httptest.NewServer(sb)
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "sandbox.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"FINCH_BASE_URL="+ts.URL,
		"FINCH_CLIENT_ID="+sandbox.DefaultClientID,
		"FINCH_CLIENT_SECRET="+sandbox.DefaultClientSecret,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if n := sb.Stats().Requests[http.MethodGet+" /employer/directory"]; n < 3 {
		t.Errorf("the SDK fetched the directory %d times, want at least 3 pages", n)
	}
	t.Logf("%s", out)
}
