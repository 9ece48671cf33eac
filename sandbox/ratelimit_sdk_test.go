package sandbox_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestOfficialSDK_RateLimits runs sdktest/ratelimit.mjs: the official SDK
// against a sandbox with Finch's rate limits (factor 1) and a still wall
// clock, so that the window cannot slide during the run.
func TestOfficialSDK_RateLimits(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	dir := sdkTestDir(t)
	sb, err := sandbox.New(sandbox.Options{RateLimitFactor: 1, Now: fixedNow()})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ts := httptest.NewServer(sb)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "ratelimit.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FINCH_BASE_URL="+ts.URL, "FINCH_CLIENT_ID="+sandbox.DefaultClientID, "FINCH_CLIENT_SECRET="+sandbox.DefaultClientSecret)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node --test ratelimit.mjs: %v\n%s", err, out)
	}
}
